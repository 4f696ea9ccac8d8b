package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// client asks a flowd's API with one token, as any caller of that token
// would: the export holds nothing its answers did not.
type client struct {
	url, token string
	http       *http.Client
}

// maxRateWait is the longest Retry-After the client waits for: a token's
// request rate renews within seconds, its privacy budget only at
// midnight, and a budget refusal must end the export, not stall it.
const maxRateWait = 10 * time.Second

// get GETs path and decodes its JSON answer into v. A 429 that renews
// within maxRateWait is waited for; any other answer but 200 is an error
// quoting the server.
func (c *client) get(ctx context.Context, path string, v any) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, "GET", c.url+path, nil)
		if err != nil {
			return fmt.Errorf("export: -url %q: %w", c.url, err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("export: GET %s: %w", path, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("export: GET %s: %w", path, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 20 {
			if wait, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && time.Duration(wait)*time.Second <= maxRateWait {
				select {
				case <-time.After(time.Duration(max(wait, 1)) * time.Second):
					continue
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("export: GET %s: %s: %s", path, resp.Status, serverError(body))
		}
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("export: GET %s: the answer is not what flowd answers (%v): %.200s", path, err, body)
		}
		return nil
	}
}

// serverError returns the error flowd answered, or the start of the body.
func serverError(body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
