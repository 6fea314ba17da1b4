-- Webhooks (integrations/webhook): an outbox of the events grainchat sends
-- to the operator's endpoints, kept in the transactions that store what the
-- events describe, and sent by one node per endpoint (docs/WEBHOOKS.md,
-- docs/ARCHITECTURE.md "Webhooks").
--
-- The message path pays one row per batch, as for search (00008): when the
-- caller asks for it (p_webhooks, set by nodes configured with
-- --webhook-url), grainchat_append_messages adds one webhook_queue row per
-- call: its new messages' id range, their conversations, and the id range
-- of the status events its messages recorded by reopening conversations.
-- Desk changes (ChangeConversation), new conversations (EnsureConversation)
-- and read marks (MarkRead) are not on the message path: they add their own
-- queue rows in their own transactions.
--
-- An expander (pgstore's Store.ExpandWebhooks, run by every sending node)
-- turns queue rows into one webhook_deliveries row per event and endpoint,
-- with the event's JSON body, in the transaction that deletes the queue
-- rows. Two rules keep every conversation's events in order:
--
-- * Queue ids follow each conversation's order. Every writer of a queue row
--   of a conversation (appends, desk changes, a new conversation) holds the
--   conversation's row lock (or, for a new conversation, creates the row),
--   so two rows of one conversation are written one after the other and
--   the later one takes the higher id. The expander takes the lowest queue
--   ids first, and within a row orders each conversation's items by seq
--   (an event after the message it follows: after_seq). Read marks take no
--   lock: a read event may come before the message it names.
-- * Expansions are serialized (a transaction-level advisory lock; a node
--   that does not get it skips its pass), so delivery ids are committed in
--   id order: a sender may read an endpoint's deliveries with "id greater
--   than the last I read" without skipping a late commit, unlike the
--   messages' ids (00008's header).
--
-- A messages row's id range may span messages of a concurrent call (ids are
-- taken from one sequence by calls that lock different conversations): the
-- expander keeps only the messages of the row's own conversations, which no
-- concurrent call can share (it would wait for their locks).
--
-- Senders: one node per endpoint, the one holding the endpoint's session
-- advisory lock, sends its deliveries and deletes each once its endpoint
-- answered 2xx (or it expired).

