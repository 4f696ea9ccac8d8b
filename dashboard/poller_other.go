//go:build !linux

package dashboard

import "errors"

// poller is Linux's (epoll); elsewhere every client is read by a goroutine
// of its own.
type poller struct{}

func newPoller(*Hub) (*poller, error) { return nil, errors.New("no epoll on this system") }

func (*poller) add(*client) error { return errors.New("no epoll on this system") }
func (*poller) remove(*client)    {}
func (*poller) close()            {}
func (*poller) run()              {}
