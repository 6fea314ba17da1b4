package chatpb

// CodeMoved is the error_code a grain answers (PostResult, Subscribed,
// InboxSnapshot) when it no longer owns its identity: the sender looks the
// grain up again and resends. It is an actor-to-actor status and never
// reaches a client; client-visible codes are transport/wire's.
const CodeMoved = "moved"
