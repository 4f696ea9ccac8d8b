package api

import (
	"bytes"
	"fmt"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/valyala/fasthttp"
)

func (s *Server) getStations(ctx *fasthttp.RequestCtx) {
	answer.JSON(ctx, fasthttp.StatusOK, s.Registry.Stations())
}

func (s *Server) getSensors(ctx *fasthttp.RequestCtx) {
	answer.JSON(ctx, fasthttp.StatusOK, s.Registry.Sensors())
}

func (s *Server) getSites(ctx *fasthttp.RequestCtx) {
	var buf bytes.Buffer
	if err := geo.WriteSitesGeoJSON(&buf, s.Registry.Sites()); err != nil {
		answer.Fail(ctx, err)
		return
	}
	ctx.SetContentType("application/geo+json")
	ctx.SetBody(buf.Bytes())
}

// maxRegistryNotes bounds the warnings a registry PUT answers with; the
// log has them all.
const maxRegistryNotes = 100

// putRegistry serves the PUT of one registry set: the body replaces the
// set, and all sets are saved. A body with no entries is refused; the set
// is emptied only by ?clear=1 with an empty body.
func (s *Server) putRegistry(set string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		s.regMu.Lock()
		defer s.regMu.Unlock()
		n, err := 0, error(nil)
		var notes []string
		if ctx.QueryArgs().GetBool("clear") {
			if len(bytes.TrimSpace(ctx.PostBody())) > 0 {
				answer.Error(ctx, fasthttp.StatusBadRequest, fmt.Errorf("clear=1 empties the %s; send it with an empty body, or the new %s without clear", set, set))
				return
			}
			s.Registry.Clear(set)
		} else if n, notes, err = s.Registry.PutFileNoted(set, set+" body", bytes.NewReader(ctx.PostBody())); err != nil {
			answer.Error(ctx, fasthttp.StatusBadRequest, err)
			return
		}
		if err := s.Registry.Save(s.RegistryDir); err != nil {
			answer.Error(ctx, fasthttp.StatusInternalServerError, fmt.Errorf("%s replaced in memory but not saved: %w", set, err))
			return
		}
		if n == 0 {
			s.Logf("registry: %s cleared from %s", set, ctx.RemoteAddr())
		} else {
			s.Logf("registry: %d %s loaded from %s", n, set, ctx.RemoteAddr())
		}
		for _, note := range notes {
			s.Logf("registry: %s", note)
		}
		a := map[string]any{set: n}
		if len(notes) > 0 {
			a["warnings"] = notes[:min(len(notes), maxRegistryNotes)]
			a["warnings_total"] = len(notes)
		}
		answer.JSON(ctx, fasthttp.StatusOK, a)
	}
}
