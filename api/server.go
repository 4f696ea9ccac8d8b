// Package api serves flowd's HTTP API: the route table that declares every
// endpoint with its policy (routes.go), the guard that enforces it, the
// query endpoints over the store as plain functions behind one HTTP
// adapter, registry reads and writes, and operational endpoints. Ingest and
// the live view are served by packages ingest and dashboard through the
// same table.
package api

import (
	"bytes"
	"cmp"
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
	// History, when set, answers the old steps of series queries from
	// VictoriaMetrics.
	History *History
	// EntitySeries says ingest keeps the own figures of sensors, stations
	// and sites sharing their cell apart (ingest.Bucketer.EntitySeries),
	// so that sensor=, station= and site= can answer them.
	EntitySeries bool
	// MinFreeDisk is the free space of the data disk under which /readyz
	// reports the server not ready for ingest.
	MinFreeDisk int64

	// Guard authenticates callers and applies limits; nil lets every
	// request through as an admin's.
	Guard *Guard
	// Conns holds the connections to their limits; Serve makes one with
	// no limits when it is nil.
	Conns *Conns

	// corridors caches the corridors built for corridor and path-density
	// queries, which route planners repeat many times a second.
	corridors *geo.CorridorCache
	network   networkCache
	router    *router
	parts     Parts
	params    map[string]Params // by "METHOD path", see routeParams
	table     []Route
	openapi   []byte // the OpenAPI description, see openapi.go
	metrics   *serverMetrics
	regMu     sync.Mutex // serialises registry writes and their Save
	http      *fasthttp.Server
	maxBody   int
}

// DefaultMinFreeDisk is the free space of the data disk under which the
// server is not ready: room for the largest WAL group commit.
const DefaultMinFreeDisk = 16 << 20

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
		MinFreeDisk: DefaultMinFreeDisk,
	}
	routes := s.routes(parts)
	s.params = routeParams()
	for i := range routes {
		rt := &routes[i]
		if ps, ok := s.params[rt.Method+" "+rt.Path]; ok {
			rt.Handler = checkParams(rt, ps, rt.Handler)
		}
	}
	s.router, s.parts, s.metrics = newRouter(routes), parts, newServerMetrics(routes)
	s.table, s.openapi = routes, openAPIDocument(routes, s.params)
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
	if bothLengths(&ctx.Request.Header) {
		// A proxy in front may read the body by the other header, and
		// take the rest for a second request: request smuggling.
		ctx.SetConnectionClose()
		answer.Error(ctx, fasthttp.StatusBadRequest, errors.New("a request may carry Content-Length or Transfer-Encoding, not both"))
		return
	}
	start := time.Now()
	rt, vars := s.router.find(string(ctx.Method()), string(ctx.Path()))
	for name, v := range vars {
		ctx.SetUserValue(name, v)
	}
	if s.Guard == nil {
		setKnown(ctx)
		rt.Handler(ctx)
	} else {
		s.Guard.Serve(ctx, rt)
	}
	s.metrics.request(rt, ctx.Response.StatusCode(), start)
}

// bothLengths reports whether a request came with both Content-Length and
// Transfer-Encoding. The library reads such a body by Transfer-Encoding
// and keeps only its own view of the length, so the raw headers are
// searched.
func bothLengths(h *fasthttp.RequestHeader) bool {
	var length, encoding bool
	for line := range bytes.Lines(h.RawHeaders()) {
		name, _, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		length = length || bytes.EqualFold(name, []byte("Content-Length"))
		encoding = encoding || bytes.EqualFold(name, []byte("Transfer-Encoding"))
	}
	return length && encoding
}

// setKnown takes the request's connection out of the anonymous ones,
// which give way to new connections when there are too many.
func setKnown(ctx *fasthttp.RequestCtx) {
	if tc := trackedOf(ctx.Conn()); tc != nil {
		tc.setKnown()
	}
}

// Serve answers requests on ln until Shutdown. ln should come from
// s.Conns.Listen (under TLS, if any), so that connections are held to
// s.Conns's limits; its timeouts apply in any case.
func (s *Server) Serve(ln net.Listener, maxBody int) error {
	if s.Conns == nil {
		s.Conns = NewConns(ConnLimits{}, s.Logf)
	}
	l := s.Conns.Limits()
	headerTimeout := cmp.Or(l.HeaderTimeout, DefaultHeaderTimeout)
	bodyTimeout := cmp.Or(l.BodyTimeout, DefaultBodyTimeout)
	s.maxBody = maxBody
	s.http = &fasthttp.Server{
		Handler:            s.ServeHTTP,
		Name:               "flowd",
		MaxRequestBodySize: maxBody,
		// ReadTimeout runs from a connection's opening, or a keep-alive
		// request's first byte, to the end of the header; once the header
		// is in, the body has its own time.
		ReadTimeout: headerTimeout,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: bodyTimeout, MaxRequestBodySize: s.bodyLimit(h)}
		},
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    cmp.Or(l.IdleTimeout, DefaultIdleTimeout),
		ReadBufferSize: 64 << 10, // room for a URL naming 2,000 cells
		// A silent connection then holds no read buffer.
		ReduceMemoryUsage: true,
		// The library's messages would quote request headers: tokens.
		SecureErrorLogMessage: true,
		Logger:                s.Conns.log,
		ErrorHandler:          s.requestError,
		// The live map takes its WebSocket connections over and keeps
		// them after its hijack handler returns, so that fasthttp's
		// context, read buffer and goroutine do not stay with each one.
		KeepHijackedConns: true,
	}
	return s.http.Serve(ln)
}

// bodyLimit is the largest body the route of a request takes: the
// server's limit for data coming in, the smaller query body limit for the
// rest, so that no query is parsed from tens of megabytes.
func (s *Server) bodyLimit(h *fasthttp.RequestHeader) int {
	path, _, _ := bytes.Cut(h.RequestURI(), []byte{'?'})
	if rt, _ := s.router.find(string(h.Method()), string(path)); rt.Limit == LimitUpload {
		return s.maxBody
	}
	limit := DefaultMaxQueryBody
	if s.Guard != nil && s.Guard.Limits.MaxQueryBody > 0 {
		limit = s.Guard.Limits.MaxQueryBody
	}
	return min(limit, s.maxBody)
}

// requestError answers a request the HTTP library could not read. It
// names what was wrong and echoes nothing of the request. A connection
// that timed out, having sent nothing or only part of a request, is
// closed without an answer: nobody is waiting for one.
func (s *Server) requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch kind := requestErrorKind(err); {
	case kind == "timed out" || kind == "closed":
		ctx.Conn().Close()
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		limit, flag := s.bodyLimit(&ctx.Request.Header), "-max-body"
		if limit < s.maxBody {
			flag = "-max-query-body"
		}
		answer.Error(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes (%s)", limit, flag))
	case errors.As(err, &small):
		answer.Error(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, fmt.Errorf("request line and headers larger than %d bytes", s.http.ReadBufferSize))
	default:
		answer.Error(ctx, fasthttp.StatusBadRequest, errors.New("malformed HTTP request"))
	}
}

// Shutdown stops accepting requests and waits for the ones in flight.
func (s *Server) Shutdown() error {
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown()
}
