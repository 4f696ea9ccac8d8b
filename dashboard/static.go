package dashboard

import (
	"embed"
	"io/fs"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// static holds the page and its vendored libraries.
//
//go:embed static
var static embed.FS

// contentTypes of the page's files; module scripts must be served as
// JavaScript or browsers refuse them.
var contentTypes = map[string]string{
	".html":    "text/html; charset=utf-8",
	".js":      "text/javascript; charset=utf-8",
	".mjs":     "text/javascript; charset=utf-8",
	".css":     "text/css; charset=utf-8",
	".md":      "text/markdown; charset=utf-8",
	".txt":     "text/plain; charset=utf-8",
	".png":     "image/png",
	".svg":     "image/svg+xml",
	".geojson": "application/geo+json",
}

// pageFiles returns a handler of each embedded file by its path, and of
// index.html at "/".
func pageFiles() map[string]fasthttp.RequestHandler {
	files := map[string]fasthttp.RequestHandler{}
	err := fs.WalkDir(static, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		size := int(info.Size())
		ctype := contentTypes[path.Ext(p)]
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		cache := "no-cache"
		if strings.HasPrefix(p, "static/vendor/") {
			cache = "public, max-age=86400"
		}
		h := func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("Cache-Control", cache)
			ctx.SetContentType(ctype)
			// Streamed from the binary's embedded copy, rather than
			// read into the heap at start: the page and its libraries
			// are 2 MB that a server without viewers need not hold.
			f, err := static.Open(p)
			if err != nil {
				panic("BUG: embedded page: " + err.Error())
			}
			ctx.SetBodyStream(f, size)
		}
		route := strings.TrimPrefix(p, "static")
		files[route] = h
		if route == "/index.html" {
			files["/"] = h
		}
		return nil
	})
	if err != nil {
		panic("BUG: embedded page: " + err.Error())
	}
	return files
}
