package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// webhookQueue bounds the alerts waiting to be posted; past it new alerts
// are logged and not posted (the history keeps them).
const webhookQueue = 1000

// Webhook posts each alert as JSON to a URL, in order, retrying failures
// with backoff; a slow or dead receiver never holds up the site tracker.
type Webhook struct {
	URL     string
	Timeout time.Duration // per attempt
	Retries int           // after the first attempt
	Logf    func(format string, args ...any)

	client *http.Client
	queue  chan Alert
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// StartWebhook starts posting to url; Close stops it.
func StartWebhook(url string, timeout time.Duration, retries int, logf func(string, ...any)) *Webhook {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{URL: url, Timeout: timeout, Retries: retries, Logf: logf,
		client: &http.Client{Timeout: timeout}, queue: make(chan Alert, webhookQueue),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go w.run()
	return w
}

// Post queues a for posting without waiting.
func (w *Webhook) Post(a Alert) {
	select {
	case w.queue <- a:
	default:
		w.Logf("webhook: queue full; alert %s %s→%s not posted", a.Site, a.From, a.To)
	}
}

func (w *Webhook) run() {
	defer close(w.done)
	for {
		select {
		case <-w.ctx.Done():
			return
		case a := <-w.queue:
			if err := w.post(a); err != nil {
				w.Logf("webhook: alert %s %s→%s: %v", a.Site, a.From, a.To, err)
			}
		}
	}
}

// post sends one alert, retrying with backoff from 1 s.
func (w *Webhook) post(a Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		panic("BUG: marshal an alert: " + err.Error())
	}
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		err = w.attempt(body)
		if err == nil || attempt >= w.Retries {
			if err != nil {
				err = fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
			}
			return err
		}
		select {
		case <-w.ctx.Done():
			return w.ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (w *Webhook) attempt(body []byte) error {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", w.URL, resp.Status)
	}
	return nil
}

// Close stops posting; alerts still queued are not sent.
func (w *Webhook) Close() {
	w.cancel()
	<-w.done
}
