package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// PeerModule is the VictoriaMetrics single-node server flowd is measured
// against, pinned to the version whose lib/ flowd builds on.
const PeerModule = "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0"

// PeerBinary finds victoria-metrics on PATH or in $(go env GOPATH)/bin,
// running go install (1–2 minutes) when it is in neither.
func PeerBinary(ctx context.Context, logf func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("victoria-metrics"); err == nil {
		return p, nil
	}
	gobin, err := goEnv("GOBIN")
	if err != nil {
		return "", err
	}
	if gobin == "" {
		gopath, err := goEnv("GOPATH")
		if err != nil {
			return "", err
		}
		gobin = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin")
	}
	bin := filepath.Join(gobin, "victoria-metrics")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	logf("installing the peer: go install %s (1–2 minutes)", PeerModule)
	cmd := exec.CommandContext(ctx, "go", "install", PeerModule)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", PeerModule, err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("go install %s left no %s", PeerModule, bin)
	}
	return bin, nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// StartPeer starts victoria-metrics on a free 127.0.0.1 port with its data
// in dir, keeping everything (-retentionPeriod=100y) since the city's day
// may lie years back, and waits for /health. extra flags are appended.
func StartPeer(bin, dir string, extra ...string) (*Proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + filepath.Join(dir, "data"),
		"-retentionPeriod=100y",
		"-search.disableCache",
		"-loggerLevel=ERROR",
	}, extra...)
	p, err := start("victoria-metrics", bin, args, dir, filepath.Join(dir, "victoria-metrics.log"))
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + addr
	if err := waitHealthy(p, p.URL+"/health", 60*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// freePort asks the kernel for a port nobody listens on. The peer cannot
// listen on :0 and report the port, so there is a short race; a clash shows
// as a failed start.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitHealthy(p *Proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited before it was healthy: %v\n%s", p.Name, p.err, p.Tail())
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New(p.Name + " not healthy after " + timeout.String() + "\n" + p.Tail())
}