-- +goose Up
CREATE TABLE webhook_endpoints (
    id         bigserial   PRIMARY KEY,
    url        text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- What happened and has not been expanded yet. No index: the expander reads
-- it whole, sorted, and it stays short (rows are deleted as fast as they
-- come, so vacuum it often).
CREATE TABLE webhook_queue (
    id               bigserial NOT NULL,
    kind             text      NOT NULL CHECK (kind IN ('messages', 'events', 'conversation', 'read')),
    -- messages: message ids; events: conversation_events ids; conversation
    -- and read: the conversation's id, twice.
    first_id         bigint    NOT NULL,
    last_id          bigint    NOT NULL,
    -- messages and events: the conversations the row is about.
    conversation_ids bigint[]  NULL,
    -- messages: the reopen events' ids (NULL: none).
    event_first      bigint    NULL,
    event_last       bigint    NULL,
    -- read: whose mark moved, to which seq.
    user_id          bigint    NULL,
    seq              bigint    NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (first_id <= last_id)
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- One row per event and endpoint, until the endpoint took it (2xx) or it
-- expired. The body is the exact JSON sent (signed afresh at each attempt).
CREATE TABLE webhook_deliveries (
    id              bigserial   PRIMARY KEY,
    endpoint_id     bigint      NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    conversation_id bigint      NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NULL -- NULL: at once
) WITH (autovacuum_vacuum_scale_factor = 0.02);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

-- grainchat_append_messages: 00008's, with p_webhooks (default false, so a
-- node of the previous version, which passes six arguments, keeps working
-- and queues nothing). Its output is unchanged.
DROP FUNCTION grainchat_append_messages(bigint[], bigint[], text[], boolean[], text[], text[]);

-- +goose StatementBegin
CREATE FUNCTION grainchat_append_messages(
    p_conversation_id bigint[],
    p_sender_id       bigint[],
    p_sender_name     text[],
    p_sender_is_admin boolean[],
    p_body            text[],
    p_client_msg_id   text[],
    p_webhooks        boolean DEFAULT false
) RETURNS TABLE (
    ord               integer,
    outcome           text,
    id                bigint,
    conversation_id   bigint,
    seq               bigint,
    sender_id         bigint,
    sender_name       text,
    sender_is_admin   boolean,
    body              text,
    client_msg_id     text,
    created_at        timestamptz,
    reopen_event_id   bigint,
    actor_external_id text,
    actor_name        text
)
LANGUAGE plpgsql VOLATILE
-- A batch touches a few rows of big tables, by key: probe them through their
-- indexes whatever the statistics say. A hash join over a sequential scan,
-- which the planner picks for tables it thinks small, reads the whole
-- messages table on every call once the table has grown.
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
#variable_conflict use_column
DECLARE
    v_now timestamptz;
BEGIN
    -- Lock the batch's conversations, then read the clock: the batch's time
    -- is taken after any wait for another writer's locks, and is never
    -- earlier than the newest activity of its conversations (a clock that
    -- stepped back). GREATEST ignores the NULL of conversations without
    -- messages.
    SELECT max(l.last_message_at) INTO v_now
    FROM (
        SELECT c.last_message_at FROM conversations c
        WHERE c.id = ANY (p_conversation_id)
        ORDER BY c.id
        FOR UPDATE
    ) l;
    v_now := GREATEST(clock_timestamp(), v_now);

    -- Three window passes, no join between CTEs (a join of CTEs is planned
    -- with a guess of one row and becomes quadratic for big batches):
    -- checked finds each message's validity, earlier stored copy and first
    -- occurrence in the batch; numbered gives each new message its seq and id,
    -- and the event id of the message that reopens its conversation (in the
    -- same window as the seqs: no extra sort); resolved gives an in-batch
    -- repeat the columns of its first occurrence.
    RETURN QUERY
    WITH input AS (
        SELECT t.ord::integer AS ord, t.conversation_id, t.sender_id, t.sender_name,
               t.sender_is_admin, t.body, NULLIF(t.client_msg_id, '') AS client_msg_id
        FROM unnest(p_conversation_id, p_sender_id, p_sender_name, p_sender_is_admin, p_body, p_client_msg_id)
             WITH ORDINALITY AS t(conversation_id, sender_id, sender_name, sender_is_admin, body, client_msg_id, ord)
    ), checked AS (
        SELECT i.*, c.last_seq, c.status AS conversation_status,
               c.id IS NOT NULL AS conversation_ok, u.id IS NOT NULL AS sender_ok,
               u.external_id AS sender_external_id, u.name AS sender_user_name,
               s.id AS stored_id,
               -- The first message of the batch with this client key (itself
               -- when it has none).
               min(i.ord) OVER (PARTITION BY i.conversation_id, i.sender_id, i.client_msg_id,
                                CASE WHEN i.client_msg_id IS NULL THEN i.ord END) AS first_ord
        FROM input i
        LEFT JOIN conversations c ON c.id = i.conversation_id
        LEFT JOIN users u ON u.id = i.sender_id
        -- One probe of messages_client_msg_id_key per key.
        LEFT JOIN LATERAL (
            SELECT m.id FROM messages m
            WHERE i.client_msg_id IS NOT NULL
              AND m.conversation_id = i.conversation_id
              AND m.sender_id = i.sender_id
              AND m.client_msg_id = i.client_msg_id
            LIMIT 1
        ) s ON true
    ), flagged AS (
        SELECT k.*, (k.conversation_ok AND k.sender_ok AND k.stored_id IS NULL AND k.first_ord = k.ord) AS fresh
        FROM checked k
    ), numbered AS (
        SELECT g.*,
               CASE WHEN g.fresh THEN g.last_seq + count(*) FILTER (WHERE g.fresh)
                   OVER (PARTITION BY g.conversation_id ORDER BY g.ord) END AS new_seq,
               CASE WHEN g.fresh THEN nextval('messages_id_seq'::regclass) END AS new_id,
               -- The first fresh visitor message of a pending or resolved
               -- conversation reopens it.
               CASE WHEN g.fresh AND NOT g.sender_is_admin AND g.conversation_status <> 'open'
                         AND count(*) FILTER (WHERE g.fresh AND NOT g.sender_is_admin)
                             OVER (PARTITION BY g.conversation_id ORDER BY g.ord) = 1
                   THEN nextval('conversation_events_id_seq'::regclass) END AS event_id
        FROM flagged g
    ), resolved AS (
        SELECT n.*,
               first_value(n.new_seq) OVER w AS first_seq,
               first_value(n.new_id) OVER w AS first_id,
               first_value(n.sender_name) OVER w AS first_sender_name,
               first_value(n.sender_is_admin) OVER w AS first_sender_is_admin,
               first_value(n.body) OVER w AS first_body
        FROM numbered n
        WINDOW w AS (PARTITION BY n.conversation_id, n.sender_id, n.client_msg_id,
                     CASE WHEN n.client_msg_id IS NULL THEN n.ord END ORDER BY n.ord)
    ), ins AS (
        INSERT INTO messages (id, conversation_id, seq, sender_id, sender_name, sender_is_admin, body, client_msg_id, created_at)
        SELECT r.new_id, r.conversation_id, r.new_seq, r.sender_id, r.sender_name, r.sender_is_admin, r.body,
               r.client_msg_id, v_now
        FROM resolved r
        WHERE r.fresh
    ), queued AS (
        -- The range of this call's new ids, for the search indexer (see
        -- the header): one row per call, none when nothing was stored.
        INSERT INTO search_queue (first_id, last_id)
        SELECT min(r.new_id), max(r.new_id)
        FROM resolved r
        WHERE r.fresh
        HAVING count(*) > 0
    ), webhooked AS (
        -- One row per call for the webhook expander (see the header), only
        -- when the caller's node sends webhooks: the call's new ids, the
        -- conversations they belong to, and its reopen events' ids.
        INSERT INTO webhook_queue (kind, first_id, last_id, conversation_ids, event_first, event_last)
        SELECT 'messages', min(r.new_id), max(r.new_id), array_agg(DISTINCT r.conversation_id),
               min(r.event_id), max(r.event_id)
        FROM resolved r
        WHERE r.fresh AND p_webhooks
        HAVING count(*) > 0
    ), reopened AS (
        INSERT INTO conversation_events (id, conversation_id, after_seq, kind, status, actor_id, created_at)
        SELECT r.event_id, r.conversation_id, r.new_seq - 1, 'status', 'open', r.sender_id, v_now
        FROM resolved r
        WHERE r.event_id IS NOT NULL
    ), advanced AS (
        -- status is written back unchanged unless reopened: an unchanged
        -- value keeps the update HOT.
        UPDATE conversations c
        SET last_seq = a.last_seq, last_message_at = v_now,
            status = CASE WHEN a.reopen THEN 'open' ELSE c.status END
        FROM (SELECT r.conversation_id, max(r.new_seq) AS last_seq, bool_or(r.event_id IS NOT NULL) AS reopen
              FROM resolved r WHERE r.fresh GROUP BY r.conversation_id) a
        WHERE c.id = a.conversation_id
    )
    SELECT r.ord,
           CASE
               WHEN NOT r.conversation_ok THEN 'missing_conversation'
               WHEN NOT r.sender_ok THEN 'missing_sender'
               WHEN r.stored_id IS NOT NULL OR r.first_ord <> r.ord THEN 'duplicate'
               ELSE 'new'
           END,
           -- A stored copy; else this message or the first occurrence it repeats.
           COALESCE(s.id, r.first_id), COALESCE(s.conversation_id, r.conversation_id),
           COALESCE(s.seq, r.first_seq), COALESCE(s.sender_id, r.sender_id),
           COALESCE(s.sender_name, r.first_sender_name), COALESCE(s.sender_is_admin, r.first_sender_is_admin),
           COALESCE(s.body, r.first_body), COALESCE(s.client_msg_id, r.client_msg_id),
           COALESCE(s.created_at, v_now),
           r.event_id,
           CASE WHEN r.event_id IS NOT NULL THEN r.sender_external_id END,
           CASE WHEN r.event_id IS NOT NULL THEN r.sender_user_name END
    FROM resolved r
    LEFT JOIN messages s ON s.id = r.stored_id
    ORDER BY r.ord;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION grainchat_append_messages(bigint[], bigint[], text[], boolean[], text[], text[], boolean);

