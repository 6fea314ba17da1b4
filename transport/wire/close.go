package wire

// Disconnect is a reason the server closes a socket: a WebSocket close code and
// a short reason (RFC 6455 bounds it to 123 bytes), and whether a client
// should reconnect. Every close the server sends is one of the values below;
// docs/PROTOCOL.md has the same table.
type Disconnect struct {
	Code   uint16
	Reason string
	// Reconnect tells the client to reconnect (with backoff, and resume by
	// seq); false means reconnecting as before would be closed again (for
	// TokenExpired: not without a fresh token).
	Reconnect bool
}

// Disconnects the server sends. 1000–1015 are RFC 6455's; 4000–4999 are
// grainchat's own.
var (
	// DisconnectIdle: the socket sent nothing, not even a pong, for the idle
	// timeout (gws sends it when a read times out).
	DisconnectIdle = Disconnect{1000, "idle timeout", true}
	// DisconnectShutdown: the node is stopping; reconnect (to another node).
	DisconnectShutdown = Disconnect{1001, "server shutting down", true}
	// DisconnectProtocol: an RFC 6455 violation (gws sends it).
	DisconnectProtocol = Disconnect{1002, "protocol error", false}
	// DisconnectTooBig: a frame larger than --max-frame-bytes (gws sends it).
	DisconnectTooBig = Disconnect{1009, "frame too large", false}
	// DisconnectMessageTooLong: (seed dialect) a message longer than
	// --max-message-chars; a grainchat.v1 client gets the error frame
	// message_too_long instead and keeps its socket.
	DisconnectMessageTooLong = Disconnect{1009, "message too long", false}
	// DisconnectInternal: the session failed, or (seed dialect) a message
	// was refused with internal.
	DisconnectInternal = Disconnect{1011, "internal error", true}
	// DisconnectUnavailable: (seed dialect) a message could not be stored
	// within --post-timeout; the client did not see an error frame, so the
	// socket is closed rather than carry on as if it had been stored. Also:
	// the server stopped reading a socket whose posts did not settle within
	// twice --post-timeout.
	DisconnectUnavailable = Disconnect{1013, "try again later: message not stored in time", true}
	// DisconnectForbidden, DisconnectConversationRequired and
	// DisconnectConversationNotFound: (seed dialect) a message naming a
	// conversation its sender may not use, none (staff), or one that does
	// not exist; a grainchat.v1 client gets the error frame instead.
	DisconnectForbidden            = Disconnect{1008, CodeForbidden, false}
	DisconnectConversationRequired = Disconnect{1008, CodeConversationRequired, false}
	DisconnectConversationNotFound = Disconnect{1008, CodeConversationNotFound, false}
	// DisconnectResync: the session could not fill a gap from the store.
	DisconnectResync = Disconnect{4001, "resync: reconnect and resume", true}
	// DisconnectSlowConsumer: the client did not read its frames fast enough.
	DisconnectSlowConsumer = Disconnect{4008, "slow consumer: reconnect and resume", true}
	// DisconnectTokenExpired: the socket's token expired (and no fresh one
	// came in an auth frame). Reconnect only with a fresh token.
	DisconnectTokenExpired = Disconnect{4401, "token expired", false}
)

// Disconnects lists every Disconnect, for docs and tests.
var Disconnects = []Disconnect{
	DisconnectIdle, DisconnectShutdown, DisconnectProtocol, DisconnectTooBig, DisconnectMessageTooLong, DisconnectInternal,
	DisconnectUnavailable, DisconnectForbidden, DisconnectConversationRequired, DisconnectConversationNotFound,
	DisconnectResync, DisconnectSlowConsumer, DisconnectTokenExpired,
}

// SeedRefusal is how a seed-dialect socket learns that its message was
// refused with code, which it cannot see as an error frame: the socket is
// closed, never left open as if the message had been taken. ok is false for
// the codes of frames that are not messages the server could take (invalid
// JSON, an empty message, …): those are dropped, as the original server
// did. A message over the length limit is closed on by the transport
// (DisconnectMessageTooLong) before it reaches a session.
func SeedRefusal(code string) (d Disconnect, ok bool) {
	switch code {
	case CodeUnavailable:
		return DisconnectUnavailable, true
	case CodeInternal:
		return DisconnectInternal, true
	case CodeForbidden:
		return DisconnectForbidden, true
	case CodeConversationRequired:
		return DisconnectConversationRequired, true
	case CodeConversationNotFound:
		return DisconnectConversationNotFound, true
	case CodeMessageTooLong:
		return DisconnectMessageTooLong, true
	}
	return Disconnect{}, false
}
