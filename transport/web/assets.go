package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// files holds the pages and their static assets. Nothing is generated: what
// is in assets/ is what browsers get.
//
//go:embed assets
var files embed.FS

// asset is one embedded file with its validator.
type asset struct {
	body        []byte
	etag        string
	contentType string
}

// assetSet is every embedded file, by its path under assets/.
type assetSet struct {
	byName map[string]*asset
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

func loadAssets() *assetSet {
	set := &assetSet{byName: make(map[string]*asset)}
	err := fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := contentTypes[path.Ext(p)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		set.byName[strings.TrimPrefix(p, "assets/")] = &asset{
			body:        body,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			contentType: ct,
		}
		return nil
	})
	if err != nil {
		panic("web: embedded assets: " + err.Error()) // a build defect, not a runtime condition
	}
	return set
}

// serve writes a, answering conditional requests with 304. Browsers
// revalidate every time (no-cache): the files are small and a new chatd
// version must never run old scripts against a new protocol.
func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// servePage serves one of the HTML pages.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request, name string, frame framing) {
	a := h.assets.byName[name]
	h.setPageHeaders(w, r, frame)
	a.serve(w, r)
}

// serveStatic serves /static/<file>: scripts, styles, the icon.
func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w)
	name := strings.TrimPrefix(r.URL.Path, "/")
	a := h.assets.byName[name]
	if a == nil || !strings.HasPrefix(name, "static/") || strings.Contains(name[len("static/"):], "/") {
		http.NotFound(w, r)
		return
	}
	a.serve(w, r)
}

// serveWidget serves /widget.js, the classic script host sites include.
// Cross-Origin-Resource-Policy says it is meant to be loaded by other sites
// (also those that set Cross-Origin-Embedder-Policy).
func (h *Handler) serveWidget(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w)
	w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.assets.byName["widget.js"].serve(w, r)
}

// serveWidgetDemo serves, in development mode only, a page of chatd's own
// that embeds the widget, to try it without a host site.
func (h *Handler) serveWidgetDemo(w http.ResponseWriter, r *http.Request) {
	if !h.dev() {
		h.notInProduction(w, r)
		return
	}
	h.servePage(w, r, "widget-demo.html", frameNoneHostsWidget)
}
