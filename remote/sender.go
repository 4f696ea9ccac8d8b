package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// sender POSTs the outbox's segments to VictoriaMetrics in order, each
// until it is taken, backing off while it is not.
//
// VictoriaMetrics answers an import before the samples are on its disk
// (it writes what it buffered every -inmemoryDataFlushInterval, 5 s by
// default): one killed right after taking a segment loses it. So a segment
// taken is kept for keepShipped in shipped/, and when VictoriaMetrics comes
// back from an outage — a failed POST, or a failed health check while
// there was nothing to send — every kept segment is shipped again.
// Deduplication makes that harmless when nothing was lost.
type sender struct {
	ctx        context.Context // cancelled when the tier closes
	o          *Outbox
	url        string // the import URL
	health     string // the URL whose failure means VictoriaMetrics is down
	client     *http.Client
	logf       func(format string, args ...any)
	minBackoff time.Duration
	maxBackoff time.Duration
	shipped    func(bytes int)
	failed     func(err error)
	failpoint  func(name string)
}

// keepShipped is how long a segment VictoriaMetrics took is kept to be
// shipped again after an outage: well past VictoriaMetrics' in-memory
// flush interval.
const keepShipped = time.Minute

// idleCheck is how often an idle sender checks that VictoriaMetrics is up.
const idleCheck = 2 * time.Second

// run ships until stop is closed.
func (s *sender) run(stop <-chan struct{}) {
	backoff := time.Duration(0)
	failing := false
	idle := time.NewTicker(idleCheck)
	defer idle.Stop()
	for {
		segs := s.o.segments()
		if len(segs) == 0 {
			select {
			case <-s.o.segmentAdded:
			case <-idle.C:
				s.o.pruneShipped(time.Now().Add(-keepShipped))
				if err := s.check(); err != nil {
					if !failing {
						s.logf("remote: %s is not answering: %v", s.health, err)
					}
					failing = true
					s.failed(err)
				} else if failing {
					s.recovered()
					failing = false
				}
			case <-stop:
				return
			}
			continue
		}
		n, err := s.post(segs[0])
		if err == nil {
			if failing {
				s.recovered()
				failing = false
			}
			s.failpoint(FailpointShipped)
			err = s.o.markShipped(segs[0])
		}
		if err != nil {
			s.failed(err)
			backoff = min(max(2*backoff, s.minBackoff), s.maxBackoff)
			if !failing {
				s.logf("remote: shipping to %s failed, retrying with backoff up to %v: %v", s.url, s.maxBackoff, err)
				failing = true
			}
			select {
			case <-time.After(backoff):
			case <-stop:
				return
			}
			continue
		}
		backoff = 0
		s.shipped(n)
	}
}

// recovered ships the kept segments again after an outage.
func (s *sender) recovered() {
	n, err := s.o.reshipKept()
	if err != nil {
		s.logf("remote: cannot ship the kept segments again: %v", err)
	}
	s.logf("remote: %s answers again; shipping the %d segments it took in the last %v again, in case it lost them", s.url, n, keepShipped)
}

// check asks VictoriaMetrics whether it is up.
func (s *sender) check() error {
	req, err := http.NewRequestWithContext(s.ctx, "GET", s.health, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", s.health, resp.Status)
	}
	return nil
}

// post sends one segment; VictoriaMetrics has it when post returns nil.
func (s *sender) post(seg segment) (int, error) {
	body, err := os.ReadFile(seg.path)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(s.ctx, "POST", s.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("segment %s: %s: %s", filepath.Base(seg.path), resp.Status, bytes.TrimSpace(msg))
	}
	return len(body), nil
}
