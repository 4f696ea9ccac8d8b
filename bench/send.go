package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Request is one ingest request: a body of Events events (or samples) for
// a path.
type Request struct {
	Path   string
	Type   string
	Events int
	Parts  [][]byte // the body, sent back to back without copying
}

func (r *Request) size() int64 {
	var n int64
	for _, p := range r.Parts {
		n += int64(len(p))
	}
	return n
}

// partsReader reads Parts one after the other.
type partsReader struct {
	parts [][]byte
	r     bytes.Reader
}

func (p *partsReader) Read(b []byte) (int, error) {
	for p.r.Len() == 0 {
		if len(p.parts) == 0 {
			return 0, io.EOF
		}
		p.r.Reset(p.parts[0])
		p.parts = p.parts[1:]
	}
	return p.r.Read(b)
}

// FlowdRequests cuts the blocks of each kind (paths[i] for blocks[i]) into
// requests of batch events and interleaves the kinds so that all of them
// advance through the day together, as a city's feeds would.
func FlowdRequests(blocks [][]Block, paths []string, batch int) []Request {
	if batch%blockEvents != 0 {
		panic(fmt.Sprintf("BUG: batch %d is not a multiple of %d", batch, blockEvents))
	}
	per := batch / blockEvents
	type placed struct {
		pos float64
		r   Request
	}
	var all []placed
	for k, bs := range blocks {
		for i := 0; i < len(bs); i += per {
			r := Request{Path: paths[k], Type: "application/x-ndjson"}
			for _, b := range bs[i:min(i+per, len(bs))] {
				r.Parts = append(r.Parts, b.Body)
				r.Events += b.Events
			}
			all = append(all, placed{float64(i) / float64(len(bs)), r})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].pos < all[j].pos })
	out := make([]Request, len(all))
	for i, p := range all {
		out[i] = p.r
	}
	return out
}

// PeerRequests wraps the peer's import bodies.
func PeerRequests(bodies []PeerBody) []Request {
	out := make([]Request, len(bodies))
	for i, b := range bodies {
		out[i] = Request{Path: "/api/v1/import", Type: "application/json", Events: b.Samples, Parts: [][]byte{b.Body}}
	}
	return out
}

// SendResult is what one ingest run measured.
type SendResult struct {
	Events    int64
	Bytes     int64
	Requests  int
	Retries   int64
	Wall      time.Duration
	ServerCPU time.Duration
	ClientCPU time.Duration
	PeakRSS   int64
	// Settle is how long the server took to settle after the last
	// acknowledgement (see settledCPU); its CPU then is in ServerCPU.
	Settle time.Duration
}

// Rate is events per wall second.
func (r SendResult) Rate() float64 { return float64(r.Events) / r.Wall.Seconds() }

// PerCPU is events per CPU-second of the server.
func (r SendResult) PerCPU() float64 { return float64(r.Events) / r.ServerCPU.Seconds() }

// Send posts reqs to p with senders requests in flight, each acknowledged
// (2xx) before it counts, retrying 429 and 503 answers. For flowd it also
// checks that every event was accepted.
func Send(ctx context.Context, p *Proc, reqs []Request, senders int) (SendResult, error) {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: senders,
		DisableCompression:  true,
	}}
	defer client.CloseIdleConnections()
	var res SendResult
	cpu0, err := p.CPU()
	if err != nil {
		return res, err
	}
	self0 := selfCPU()
	var next atomic.Int64
	var events, retries atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) || ctx.Err() != nil {
					return
				}
				n, tries, err := post(ctx, client, p.URL, &reqs[i])
				retries.Add(int64(tries))
				if err != nil {
					errs <- err
					next.Store(int64(len(reqs)))
					return
				}
				events.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	res.Wall = time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	settle := time.Now()
	cpu1, err := settledCPU(ctx, p)
	if err != nil {
		return res, err
	}
	res.Settle = time.Since(settle)
	res.ServerCPU = cpu1 - cpu0
	res.ClientCPU = selfCPU() - self0
	res.Events = events.Load()
	res.Retries = retries.Load()
	res.Requests = len(reqs)
	for i := range reqs {
		res.Bytes += reqs[i].size()
	}
	res.PeakRSS, _ = p.PeakRSS()
	return res, nil
}

// settledCPU waits for p to settle after a run — its CPU use under 2 % of
// a core over a second, or 20 s at most — and returns its CPU time then:
// the work a run sets off after its last acknowledgement (merges of the
// parts its flushes wrote, a database's deferred flushes) counts as the
// run's, whichever the server.
func settledCPU(ctx context.Context, p *Proc) (time.Duration, error) {
	const window, quiet, limit = time.Second, 20 * time.Millisecond, 20 * time.Second
	last, err := p.CPU()
	if err != nil {
		return 0, err
	}
	for end := time.Now().Add(limit); time.Now().Before(end) && ctx.Err() == nil; {
		time.Sleep(window)
		cpu, err := p.CPU()
		if err != nil {
			return 0, err
		}
		if cpu-last < quiet {
			return cpu, nil
		}
		last = cpu
	}
	return last, nil
}

// post sends one request and returns how many events the server accepted.
func post(ctx context.Context, client *http.Client, base string, r *Request) (accepted, retries int, err error) {
	backoff := 50 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+r.Path, &partsReader{parts: r.Parts})
		if err != nil {
			return 0, retries, err
		}
		req.ContentLength = r.size()
		req.Header.Set("Content-Type", r.Type)
		resp, err := client.Do(req)
		if err != nil {
			return 0, retries, fmt.Errorf("POST %s: %w", r.Path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, retries, fmt.Errorf("POST %s: reading the answer: %w", r.Path, err)
		}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			if retries >= 20 {
				return 0, retries, fmt.Errorf("POST %s: %s after %d retries: %s", r.Path, resp.Status, retries, body)
			}
			retries++
			time.Sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		case resp.StatusCode/100 != 2:
			return 0, retries, fmt.Errorf("POST %s: %s: %.500s", r.Path, resp.Status, body)
		}
		if len(body) == 0 {
			return r.Events, retries, nil // the peer answers 204
		}
		var a struct {
			Accepted      int `json:"accepted"`
			RejectedTotal int `json:"rejected_total"`
		}
		if err := json.Unmarshal(body, &a); err != nil {
			return 0, retries, fmt.Errorf("POST %s: answer %.200q: %w", r.Path, body, err)
		}
		if a.Accepted != r.Events {
			return 0, retries, fmt.Errorf("POST %s: %d of %d events accepted, %d rejected: %.500s", r.Path, a.Accepted, r.Events, a.RejectedTotal, body)
		}
		return a.Accepted, retries, nil
	}
}

// selfCPU is this process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
