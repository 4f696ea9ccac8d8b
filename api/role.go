package api

import (
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// Role is what a caller's token lets it do.
type Role int

// The roles, from least to most trusted. Admin also sees small counts of
// people that are suppressed for everyone else.
const (
	RoleNone Role = iota
	RoleIngest
	RoleRead
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleIngest:
		return "ingest"
	case RoleRead:
		return "read"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads a role's name as the token file writes it.
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(s) {
	case "ingest":
		return RoleIngest, nil
	case "read":
		return RoleRead, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want ingest, read or admin", s)
}

// allows reports whether a caller with role have may call an endpoint that
// needs role need. Roles are not a ladder: an ingest token cannot read and a
// read token cannot ingest; admin may do everything.
func allows(have, need Role) bool {
	return need == RoleNone || have == RoleAdmin || have == need
}

// roleKey is the request user value under which authentication leaves the
// caller's role.
const roleKey = "flowd.role"

// setRole records the caller's role on the request.
func setRole(ctx *fasthttp.RequestCtx, r Role) { ctx.SetUserValue(roleKey, r) }

// callerKey is the request user value under which authentication leaves
// the name of the caller's token, by which the privacy layer keeps budgets.
const callerKey = "flowd.caller"

// setCaller records the caller's token name on the request.
func setCaller(ctx *fasthttp.RequestCtx, name string) { ctx.SetUserValue(callerKey, name) }

// callerOf returns the name of the caller's token, "" without one.
func callerOf(ctx *fasthttp.RequestCtx) string {
	name, _ := ctx.UserValue(callerKey).(string)
	return name
}

// RoleOf returns the caller's role. When authentication is off no role is
// set and every caller is trusted as an admin: flowd then refuses to listen
// beyond loopback, so only the local machine can reach it.
func RoleOf(ctx *fasthttp.RequestCtx) Role {
	if r, ok := ctx.UserValue(roleKey).(Role); ok {
		return r
	}
	return RoleAdmin
}
