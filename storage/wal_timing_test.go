package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWALCommit writes group commits of 40 KB (four requests of a few
// thousand events) to a WAL segment on the disk of the test's temporary
// directory, each made durable before the next, and reports the CPU time
// of a commit beside its time. "room" is the WAL as it is (records written
// into zeros made ahead, fdatasync; O_DIRECT where the file system takes
// it); "room-page-cache" the same through the page cache; "recycled" the
// same into a retired segment's file, which needs no zeros ahead; "grow"
// is the WAL before room, each commit appended to the end of the file and
// fsynced.
func BenchmarkWALCommit(b *testing.B) {
	payload := make([]byte, 10<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	records := [][]byte{payload, payload, payload, payload}
	b.Run("room", func(b *testing.B) {
		w, err := openWAL(filepath.Join(b.TempDir(), "wal"))
		if err != nil {
			b.Fatal(err)
		}
		defer w.close()
		c0 := cpuTime()
		for b.Loop() {
			if err := w.append(records); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/commit")
	})
	b.Run("room-page-cache", func(b *testing.B) {
		// "room" with the segment's writes through the page cache, as
		// before O_DIRECT (and where the file system refuses it).
		w, err := openWAL(filepath.Join(b.TempDir(), "wal"))
		if err != nil {
			b.Fatal(err)
		}
		defer w.close()
		w.direct = setDirect(w.f, false)
		c0 := cpuTime()
		for b.Loop() {
			if err := w.append(records); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/commit")
	})
	b.Run("recycled", func(b *testing.B) {
		// The same, into a retired segment's file: first written by b.N
		// commits outside the timing, then retired as a spare, which the
		// next segment takes.
		dir := filepath.Join(b.TempDir(), "wal")
		w, err := openWAL(dir)
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			if err := w.append(records); err != nil {
				b.Fatal(err)
			}
		}
		seq, err := w.rotate()
		if err != nil {
			b.Fatal(err)
		}
		if err := retireWALUpTo(dir, seq); err != nil {
			b.Fatal(err)
		}
		w.close()
		w, err = openWAL(dir)
		if err != nil {
			b.Fatal(err)
		}
		defer w.close()
		if w.end == 0 {
			b.Fatal("the new segment did not take the spare")
		}
		c0 := cpuTime()
		for b.Loop() {
			if err := w.append(records); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/commit")
	})
	b.Run("grow", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "0000000000000001.wal"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var buf []byte
		c0 := cpuTime()
		for b.Loop() {
			buf = buf[:0]
			for _, p := range records {
				buf = appendFrame(buf, p)
			}
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/commit")
	})
}
