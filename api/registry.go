package api

import (
	"bytes"
	"fmt"
	"strings"

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

// bodyName names a registry body for error messages and format sniffing:
// GTFS stops.txt is recognised by its header, CSV and JSON by content.
func bodyName(ctx *fasthttp.RequestCtx, what string) string {
	if strings.Contains(string(ctx.Request.Header.ContentType()), "json") {
		return what + ".json"
	}
	return what + " body"
}

// putRegistry replaces one registry set and persists all of them.
func (s *Server) putRegistry(ctx *fasthttp.RequestCtx, what string, put func() (int, error)) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	n, err := put()
	if err != nil {
		answer.Error(ctx, fasthttp.StatusBadRequest, err)
		return
	}
	if err := s.Registry.Save(s.RegistryDir); err != nil {
		answer.Error(ctx, fasthttp.StatusInternalServerError, fmt.Errorf("%s replaced in memory but not saved: %w", what, err))
		return
	}
	s.Logf("registry: %d %s loaded from %s", n, what, ctx.RemoteAddr())
	answer.JSON(ctx, fasthttp.StatusOK, map[string]int{what: n})
}

func (s *Server) putStations(ctx *fasthttp.RequestCtx) {
	s.putRegistry(ctx, "stations", func() (int, error) {
		st, err := geo.ReadStations(bodyName(ctx, "stations"), bytes.NewReader(ctx.PostBody()))
		if err != nil {
			return 0, err
		}
		return len(st), s.Registry.PutStations(st)
	})
}

func (s *Server) putSensors(ctx *fasthttp.RequestCtx) {
	s.putRegistry(ctx, "sensors", func() (int, error) {
		ss, err := geo.ReadSensors(bodyName(ctx, "sensors"), bytes.NewReader(ctx.PostBody()))
		if err != nil {
			return 0, err
		}
		return len(ss), s.Registry.PutSensors(ss)
	})
}

func (s *Server) putSites(ctx *fasthttp.RequestCtx) {
	s.putRegistry(ctx, "sites", func() (int, error) {
		ss, err := geo.ReadSitesGeoJSON(bytes.NewReader(ctx.PostBody()))
		if err != nil {
			return 0, fmt.Errorf("sites body: %w", err)
		}
		return len(ss), s.Registry.PutSites(ss)
	})
}
