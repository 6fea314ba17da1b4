package membership

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// protoactor's automanaged provider logs every failed poll of a peer's
// health endpoint as an ERROR, once per peer and --automanaged-refresh, for
// as long as the peer is away (a peer stopped with SIGTERM: every second,
// forever), and the normal stop of its own endpoint as
// "ERROR Automanaged server stopping..!". Logs puts those records where they
// belong: the failed polls at debug (the fact they stand for, a member that
// left, is logged once at info from the topology: see logTopology), the
// normal stop at debug, only a real failure of the endpoint as an error.

// Messages of protoactor's automanaged provider (cluster/clusterproviders/
// automanaged/automanaged.go) that Logs rewrites.
const (
	amBadConnection   = "Bad connection to the node health status"
	amBadResponse     = "Bad response from the node health status"
	amBadData         = "Bad data from the node health status"
	amBadRequest      = "Couldn't request node health status"
	amFailureReaching = "Failure reaching nodes"
	amServerStopping  = "Automanaged server stopping..!"

	// protoactor's remote (remote/endpoint_writer.go): the connection's
	// end, and the steps of a connection attempt that fail when the peer's
	// process is gone (it logs one of the steps, then failed to connect).
	remoteLostConnection = "EndpointWriter lost connection"
	remoteFailedConnect  = "EndpointWriter failed to connect"
	remoteFailedStream   = "EndpointWriter failed to create receive stream"
	remoteFailedRequest  = "EndpointWriter failed to send connect request"
	remoteFailedResponse = "EndpointWriter failed to receive connect response"
)

// Messages Logs and the topology log write instead.
const (
	// MsgMemberLeft and MsgMemberJoined are logged at info, once per change
	// of the cluster's topology, by every node that sees it.
	MsgMemberLeft   = "cluster member left"
	MsgMemberJoined = "cluster member joined"
	msgPollFailed   = "automanaged: a peer's health endpoint did not answer"
	msgNoPeer       = "automanaged: no health endpoint answers, this node's own included"
	msgEndpointStop = "automanaged: health endpoint stopped"
	msgEndpointFail = "automanaged: health endpoint failed"
)

// Logs returns the logger to give actors.New: the same as logger, except
// for the records of protoactor (those of its children with
// component=protoactor, the logger actors.New hands the library): those of
// the automanaged provider are rewritten as described above, and a lost
// remote connection to a member that left the topology (or one this node
// closed itself) is logged at debug, not as an error. When p is one of this
// package's providers (NewAutomanaged, NewEtcd), Logs also gives it logger
// for the membership changes it logs at info (MsgMemberLeft,
// MsgMemberJoined).
func Logs(logger *slog.Logger, p cluster.ClusterProvider) *slog.Logger {
	s := &logState{departed: map[string]bool{}}
	if lp, ok := p.(interface{ topology() *topologyLog }); ok {
		t := lp.topology()
		s.stopping = &t.stopping
		t.state.Store(s)
		t.log.Store(logger.With("component", "membership"))
	}
	return slog.New(&tidyHandler{next: logger.Handler(), state: s})
}

// logState is shared by a tidyHandler, its children and the provider's
// topologyLog.
type logState struct {
	stopping   *atomic.Bool // the provider's; nil: not known
	noPeerSaid atomic.Bool  // msgNoPeer was logged since the last topology change

	mu       sync.Mutex
	departed map[string]bool // cluster addresses of members that left and did not come back
}

func (s *logState) isStopping() bool { return s.stopping != nil && s.stopping.Load() }

func (s *logState) hasDeparted(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.departed[addr]
}

func (s *logState) setDeparted(addr string, gone bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gone {
		s.departed[addr] = true
	} else {
		delete(s.departed, addr)
	}
}

// tidyHandler is Logs' handler.
type tidyHandler struct {
	next       slog.Handler
	state      *logState
	protoactor bool // a child with component=protoactor
}

