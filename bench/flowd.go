package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowd/flowd/demo/city"
)

// BuildFlowd builds ./cmd/flowd of the module at root into dir.
func BuildFlowd(root, dir string) (string, error) {
	bin := filepath.Join(dir, "flowd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/flowd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/flowd: %v\n%s", err, out)
	}
	return bin, nil
}

// StartFlowd starts `flowd serve` on 127.0.0.1:0 with its data in dir and
// waits until it listens and answers /healthz. Retention is set far beyond
// the city's day, which may lie years back. extra flags are appended.
func StartFlowd(bin, dir string, extra ...string) (*Proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"serve",
		"-listen", "127.0.0.1:0",
		"-data", filepath.Join(dir, "data"),
		"-retention-minute", "876000h",
		"-retention-hour", "876000h",
	}, extra...)
	logPath := filepath.Join(dir, "flowd.log")
	wrap := strings.Fields(os.Getenv("FLOWD_BENCH_WRAP"))
	if len(wrap) > 0 {
		// A tool that runs flowd, as in valgrind --tool=cachegrind: its
		// counts do not depend on what else the machine runs.
		args = append(append(wrap[1:], bin), args...)
		bin = wrap[0]
	}
	p, err := start("flowd", bin, args, dir, logPath)
	if err != nil {
		return nil, err
	}
	if len(wrap) > 0 {
		p.slow = 20
	}
	deadline := time.Now().Add(60 * time.Second)
	for p.URL == "" {
		if p.Exited() {
			return nil, fmt.Errorf("flowd exited at start: %v\n%s", p.err, p.Tail())
		}
		if time.Now().After(deadline) {
			p.Stop(5 * time.Second)
			return nil, fmt.Errorf("flowd did not listen within a minute\n%s", p.Tail())
		}
		p.URL = listenURL(logPath)
		if p.URL == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := waitHealthy(p, p.URL+"/healthz", 60*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// PutRegistries loads the city's stations, sensors and sites into flowd.
func PutRegistries(ctx context.Context, p *Proc, c *city.City) error {
	f := &city.Feeder{URL: p.URL}
	return f.PutRegistries(ctx, c)
}

// PutSensors loads a sensor registry (CSV) into flowd.
func PutSensors(ctx context.Context, p *Proc, csv []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.URL+"/api/v1/sensors", bytes.NewReader(csv))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("PUT /api/v1/sensors: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT /api/v1/sensors: %s: %.300s", resp.Status, body)
	}
	return nil
}

// listenURL finds the "flowd listening on http://…" line flowd prints.
func listenURL(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if _, url, ok := strings.Cut(sc.Text(), "flowd listening on "); ok {
			return strings.TrimSpace(url)
		}
	}
	return ""
}
