package api

import (
	"fmt"
	"strings"

	"github.com/flowd/flowd/answer"
	"github.com/valyala/fasthttp"
)

// Route is one endpoint and its policy, declared once in the route table
// (routes.go). The guard reads who may call a request's route, how it is
// bounded and whether it is audited from the route itself, never from the
// shape of its path.
type Route struct {
	Method string
	// Path is exact, or holds {name} segments that match any one segment;
	// the handler reads a segment's value as ctx.UserValue(name).
	Path string
	// Role is the least role that may call the route; RoleNone leaves it
	// open to callers without a token.
	Role  Role
	Limit LimitRule
	Audit AuditRule
	// Handler serves the route once the guard has admitted the request.
	Handler fasthttp.RequestHandler
}

// LimitRule says what bounds a route's callers besides their token's
// request rate, which bounds every call made with a token.
type LimitRule int

const (
	// LimitRate bounds a route by the token's request rate only; its
	// body, if any, is held to the query body limit.
	LimitRate LimitRule = iota
	// LimitUpload marks a route that takes data in (ingest, registry
	// puts): its body may be as large as the server's body limit.
	LimitUpload
	// LimitQuery marks a query: it takes one of the server's query slots
	// (and one of its token's) while it is computed, and its body is held
	// to the query body limit.
	LimitQuery
	// LimitLive marks the live WebSocket upgrade: each connection holds
	// one of its token's live slots until it closes, and the token may come
	// as the token parameter, since browsers cannot set headers on a
	// WebSocket.
	LimitLive
)

// AuditRule says which calls of a route the audit log records.
type AuditRule int

const (
	// AuditAdmin records the calls made with an admin token.
	AuditAdmin AuditRule = iota
	// AuditChanges records every call, whoever makes it: registry changes.
	AuditChanges
	// AuditNever records no call: ingest, which an admin token may do in
	// bulk, and the live feed, whose connections last.
	AuditNever
)

// router finds a request's route: exact paths by map, patterns in order.
type router struct {
	exact    map[string]*Route // by "METHOD /path"
	patterns []*Route
	paths    map[string]bool // exact paths under any method, for 405
}

func newRouter(routes []Route) *router {
	r := &router{exact: map[string]*Route{}, paths: map[string]bool{}}
	for i := range routes {
		rt := &routes[i]
		if strings.Contains(rt.Path, "{") {
			r.patterns = append(r.patterns, rt)
			continue
		}
		key := rt.Method + " " + rt.Path
		if r.exact[key] != nil {
			panic("BUG: route declared twice: " + key)
		}
		r.exact[key] = rt
		r.paths[rt.Path] = true
	}
	return r
}

// find returns the route of method and path, with the values of its
// {name} segments, or a route that refuses the request: 405 for a known
// path under another method, 404 otherwise. HEAD is served as GET.
func (r *router) find(method, path string) (*Route, map[string]string) {
	if method == "HEAD" {
		method = "GET"
	}
	if rt := r.exact[method+" "+path]; rt != nil {
		return rt, nil
	}
	known := r.paths[path]
	for _, rt := range r.patterns {
		vars, ok := matchPattern(rt.Path, path)
		if !ok {
			continue
		}
		if rt.Method == method {
			return rt, vars
		}
		known = true
	}
	if known {
		return refusal(unroutedRole(path), fasthttp.StatusMethodNotAllowed, fmt.Errorf("%s does not take %s", path, method)), nil
	}
	return refusal(unroutedRole(path), fasthttp.StatusNotFound, fmt.Errorf("no endpoint %s %s", method, path)), nil
}

// unroutedRole is who may learn that a request has no route (no such path,
// or not under that method): anyone on the page's paths, only admins under
// /api/, so that a caller without a token learns nothing of the API by
// probing it.
func unroutedRole(path string) Role {
	if strings.HasPrefix(path, "/api/") {
		return RoleAdmin
	}
	return RoleNone
}

// refusal is the route of a request no route takes: it answers err with
// status to callers of role.
func refusal(role Role, status int, err error) *Route {
	return &Route{Role: role, Handler: func(ctx *fasthttp.RequestCtx) { answer.Error(ctx, status, err) }}
}

// matchPattern matches path against a pattern with {name} segments.
func matchPattern(pattern, path string) (map[string]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	vars := map[string]string{}
	for i, p := range ps {
		if name, ok := strings.CutPrefix(p, "{"); ok {
			if xs[i] == "" {
				return nil, false
			}
			vars[strings.TrimSuffix(name, "}")] = xs[i]
		} else if p != xs[i] {
			return nil, false
		}
	}
	return vars, true
}
