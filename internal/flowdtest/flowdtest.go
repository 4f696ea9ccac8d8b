// Package flowdtest builds a flowd of the real pieces for tests: a store
// in a directory, a registry at resolution 9, and the API server with the
// parts a test mounts, served on 127.0.0.1 as flowd serve would.
package flowdtest

import (
	"cmp"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
)

// Server is a flowd for one test.
type Server struct {
	URL      string // set by Serve
	Dir      string
	Store    *storage.Store
	Registry *geo.Registry
	API      *api.Server
	// MaxBody is the server's body limit (flowd serve's -max-body); 0
	// is 64 MiB.
	MaxBody int
	// Close stops the server, closes the parts and then the store; it
	// also runs when the test ends.
	Close func()

	t testing.TB
}

// New opens a store in dir/store and a registry saved in dir/registry,
// builds the parts with
// mount (whose close func, which may be nil, runs after the server stops
// and before the store closes) and the API server over them. Set the API
// server's fields, then call Serve.
func New(t testing.TB, dir string, mount func(st *storage.Store, reg *geo.Registry) (api.Parts, func())) *Server {
	t.Helper()
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	regDir := filepath.Join(dir, "registry")
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{Dir: dir, Store: st, Registry: geo.New(9), t: t}
	parts, closeParts := mount(st, s.Registry)
	s.API = api.NewServer(st, s.Registry, regDir, parts)
	s.Close = sync.OnceFunc(func() {
		s.API.Shutdown()
		if closeParts != nil {
			closeParts()
		}
		st.Close()
	})
	t.Cleanup(s.Close)
	return s
}

// Serve starts answering on a free port of 127.0.0.1 and sets URL.
func (s *Server) Serve() *Server {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	go s.API.Serve(ln, cmp.Or(s.MaxBody, 64<<20))
	s.URL = "http://" + ln.Addr().String()
	return s
}

// OpenStore opens a store in dir for benchmarks over years-old data: its
// retention reaches back a century, it flushes by size only, and it logs
// nothing. It closes when tb ends.
func OpenStore(tb testing.TB, dir string) *storage.Store {
	st, err := storage.Open(dir, storage.Options{
		FlushInterval: time.Hour,
		Retention:     [storage.NumTiers]time.Duration{876000 * time.Hour, 876000 * time.Hour},
		Logf:          func(string, ...any) {},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
