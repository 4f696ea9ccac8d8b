package api

import (
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/valyala/fasthttp"
)

// privacyAnswer is the reply of GET /api/v1/privacy.
type privacyAnswer struct {
	privacy.Terms
	answer.Took
}

// privacyTerms serves GET /api/v1/privacy: the privacy layer's parameters
// as they apply to the caller (exact for an admin), the noise key's id,
// what the caller has spent today and how far figures are released. An
// export states them in its manifest; a script can check its budget here
// without spending any.
func (s *Server) privacyTerms(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	a := privacyAnswer{Terms: s.Privacy.Terms(callerOf(ctx), s.Now(), RoleOf(ctx) >= RoleAdmin)}
	a.Stamp(start)
	answer.JSON(ctx, fasthttp.StatusOK, a)
}
