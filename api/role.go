package api

import "github.com/valyala/fasthttp"

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

// roleKey is the request user value under which authentication leaves the
// caller's role.
const roleKey = "flowd.role"

// SetRole records the caller's role on the request.
func SetRole(ctx *fasthttp.RequestCtx, r Role) { ctx.SetUserValue(roleKey, r) }

// RoleOf returns the caller's role. When authentication is off no role is
// set and every caller is trusted as an admin: flowd then refuses to listen
// beyond loopback, so only the local machine can reach it.
func RoleOf(ctx *fasthttp.RequestCtx) Role {
	if r, ok := ctx.UserValue(roleKey).(Role); ok {
		return r
	}
	return RoleAdmin
}
