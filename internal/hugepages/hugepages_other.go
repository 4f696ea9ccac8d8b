//go:build !linux

package hugepages

func heap(int, func() uint64, func(string, ...any)) (int, error) { return 0, nil }