// Enabled implements slog.Handler.
func (h *tidyHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (h *tidyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := &tidyHandler{next: h.next.WithAttrs(attrs), state: h.state, protoactor: h.protoactor}
	for _, a := range attrs {
		if a.Key == "component" && a.Value.Kind() == slog.KindString && a.Value.String() == "protoactor" {
			c.protoactor = true
		}
	}
	return c
}

// WithGroup implements slog.Handler.
func (h *tidyHandler) WithGroup(name string) slog.Handler {
	return &tidyHandler{next: h.next.WithGroup(name), state: h.state, protoactor: h.protoactor}
}

// Handle implements slog.Handler.
func (h *tidyHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.protoactor {
		return h.next.Handle(ctx, r)
	}
	switch r.Message {
	case amBadConnection, amBadResponse, amBadData, amBadRequest:
		return h.rewrite(ctx, r, slog.LevelDebug, msgPollFailed)
	case amFailureReaching:
		if h.state.isStopping() || h.state.noPeerSaid.Swap(true) {
			return h.rewrite(ctx, r, slog.LevelDebug, msgNoPeer)
		}
		return h.rewrite(ctx, r, slog.LevelWarn, msgNoPeer)
	case amServerStopping:
		if err := recordError(r); err == nil || errors.Is(err, http.ErrServerClosed) || h.state.isStopping() {
			return h.rewrite(ctx, r, slog.LevelDebug, msgEndpointStop)
		}
		return h.rewrite(ctx, r, slog.LevelError, msgEndpointFail)
	case remoteLostConnection, remoteFailedConnect, remoteFailedStream, remoteFailedRequest, remoteFailedResponse:
		// A connection this node closed (the library closes the
		// endpoint of a member that left: gRPC's Canceled), or one to a
		// member that left, is no error; to a member, it is.
		if status.Code(recordError(r)) == codes.Canceled || h.state.hasDeparted(recordString(r, "address")) || h.state.isStopping() {
			return h.rewrite(ctx, r, slog.LevelDebug, r.Message)
		}
	}
	return h.next.Handle(ctx, r)
}

// rewrite hands next a copy of r at level with msg, if next takes level.
func (h *tidyHandler) rewrite(ctx context.Context, r slog.Record, level slog.Level, msg string) error {
	if !h.next.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(r.Time, level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, out)
}

// recordError returns the error of r's "error" attribute, nil if it has
// none.
func recordError(r slog.Record) error {
	var err error
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			if e, ok := a.Value.Any().(error); ok {
				err = e
			}
			return false
		}
		return true
	})
	return err
}

// recordString returns the string value of r's attribute key, "" if none.
func recordString(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// topologyLog is what this package's providers embed to log membership
// changes, once Logs has set them up.
type topologyLog struct {
	log      atomic.Pointer[slog.Logger] // set by Logs; nil: nothing is logged
	state    atomic.Pointer[logState]    // set by Logs
	stopping atomic.Bool                 // the provider's Shutdown was called
	unsub    atomic.Pointer[func()]      // cancels the subscription to the topology
}

func (t *topologyLog) topology() *topologyLog { return t }

// start subscribes to c's topology (when Logs set a logger up).
func (t *topologyLog) start(c *cluster.Cluster) {
	if l := t.log.Load(); l != nil {
		unsub := logTopology(c, l, t.state.Load())
		t.unsub.Store(&unsub)
	}
}

// stop marks the provider as stopping and ends the subscription.
func (t *topologyLog) stop() {
	t.stopping.Store(true)
	if unsub := t.unsub.Swap(nil); unsub != nil {
		(*unsub)()
	}
}

// logTopology logs each member that joins or leaves c's topology, once per
// change, at info; this node itself is not logged (chatd logs its own
// start). It returns the subscription to cancel.
func logTopology(c *cluster.Cluster, logger *slog.Logger, s *logState) func() {
	self := c.ActorSystem.Address()
	sub := c.ActorSystem.EventStream.Subscribe(func(evt any) {
		topo, ok := evt.(*cluster.ClusterTopology)
		if !ok {
			return
		}
		if s != nil {
			s.noPeerSaid.Store(false)
		}
		for _, m := range topo.GetLeft() {
			if m.Address() != self {
				if s != nil {
					s.setDeparted(m.Address(), true)
				}
				logger.Info(MsgMemberLeft, "member", m.GetId(), "address", m.Address(), "members", len(topo.GetMembers()))
			}
		}
		for _, m := range topo.GetJoined() {
			if m.Address() != self {
				if s != nil {
					s.setDeparted(m.Address(), false)
				}
				logger.Info(MsgMemberJoined, "member", m.GetId(), "address", m.Address(), "members", len(topo.GetMembers()))
			}
		}
	})
	return func() { c.ActorSystem.EventStream.Unsubscribe(sub) }
}
