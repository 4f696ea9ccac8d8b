package remote

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// sender POSTs the outbox's segments to VictoriaMetrics in order, each
// until it is taken, backing off while it is not.
type sender struct {
	o          *Outbox
	url        string // the import URL
	client     *http.Client
	logf       func(format string, args ...any)
	minBackoff time.Duration
	maxBackoff time.Duration
	shipped    func(bytes int)
	failed     func(err error)
}

// run ships until stop is closed.
func (s *sender) run(stop <-chan struct{}) {
	backoff := time.Duration(0)
	failing := false
	idle := time.NewTicker(5 * time.Second) // segments a restarted cutter left
	defer idle.Stop()
	for {
		segs := s.o.segments()
		if len(segs) == 0 {
			select {
			case <-s.o.segmentAdded:
			case <-idle.C:
			case <-stop:
				return
			}
			continue
		}
		n, err := s.post(segs[0])
		if err == nil {
			err = os.Remove(segs[0].path)
			if err == nil {
				err = syncDir(filepath.Dir(segs[0].path))
			}
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
		if failing {
			s.logf("remote: shipping to %s again", s.url)
			failing = false
		}
		backoff = 0
		s.shipped(n)
	}
}

// post sends one segment; VictoriaMetrics has it when post returns nil.
func (s *sender) post(seg segment) (int, error) {
	body, err := os.ReadFile(seg.path)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest("POST", s.url, bytes.NewReader(body))
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
