package membership

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The automanaged provider's records, as the library writes them through
// the logger actors.New derives (component=protoactor): polls of a departed
// peer go to debug, the normal stop of the endpoint too; a real failure of
// the endpoint stays an error; other records, and everyone else's, pass
// unchanged.
func TestLogsTidyAutomanagedRecords(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
			a, err := NewAutomanaged(AutomanagedConfig{Listen: "127.0.0.1:0", Peers: []string{"127.0.0.1:1"}})
			if err != nil {
				t.Fatal(err)
			}
			logger := Logs(base, a)
			lib := logger.With("component", "protoactor")
			url := slog.String("autoManMemberUrl", "http://127.0.0.1:6333/_health")
			for range 3 {
				lib.Error(amBadConnection, slog.Any("error", errors.New("connection refused")), url)
			}
			lib.Error(amBadResponse, slog.Any("error", errors.New("non 200")), url)
			lib.Error(amServerStopping, slog.Any("error", http.ErrServerClosed))
			lib.Error(amServerStopping, slog.Any("error", fmt.Errorf("listen: %w", errors.New("address in use"))))
			lib.Error("something else")
			logger.Error(amBadConnection) // not protoactor's: untouched
			lib.Warn(amFailureReaching, slog.Any("error", errors.New("x")))
			lib.Warn(amFailureReaching, slog.Any("error", errors.New("x")))

			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			count := func(sub string) int {
				n := 0
				for _, l := range lines {
					if strings.Contains(l, sub) {
						n++
					}
				}
				return n
			}
			wantDebug := 0
			if level == slog.LevelDebug {
				wantDebug = 1
			}
			for _, c := range []struct {
				sub  string
				want int
			}{
				{"level=ERROR msg=\"" + amBadConnection, 1}, // the one from another component
				{"level=DEBUG msg=\"" + msgPollFailed, 4 * wantDebug},
				{"autoManMemberUrl=http://127.0.0.1:6333/_health", 4*wantDebug + 0},
				{"level=DEBUG msg=\"" + msgEndpointStop, wantDebug},
				{"level=ERROR msg=\"" + msgEndpointFail + "\" component=protoactor error=\"listen: address in use\"", 1},
				{"level=ERROR msg=\"something else\"", 1},
				{"level=WARN msg=\"" + msgNoPeer, 1},
				{"level=DEBUG msg=\"" + msgNoPeer, wantDebug},
				{"Automanaged server stopping", 0},
				{"level=ERROR", 3},
			} {
				if got := count(c.sub); got != c.want {
					t.Errorf("%d lines with %q, want %d:\n%s", got, c.sub, c.want, buf.String())
				}
			}

			// A remote connection: closed by this node (gRPC's Canceled),
			// or to a member that left, is not an error; to a member it is.
			buf.Reset()
			a.state.Load().setDeparted("127.0.0.1:9093", true)
			lib.Error(remoteLostConnection, slog.String("address", "127.0.0.1:9092"),
				slog.Any("error", status.Error(codes.Canceled, "grpc: the client connection is closing")))
			lib.Error(remoteLostConnection, slog.String("address", "127.0.0.1:9093"), slog.Any("error", errors.New("EOF")))
			lib.Error(remoteFailedConnect, slog.String("address", "127.0.0.1:9093"), slog.Any("error", errors.New("refused")))
			// The steps of a connection attempt to the departed member
			// (TestClusterLogsAfterSIGTERM/etcd once saw the first).
			lib.Error(remoteFailedStream, slog.String("address", "127.0.0.1:9093"), slog.Any("error", errors.New("refused")))
			lib.Error(remoteFailedRequest, slog.String("address", "127.0.0.1:9093"), slog.Any("error", errors.New("EOF")))
			lib.Error(remoteFailedResponse, slog.String("address", "127.0.0.1:9093"), slog.Any("error", errors.New("EOF")))
			lib.Error(remoteLostConnection, slog.String("address", "127.0.0.1:9092"), slog.Any("error", errors.New("EOF")))
			if n := strings.Count(buf.String(), "level=ERROR"); n != 1 || !strings.Contains(buf.String(), `level=ERROR msg="EndpointWriter lost connection" component=protoactor address=127.0.0.1:9092 error=EOF`) {
				t.Errorf("remote records: want only the member's lost connection as an error:\n%s", buf.String())
			}
			if level == slog.LevelDebug && strings.Count(buf.String(), "level=DEBUG msg=\"EndpointWriter") != 6 {
				t.Errorf("remote records: want six at debug:\n%s", buf.String())
			}

			// Once the node leaves, its endpoint's stop and a last failed
			// round are expected.
			buf.Reset()
			a.stopping.Store(true)
			lib.Error(amServerStopping, slog.Any("error", errors.New("use of closed network connection")))
			lib.Error(amFailureReaching, slog.Any("error", errors.New("x")))
			if strings.Contains(buf.String(), "level=ERROR") || strings.Contains(buf.String(), "level=WARN") {
				t.Errorf("after Shutdown:\n%s", buf.String())
			}
		})
	}
}
