// Package api serves flowd's HTTP API: the route table that declares every
// endpoint with its policy (routes.go), the guard that enforces it, the
// query endpoints over the store as plain functions behind one HTTP
// adapter, registry reads and writes, and operational endpoints. Ingest and
// the live view are served by packages ingest and dashboard through the
// same table.
package api

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
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
	// Privacy is the layer every card-derived figure passes before a
	// caller below admin sees it.
	Privacy *privacy.Layer

	// Guard authenticates callers and applies limits; nil lets every
	// request through as an admin's.
	Guard *Guard

	// corridors caches the corridors built for corridor and path-density
	// queries, which route planners repeat many times a second.
	corridors *geo.CorridorCache
	router    *router
	regMu     sync.Mutex // serialises registry writes and their Save
	http      *fasthttp.Server
}

// NewServer returns a server with every route of the table mounted: the
// queries and registries over st and reg, and the routes of the parts
// served elsewhere.
func NewServer(st *storage.Store, reg *geo.Registry, registryDir string, parts Parts) *Server {
	s := &Server{
		Store:       st,
		Registry:    reg,
		Res:         reg.Res(),
		RegistryDir: registryDir,
		Logf:        log.Printf,
		Now:         time.Now,
		corridors:   geo.NewCorridorCache(1024),
		Privacy:     privacy.New(privacy.DefaultPolicy(reg.Res(), 3*time.Hour), randomSecret()),
	}
	s.router = newRouter(s.routes(parts))
	return s
}

// randomSecret keys the noise of a server that was given no secret, such
// as a test's; flowd serve gives one that outlives restarts.
func randomSecret() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("BUG: no randomness: " + err.Error())
	}
	return b
}

// requiredRole returns the least role that may call method on path.
func (s *Server) requiredRole(method, path string) Role {
	rt, _ := s.router.find(method, path)
	return rt.Role
}

// ServeHTTP is the fasthttp handler of every request: it finds the
// route, then the guard admits the request by the route's policy and
// calls its handler.
func (s *Server) ServeHTTP(ctx *fasthttp.RequestCtx) {
	rt, vars := s.router.find(string(ctx.Method()), string(ctx.Path()))
	for name, v := range vars {
		ctx.SetUserValue(name, v)
	}
	if s.Guard == nil {
		rt.Handler(ctx)
		return
	}
	s.Guard.Serve(ctx, rt)
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
		// The live map takes its WebSocket connections over and keeps
		// them after its hijack handler returns, so that fasthttp's
		// context, read buffer and goroutine do not stay with each one.
		KeepHijackedConns: true,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				answer.Error(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", maxBody))
				return
			}
			answer.Error(ctx, fasthttp.StatusBadRequest, err)
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
