// Package api serves flowd's HTTP API: routing, the query endpoints over
// the store, registry reads and writes, and operational endpoints. Ingest
// handlers live in package ingest and the live map in package dashboard;
// they are mounted here.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/valyala/fasthttp"
)

// Server routes requests to flowd's endpoints.
type Server struct {
	Store       *storage.Store
	Registry    *geo.Registry
	Res         int
	RegistryDir string
	Logf        func(format string, args ...any)
	// Now is the clock for "now" in queries.
	Now func() time.Time
	// SuppressBelow hides counts of people (distinct cards, OD pairs)
	// smaller than it from callers below admin.
	SuppressBelow int

	// Guard authenticates callers and applies limits; nil lets every
	// request through as an admin's.
	Guard *Guard

	routes   map[string]fasthttp.RequestHandler
	prefixes []prefixRoute
	regMu    sync.Mutex // serialises registry writes and their Save
	http     *fasthttp.Server
}

type prefixRoute struct {
	method, prefix string
	h              fasthttp.RequestHandler
}

// NewServer returns a server with the query and registry endpoints mounted.
func NewServer(st *storage.Store, reg *geo.Registry, registryDir string) *Server {
	s := &Server{
		Store:       st,
		Registry:    reg,
		Res:         reg.Res(),
		RegistryDir: registryDir,
		Logf:        log.Printf,
		Now:         time.Now,
		routes:      map[string]fasthttp.RequestHandler{},

		SuppressBelow: 5,
	}
	s.Handle("GET", "/api/v1/series", s.series)
	s.Handle("POST", "/api/v1/series", s.series)
	s.Handle("GET", "/api/v1/density", s.density)
	s.Handle("POST", "/api/v1/density", s.density)
	s.Handle("POST", "/api/v1/corridor", s.corridor)
	s.Handle("GET", "/api/v1/top", s.top)
	s.Handle("POST", "/api/v1/path/density", s.pathDensity)
	s.Handle("GET", "/api/v1/metrics", s.metricNames)
	s.Handle("GET", "/api/v1/od", s.od)
	s.Handle("GET", "/api/v1/distinct", s.distinctCards)
	s.Handle("GET", "/api/v1/stations", s.getStations)
	s.Handle("PUT", "/api/v1/stations", s.putStations)
	s.Handle("GET", "/api/v1/sensors", s.getSensors)
	s.Handle("PUT", "/api/v1/sensors", s.putSensors)
	s.Handle("GET", "/api/v1/sites", s.getSites)
	s.Handle("PUT", "/api/v1/sites", s.putSites)
	s.Handle("GET", "/metrics", s.prometheus)
	s.Handle("GET", "/healthz", s.health)
	return s
}

// Handle mounts h at an exact method and path.
func (s *Server) Handle(method, path string, h fasthttp.RequestHandler) {
	s.routes[method+" "+path] = h
}

// HandlePrefix mounts h for every path under prefix.
func (s *Server) HandlePrefix(method, prefix string, h fasthttp.RequestHandler) {
	s.prefixes = append(s.prefixes, prefixRoute{method, prefix, h})
}

// ServeHTTP is the fasthttp handler of every request: the guard first,
// then the route.
func (s *Server) ServeHTTP(ctx *fasthttp.RequestCtx) {
	if s.Guard != nil {
		s.Guard.Serve(ctx, s.dispatch)
		return
	}
	s.dispatch(ctx)
}

func (s *Server) dispatch(ctx *fasthttp.RequestCtx) {
	method, path := string(ctx.Method()), string(ctx.Path())
	if method == "HEAD" {
		method = "GET"
	}
	if h, ok := s.routes[method+" "+path]; ok {
		h(ctx)
		return
	}
	for _, p := range s.prefixes {
		if p.method == method && strings.HasPrefix(path, p.prefix) {
			p.h(ctx)
			return
		}
	}
	for key := range s.routes {
		if _, rp, _ := strings.Cut(key, " "); rp == path {
			writeError(ctx, fasthttp.StatusMethodNotAllowed, fmt.Errorf("%s does not take %s", path, method))
			return
		}
	}
	writeError(ctx, fasthttp.StatusNotFound, fmt.Errorf("no endpoint %s %s", method, path))
}

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener, maxBody int) error {
	s.http = &fasthttp.Server{
		Handler:            s.ServeHTTP,
		Name:               "flowd",
		MaxRequestBodySize: maxBody,
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       60 * time.Second,
		IdleTimeout:        2 * time.Minute,
		ReadBufferSize:     64 << 10, // room for a URL naming 2,000 cells
		Concurrency:        4096,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", maxBody))
				return
			}
			writeError(ctx, fasthttp.StatusBadRequest, err)
		},
	}
	return s.http.Serve(ln)
}

// Shutdown stops accepting requests and waits for the ones in flight.
func (s *Server) Shutdown() error {
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown()
}

// writeJSON answers v as JSON with the time the request took.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal answer: %v", err))
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(data)
}

// errorAnswer is the body of every error reply.
type errorAnswer struct {
	Error string `json:"error"`
}

func writeError(ctx *fasthttp.RequestCtx, status int, err error) {
	writeJSON(ctx, status, errorAnswer{err.Error()})
}

// fail answers err: 400 for a bad parameter, 500 otherwise.
func fail(ctx *fasthttp.RequestCtx, err error) {
	var pe *paramError
	if errors.As(err, &pe) {
		writeError(ctx, fasthttp.StatusBadRequest, err)
		return
	}
	writeError(ctx, fasthttp.StatusInternalServerError, err)
}

func tookMs(start time.Time) float64 {
	return float64(time.Since(start).Microseconds()) / 1000
}

func (s *Server) health(ctx *fasthttp.RequestCtx) {
	st := s.Store.Stats()
	status := fasthttp.StatusOK
	state := "ok"
	if st.PendingFlush > 1 {
		status, state = fasthttp.StatusServiceUnavailable, "degraded"
	}
	writeJSON(ctx, status, map[string]any{"status": state, "last_storage_error": st.LastError})
}
