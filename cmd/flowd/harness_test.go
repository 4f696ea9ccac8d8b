package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flowdBin is the flowd binary built once for the tests that run it as a
// child process.
var flowdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowd-bin")
	if err != nil {
		panic(err)
	}
	flowdBin = filepath.Join(dir, "flowd")
	out, err := exec.Command("go", "build", "-o", flowdBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building flowd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// child is a flowd server running as a child process on 127.0.0.1.
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

// startFlowd starts `flowd serve` with the data directory and extra flags,
// and waits until it listens.
func startFlowd(t *testing.T, data string, extra ...string) *child {
	t.Helper()
	c, err := startFlowdEnv(t, data, nil, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startFlowdEnv starts flowd with extra environment variables; an error
// means it exited or hung before listening.
func startFlowdEnv(t *testing.T, data string, env []string, extra ...string) (*child, error) {
	t.Helper()
	args := append([]string{"serve", "-listen", "127.0.0.1:0", "-data", data}, extra...)
	c := &child{t: t, cmd: exec.Command(flowdBin, args...), done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), env...)
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = &lockedWriter{c: c}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.logs.WriteString(line + "\n")
			c.mu.Unlock()
			if u, ok := strings.CutPrefix(line, "flowd listening on "); ok {
				urls <- u
			}
		}
	}()
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	select {
	case c.url = <-urls:
	case <-c.done:
		return nil, fmt.Errorf("flowd exited before listening:\n%s", c.Logs())
	case <-time.After(30 * time.Second):
		c.kill()
		return nil, fmt.Errorf("flowd did not listen within 30 s:\n%s", c.Logs())
	}
	t.Cleanup(c.kill)
	t.Cleanup(func() {
		if t.Failed() {
			logs := c.Logs()
			if len(logs) > 4000 {
				logs = "…" + logs[len(logs)-4000:]
			}
			t.Logf("the log of flowd at %s:\n%s", c.url, logs)
		}
	})
	return c, nil
}

type lockedWriter struct{ c *child }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.logs.Write(p)
}

// Logs returns everything the child wrote to stdout and stderr.
func (c *child) Logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String()
}

// kill stops the child with SIGKILL, as a crash would.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop stops the child with SIGTERM and waits for a clean exit.
func (c *child) stop() {
	c.t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.t.Fatalf("flowd did not stop within 20 s of SIGTERM:\n%s", c.Logs())
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Fatalf("flowd exited with %d after SIGTERM:\n%s", code, c.Logs())
	}
}

type response struct {
	status int
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, r.body)
	}
}

func do(t *testing.T, method, url, ctype string, body []byte, gz bool) response {
	t.Helper()
	encoding := ""
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(body)
		w.Close()
		body, encoding = b.Bytes(), "gzip"
	}
	return authDo(t, method, url, "", ctype, body, encoding)
}

func (c *child) get(t *testing.T, path string) response {
	t.Helper()
	return do(t, "GET", c.url+path, "", nil, false)
}

// ingestAnswer is the reply of the ingest endpoints.
type ingestAnswer struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Line   int    `json:"line"`
		Field  string `json:"field"`
		Value  string `json:"value"`
		Reason string `json:"reason"`
	} `json:"rejected"`
	Error string `json:"error"`
}

func (c *child) post(t *testing.T, kind, ctype, body string, gz bool) ingestAnswer {
	t.Helper()
	r := do(t, "POST", c.url+"/api/v1/ingest/"+kind, ctype, []byte(body), gz)
	var a ingestAnswer
	r.json(t, &a)
	if r.status != 200 {
		t.Fatalf("POST %s: status %d: %s", kind, r.status, r.body)
	}
	return a
}

type seriesAnswer struct {
	Privacy *struct {
		Exact bool   `json:"exact"`
		Noise string `json:"noise"`
	} `json:"privacy"`
	Total            int64      `json:"total"`
	Points           [][2]int64 `json:"points"`
	Tier             string     `json:"tier"`
	RemoteUntil      *time.Time `json:"remote_until"`
	UnreachablePeers []string   `json:"unreachable_peers"`
}

type densityAnswer struct {
	Total            int64      `json:"total"`
	RemoteUntil      *time.Time `json:"remote_until"`
	UnreachablePeers []string   `json:"unreachable_peers"`
	Cells            []struct {
		Cell  string `json:"cell"`
		Value int64  `json:"value"`
	} `json:"cells"`
}

func (c *child) series(t *testing.T, query string) seriesAnswer {
	t.Helper()
	return getAnswer[seriesAnswer](t, c, "/api/v1/series?"+query)
}

func (c *child) density(t *testing.T, query string) densityAnswer {
	t.Helper()
	return getAnswer[densityAnswer](t, c, "/api/v1/density?"+query)
}

// getAnswer GETs path and decodes its answer, failing unless it is a 200.
func getAnswer[A any](t *testing.T, c *child, path string) A {
	t.Helper()
	r := c.get(t, path)
	if r.status != 200 {
		t.Fatalf("%s: %d %s", path, r.status, r.body)
	}
	var a A
	r.json(t, &a)
	return a
}