-- +goose StatementBegin
CREATE FUNCTION grainchat_append_messages(
    p_conversation_id bigint[],
    p_sender_id       bigint[],
    p_sender_name     text[],
    p_sender_is_admin boolean[],
    p_body            text[],
    p_client_msg_id   text[]
) RETURNS TABLE (
    ord               integer,
    outcome           text,
    id                bigint,
    conversation_id   bigint,
    seq               bigint,
    sender_id         bigint,
    sender_name       text,
    sender_is_admin   boolean,
    body              text,
    client_msg_id     text,
    created_at        timestamptz,
    reopen_event_id   bigint,
    actor_external_id text,
    actor_name        text
)
LANGUAGE plpgsql VOLATILE
-- A batch touches a few rows of big tables, by key: probe them through their
-- indexes whatever the statistics say. A hash join over a sequential scan,
-- which the planner picks for tables it thinks small, reads the whole
-- messages table on every call once the table has grown.
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
#variable_conflict use_column
DECLARE
    v_now timestamptz;
BEGIN
    -- Lock the batch's conversations, then read the clock: the batch's time
    -- is taken after any wait for another writer's locks, and is never
    -- earlier than the newest activity of its conversations (a clock that
    -- stepped back). GREATEST ignores the NULL of conversations without
    -- messages.
    SELECT max(l.last_message_at) INTO v_now
    FROM (
        SELECT c.last_message_at FROM conversations c
        WHERE c.id = ANY (p_conversation_id)
        ORDER BY c.id
        FOR UPDATE
    ) l;
    v_now := GREATEST(clock_timestamp(), v_now);

    -- Three window passes, no join between CTEs (a join of CTEs is planned
    -- with a guess of one row and becomes quadratic for big batches):
    -- checked finds each message's validity, earlier stored copy and first
    -- occurrence in the batch; numbered gives each new message its seq and id,
    -- and the event id of the message that reopens its conversation (in the
    -- same window as the seqs: no extra sort); resolved gives an in-batch
    -- repeat the columns of its first occurrence.
    RETURN QUERY
    WITH input AS (
        SELECT t.ord::integer AS ord, t.conversation_id, t.sender_id, t.sender_name,
               t.sender_is_admin, t.body, NULLIF(t.client_msg_id, '') AS client_msg_id
        FROM unnest(p_conversation_id, p_sender_id, p_sender_name, p_sender_is_admin, p_body, p_client_msg_id)
             WITH ORDINALITY AS t(conversation_id, sender_id, sender_name, sender_is_admin, body, client_msg_id, ord)
    ), checked AS (
        SELECT i.*, c.last_seq, c.status AS conversation_status,
               c.id IS NOT NULL AS conversation_ok, u.id IS NOT NULL AS sender_ok,
               u.external_id AS sender_external_id, u.name AS sender_user_name,
               s.id AS stored_id,
               -- The first message of the batch with this client key (itself
               -- when it has none).
               min(i.ord) OVER (PARTITION BY i.conversation_id, i.sender_id, i.client_msg_id,
                                CASE WHEN i.client_msg_id IS NULL THEN i.ord END) AS first_ord
        FROM input i
        LEFT JOIN conversations c ON c.id = i.conversation_id
        LEFT JOIN users u ON u.id = i.sender_id
        -- One probe of messages_client_msg_id_key per key.
        LEFT JOIN LATERAL (
            SELECT m.id FROM messages m
            WHERE i.client_msg_id IS NOT NULL
              AND m.conversation_id = i.conversation_id
              AND m.sender_id = i.sender_id
              AND m.client_msg_id = i.client_msg_id
            LIMIT 1
        ) s ON true
    ), flagged AS (
        SELECT k.*, (k.conversation_ok AND k.sender_ok AND k.stored_id IS NULL AND k.first_ord = k.ord) AS fresh
        FROM checked k
    ), numbered AS (
        SELECT g.*,
               CASE WHEN g.fresh THEN g.last_seq + count(*) FILTER (WHERE g.fresh)
                   OVER (PARTITION BY g.conversation_id ORDER BY g.ord) END AS new_seq,
               CASE WHEN g.fresh THEN nextval('messages_id_seq'::regclass) END AS new_id,
               -- The first fresh visitor message of a pending or resolved
               -- conversation reopens it.
               CASE WHEN g.fresh AND NOT g.sender_is_admin AND g.conversation_status <> 'open'
                         AND count(*) FILTER (WHERE g.fresh AND NOT g.sender_is_admin)
                             OVER (PARTITION BY g.conversation_id ORDER BY g.ord) = 1
                   THEN nextval('conversation_events_id_seq'::regclass) END AS event_id
        FROM flagged g
    ), resolved AS (
        SELECT n.*,
               first_value(n.new_seq) OVER w AS first_seq,
               first_value(n.new_id) OVER w AS first_id,
               first_value(n.sender_name) OVER w AS first_sender_name,
               first_value(n.sender_is_admin) OVER w AS first_sender_is_admin,
               first_value(n.body) OVER w AS first_body
        FROM numbered n
        WINDOW w AS (PARTITION BY n.conversation_id, n.sender_id, n.client_msg_id,
                     CASE WHEN n.client_msg_id IS NULL THEN n.ord END ORDER BY n.ord)
    ), ins AS (
        INSERT INTO messages (id, conversation_id, seq, sender_id, sender_name, sender_is_admin, body, client_msg_id, created_at)
        SELECT r.new_id, r.conversation_id, r.new_seq, r.sender_id, r.sender_name, r.sender_is_admin, r.body,
               r.client_msg_id, v_now
        FROM resolved r
        WHERE r.fresh
    ), queued AS (
        -- The range of this call's new ids, for the search indexer (see
        -- the header): one row per call, none when nothing was stored.
        INSERT INTO search_queue (first_id, last_id)
        SELECT min(r.new_id), max(r.new_id)
        FROM resolved r
        WHERE r.fresh
        HAVING count(*) > 0
    ), reopened AS (
        INSERT INTO conversation_events (id, conversation_id, after_seq, kind, status, actor_id, created_at)
        SELECT r.event_id, r.conversation_id, r.new_seq - 1, 'status', 'open', r.sender_id, v_now
        FROM resolved r
        WHERE r.event_id IS NOT NULL
    ), advanced AS (
        -- status is written back unchanged unless reopened: an unchanged
        -- value keeps the update HOT.
        UPDATE conversations c
        SET last_seq = a.last_seq, last_message_at = v_now,
            status = CASE WHEN a.reopen THEN 'open' ELSE c.status END
        FROM (SELECT r.conversation_id, max(r.new_seq) AS last_seq, bool_or(r.event_id IS NOT NULL) AS reopen
              FROM resolved r WHERE r.fresh GROUP BY r.conversation_id) a
        WHERE c.id = a.conversation_id
    )
    SELECT r.ord,
           CASE
               WHEN NOT r.conversation_ok THEN 'missing_conversation'
               WHEN NOT r.sender_ok THEN 'missing_sender'
               WHEN r.stored_id IS NOT NULL OR r.first_ord <> r.ord THEN 'duplicate'
               ELSE 'new'
           END,
           -- A stored copy; else this message or the first occurrence it repeats.
           COALESCE(s.id, r.first_id), COALESCE(s.conversation_id, r.conversation_id),
           COALESCE(s.seq, r.first_seq), COALESCE(s.sender_id, r.sender_id),
           COALESCE(s.sender_name, r.first_sender_name), COALESCE(s.sender_is_admin, r.first_sender_is_admin),
           COALESCE(s.body, r.first_body), COALESCE(s.client_msg_id, r.client_msg_id),
           COALESCE(s.created_at, v_now),
           r.event_id,
           CASE WHEN r.event_id IS NOT NULL THEN r.sender_external_id END,
           CASE WHEN r.event_id IS NOT NULL THEN r.sender_user_name END
    FROM resolved r
    LEFT JOIN messages s ON s.id = r.stored_id
    ORDER BY r.ord;
END
$fn$;
-- +goose StatementEnd

DROP TABLE webhook_deliveries;
DROP TABLE webhook_queue;
DROP TABLE webhook_endpoints;
