package storage

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// within fails the test if fn does not return within d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// TestFlushDoesNotWaitForASubmitter submits a batch and does not wait for
// it: a flush still completes, with the batch in it exactly once, and the
// late Wait neither fails nor adds it again. The store, not the submitter,
// owns getting a durable batch into the memtable.
func TestFlushDoesNotWaitForASubmitter(t *testing.T) {
	s := openTestStore(t, t.TempDir(), quietOptions())
	defer s.Close()
	id, _ := s.MetricID("count_car")
	b := NewBatch()
	defer b.Release()
	b.Add(id, false, 7, 0, time.Now().Unix()/60, 3)
	p, err := s.Submit(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "a flush while a submitter has not waited", func() {
		if err := s.Flush(); err != nil {
			t.Error(err)
		}
	})
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != 3 {
		t.Fatalf("after the flush: total %d, want 3", total)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != 3 {
		t.Fatalf("after the late Wait: total %d, want 3 (applied once)", total)
	}
}

// TestSubmitRacingCloseReturns closes stores while the WAL writer's queue
// is full and submitters are blocked on it: every Submit and every Wait
// returns, with success or ErrClosed.
func TestSubmitRacingCloseReturns(t *testing.T) {
	for round := range 5 {
		// The WAL writer stops after its first write, so the queue fills.
		stall := make(chan struct{})
		var once sync.Once
		opts := quietOptions()
		opts.Failpoint = func(name string) {
			if name == FailpointWALSynced {
				once.Do(func() { <-stall })
			}
		}
		s := openTestStore(t, t.TempDir(), opts)
		id, _ := s.MetricID("count_car")
		var wg sync.WaitGroup
		var submits atomic.Int64
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var pend []*Pending
				for range 300 {
					b := NewBatch()
					b.Add(id, false, 1, 0, 27000000, 1)
					p, err := s.Submit(b, nil)
					submits.Add(1)
					if errors.Is(err, ErrClosed) {
						break
					}
					if err != nil {
						t.Errorf("round %d: %v", round, err)
						break
					}
					pend = append(pend, p)
				}
				for _, p := range pend {
					if err := p.Wait(); err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("round %d: %v", round, err)
					}
				}
			}()
		}
		// Wait until the queue is full, or every submit is done: a WAL writer
		// that took most batches into its first group leaves the queue short.
		for len(s.commits) < cap(s.commits) && submits.Load() < 8*300 {
			time.Sleep(100 * time.Microsecond)
		}
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			s.Close()
		}()
		time.Sleep(time.Millisecond)
		close(stall)
		within(t, 10*time.Second, "Close with submitters", func() { <-closed })
		within(t, 10*time.Second, "submitters after Close", wg.Wait)
	}
}

// TestCloseTwice closes a store from two goroutines at once, then again.
func TestCloseTwice(t *testing.T) {
	for range 100 {
		s := openTestStore(t, t.TempDir(), quietOptions())
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlushUnderAStreamOfSubmitters flushes while eight submitters keep the
// WAL writer's queue full (Submit blocks on it): the flush takes the
// batches queued when it asked, not every batch that comes after, and
// returns; every batch acknowledged is in the store once. (A group commit
// takes the whole queue, so the queue empties often enough here that the
// flush returned before the bound too; the bound makes sure of it.)
func TestFlushUnderAStreamOfSubmitters(t *testing.T) {
	s := openTestStore(t, t.TempDir(), quietOptions())
	defer s.Close()
	id, _ := s.MetricID("count_car")
	minute := time.Now().Unix() / 60
	stop := make(chan struct{})
	var acked atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pend []*Pending
			var bs []*Batch
			settle := func() {
				for i, p := range pend {
					if err := p.Wait(); err == nil {
						acked.Add(1)
					}
					bs[i].Release()
				}
				pend, bs = pend[:0], bs[:0]
			}
			defer settle()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := NewBatch()
				b.Add(id, false, uint64(g+1), 0, minute, 1)
				p, err := s.Submit(b, nil)
				if err != nil {
					b.Release()
					continue
				}
				pend, bs = append(pend, p), append(bs, b)
				if len(pend) == 4096 { // more than the queue holds: Submit blocks on it
					settle()
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	flushed := make(chan error, 1)
	go func() { flushed <- s.Flush() }()
	select {
	case err := <-flushed:
		if err != nil {
			t.Error(err)
		}
		close(stop)
	case <-time.After(10 * time.Second):
		t.Error("the flush did not return within 10 s while submitters ran")
		close(stop) // the queue empties, and the flush ends
		<-flushed
	}
	wg.Wait()
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != acked.Load() {
		t.Fatalf("the store holds %d, %d batches were acknowledged", total, acked.Load())
	}
}
