-- grainchat_append_messages takes its batch's time after the locks.
--
-- Migration 00002 stamped messages and last_message_at with
-- statement_timestamp(), which inside a function is the time the calling
-- statement arrived, before the function waited for the conversations'
-- locks: a writer that waited behind another stored later seqs with an
-- earlier time, so created_at went back along a conversation's seqs and
-- last_message_at moved back (storetest's AppendMessages/TimesNeverGoBack
-- failed on every run). An inbox walk (Store.InboxPage) relies on a
-- conversation only ever moving up.
--
-- The batch's time is now clock_timestamp() read once after the locks, and
-- never earlier than the newest last_message_at of the batch's conversations
-- (read under the same locks), so along each conversation's seqs created_at
-- never decreases, even if the server's clock steps back. All rows of one
-- call still share one time. Everything else is unchanged.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION grainchat_append_messages(
    p_conversation_id bigint[],
    p_sender_id       bigint[],
    p_sender_name     text[],
    p_sender_is_admin boolean[],
    p_body            text[],
    p_client_msg_id   text[]
) RETURNS TABLE (
    ord             integer,
    outcome         text,
    id              bigint,
    conversation_id bigint,
    seq             bigint,
    sender_id       bigint,
    sender_name     text,
    sender_is_admin boolean,
    body            text,
    client_msg_id   text,
    created_at      timestamptz
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
    -- occurrence in the batch; numbered gives each new message its seq and id;
    -- resolved gives an in-batch repeat the columns of its first occurrence.
    RETURN QUERY
    WITH input AS (
        SELECT t.ord::integer AS ord, t.conversation_id, t.sender_id, t.sender_name,
               t.sender_is_admin, t.body, NULLIF(t.client_msg_id, '') AS client_msg_id
        FROM unnest(p_conversation_id, p_sender_id, p_sender_name, p_sender_is_admin, p_body, p_client_msg_id)
             WITH ORDINALITY AS t(conversation_id, sender_id, sender_name, sender_is_admin, body, client_msg_id, ord)
    ), checked AS (
        SELECT i.*, c.last_seq, c.id IS NOT NULL AS conversation_ok, u.id IS NOT NULL AS sender_ok,
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
               CASE WHEN g.fresh THEN nextval('messages_id_seq'::regclass) END AS new_id
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
    ), advanced AS (
        UPDATE conversations c
        SET last_seq = a.last_seq, last_message_at = v_now
        FROM (SELECT r.conversation_id, max(r.new_seq) AS last_seq FROM resolved r WHERE r.fresh GROUP BY r.conversation_id) a
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
           COALESCE(s.created_at, v_now)
    FROM resolved r
    LEFT JOIN messages s ON s.id = r.stored_id
    ORDER BY r.ord;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION grainchat_append_messages(
    p_conversation_id bigint[],
    p_sender_id       bigint[],
    p_sender_name     text[],
    p_sender_is_admin boolean[],
    p_body            text[],
    p_client_msg_id   text[]
) RETURNS TABLE (
    ord             integer,
    outcome         text,
    id              bigint,
    conversation_id bigint,
    seq             bigint,
    sender_id       bigint,
    sender_name     text,
    sender_is_admin boolean,
    body            text,
    client_msg_id   text,
    created_at      timestamptz
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
BEGIN
    PERFORM 1 FROM conversations c
    WHERE c.id = ANY (p_conversation_id)
    ORDER BY c.id
    FOR UPDATE;

    -- Three window passes, no join between CTEs (a join of CTEs is planned
    -- with a guess of one row and becomes quadratic for big batches):
    -- checked finds each message's validity, earlier stored copy and first
    -- occurrence in the batch; numbered gives each new message its seq and id;
    -- resolved gives an in-batch repeat the columns of its first occurrence.
    RETURN QUERY
    WITH input AS (
        SELECT t.ord::integer AS ord, t.conversation_id, t.sender_id, t.sender_name,
               t.sender_is_admin, t.body, NULLIF(t.client_msg_id, '') AS client_msg_id
        FROM unnest(p_conversation_id, p_sender_id, p_sender_name, p_sender_is_admin, p_body, p_client_msg_id)
             WITH ORDINALITY AS t(conversation_id, sender_id, sender_name, sender_is_admin, body, client_msg_id, ord)
    ), checked AS (
        SELECT i.*, c.last_seq, c.id IS NOT NULL AS conversation_ok, u.id IS NOT NULL AS sender_ok,
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
               CASE WHEN g.fresh THEN nextval('messages_id_seq'::regclass) END AS new_id
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
               r.client_msg_id, statement_timestamp()
        FROM resolved r
        WHERE r.fresh
    ), advanced AS (
        UPDATE conversations c
        SET last_seq = a.last_seq, last_message_at = statement_timestamp()
        FROM (SELECT r.conversation_id, max(r.new_seq) AS last_seq FROM resolved r WHERE r.fresh GROUP BY r.conversation_id) a
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
           COALESCE(s.created_at, statement_timestamp())
    FROM resolved r
    LEFT JOIN messages s ON s.id = r.stored_id
    ORDER BY r.ord;
END
$fn$;
-- +goose StatementEnd
