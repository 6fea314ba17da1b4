package transport

import (
	"context"
	"net/http"
	"time"
)

// ReadyFunc reports whether the node can serve: nil when ready.
type ReadyFunc func(ctx context.Context) error

// ChatPath is the chat socket's path (and every path under it).
const ChatPath = "/ws/chat/"

// Routes lists every HTTP route of chatd.
func Routes(ws http.Handler, ready ReadyFunc, extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+ChatPath, ws)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return mux
}
