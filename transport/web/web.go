// Package web serves grainchat's browser pages, embedded in the binary: the
// visitor chat (/ and /chat/), the embeddable widget (/widget.js), the staff
// inbox (/admin/) and, in development mode only, a login page that sets the
// chat_token cookie.
package web

import (
	"log/slog"
	"net/http"

	"github.com/grainchat/grainchat/transport/auth"
)

// Config configures the pages.
type Config struct {
	// DevIssuer, when set, enables the development login page (/login), which
	// mints tokens with it. Nil in production: the host site issues tokens.
	DevIssuer *auth.Issuer
}

// Handler serves the pages.
type Handler struct {
	logger *slog.Logger
	cfg    Config
}

// New builds the pages' handler.
func New(logger *slog.Logger, cfg Config) *Handler {
	return &Handler{logger: logger.With("component", "web"), cfg: cfg}
}

// Routes returns the pages' routes (ServeMux patterns) for transport.Routes.
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{}
}
