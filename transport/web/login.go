package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/clientip"
)

// MaxNameChars bounds the display name the development login accepts.
const MaxNameChars = 60

// maxSlugBytes bounds the name-derived part of a development user's sub.
const maxSlugBytes = 150

var loginTemplate = template.Must(template.ParseFS(files, "assets/login.html"))

// loginView is what the login page shows.
type loginView struct {
	Error     string
	Name      string
	Staff     bool
	Current   *auth.Identity // the identity of a valid chat_token cookie, if any
	OtherHost string         // the same server under another host name (its own cookie jar)
}

// notInProduction answers the development-only routes when chatd has a
// configured secret: the host site issues tokens, there is nothing here.
func (h *Handler) notInProduction(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w)
	http.Error(w, "404 not found: chatd runs in production mode (a token secret is configured); "+
		"the host site signs users in and issues their chat_token", http.StatusNotFound)
}

// serveLogin shows the development login form.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !h.dev() {
		h.notInProduction(w, r)
		return
	}
	v := loginView{OtherHost: otherHost(r.Host)}
	if h.cfg.Verifier != nil {
		if id, err := h.cfg.Verifier.FromRequest(r); err == nil {
			v.Current = &id
		}
	}
	h.renderLogin(w, r, http.StatusOK, v)
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) {
	var buf bytes.Buffer
	if err := loginTemplate.Execute(&buf, v); err != nil {
		h.logger.Error("render login page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.setPageHeaders(w, r, frameNone)
	hd := w.Header()
	hd.Set("Referrer-Policy", "same-origin") // a real Origin on the form's POST
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// login mints a token for the name and role posted and sets it as the
// chat_token cookie: HttpOnly (page scripts never see it), SameSite=Lax (not
// sent by other sites' subrequests, nor on their cross-site POSTs), Path=/,
// Secure when the client's request came over TLS (to chatd, or to a trusted
// proxy that says so: see clientip). Then it sends the browser to the chat
// (visitors) or the inbox (staff).
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.dev() {
		h.notInProduction(w, r)
		return
	}
	if err := sameOrigin(r); err != nil {
		setCommonHeaders(w)
		http.Error(w, "403 forbidden: sign in from this server's own login page", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		h.renderLogin(w, r, http.StatusBadRequest, loginView{Error: "The form could not be read; try again.", OtherHost: otherHost(r.Host)})
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	role := r.PostForm.Get("role")
	staff := role == "staff" || role == "admin"
	v := loginView{Name: name, Staff: staff, OtherHost: otherHost(r.Host)}
	sub, problem := devSubject(name, staff)
	if problem == "" && role != "visitor" && !staff {
		problem = "Choose visitor or staff."
	}
	if problem != "" {
		v.Error = problem
		h.renderLogin(w, r, http.StatusBadRequest, v)
		return
	}
	client := clientip.FromRequest(r)
	token, err := h.cfg.DevIssuer.Mint(auth.Identity{Subject: sub, Name: name, Admin: staff}, h.cfg.DevTokenTTL)
	if err != nil {
		h.logger.Error("development login: mint token", "err", err)
		v.Error = "The token could not be issued; see chatd's log."
		h.renderLogin(w, r, http.StatusInternalServerError, v)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     auth.CookieName,
		Value:    token,
		Path:     "/",
		MaxAge:   int(h.cfg.DevTokenTTL.Seconds()),
		HttpOnly: true,
		Secure:   client.Secure,
		SameSite: http.SameSiteLaxMode,
	})
	h.logger.Info("development login", "user", sub, "admin", staff, "client_ip", client.Addr)
	to := "/"
	if staff {
		to = "/admin/"
	}
	setCommonHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// logout clears the development login's cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.dev() {
		h.notInProduction(w, r)
		return
	}
	if err := sameOrigin(r); err != nil {
		setCommonHeaders(w)
		http.Error(w, "403 forbidden", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: auth.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: clientip.FromRequest(r).Secure, SameSite: http.SameSiteLaxMode,
	})
	setCommonHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sameOrigin refuses a form post from another site (login CSRF). Browsers
// say where a request comes from in Sec-Fetch-Site; those that do not send
// Origin on every POST (the login page's Referrer-Policy: same-origin keeps
// it from being "null"). A request with neither (curl) is allowed.
func sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		if site != "same-origin" {
			return fmt.Errorf("%w: Sec-Fetch-Site %q", auth.ErrForbiddenOrigin, site)
		}
		return nil
	}
	var p *auth.OriginPolicy // nil: the request's own host only
	return p.Check(r)
}

// devSubject derives the development user's stable id from the display name:
// the same name signs in as the same person again. Visitors and staff of the
// same name are different people ("dev-ann", "dev-staff-ann"). problem, when
// not empty, says in words what is wrong with the name.
func devSubject(name string, staff bool) (sub, problem string) {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return "", "Enter a name."
	case n > MaxNameChars:
		return "", fmt.Sprintf("That name is too long (%d characters at most).", MaxNameChars)
	}
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		switch {
		case unicode.IsControl(c):
			return "", "The name contains a control character."
		case unicode.IsLetter(c) || unicode.IsDigit(c):
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(c)
		default:
			dash = true
		}
	}
	if b.Len() == 0 {
		return "", "The name needs at least one letter or digit."
	}
	slug := b.String()
	for len(slug) > maxSlugBytes { // keep sub within auth.MaxSubjectBytes
		_, size := utf8.DecodeLastRuneInString(slug)
		slug = slug[:len(slug)-size]
	}
	if staff {
		return "dev-staff-" + slug, ""
	}
	return "dev-" + slug, ""
}

// otherHost names the same server under its other loopback name, which has
// its own cookies: a visitor at 127.0.0.1 and staff at localhost can share
// one browser. Empty when the host is neither.
func otherHost(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	var other string
	switch host {
	case "127.0.0.1":
		other = "localhost"
	case "localhost":
		other = "127.0.0.1"
	default:
		return ""
	}
	if port != "" {
		return net.JoinHostPort(other, port)
	}
	return other
}
