-- The support desk (storage.Desk): a conversation's status and assignee, the
-- recorded changes of both (conversation_events), each staff user's read
-- marks (read_marks), indexes for the inbox views and for search, and
-- grainchat_append_messages reopening a conversation on a visitor's message.
--
-- The message path stays one statement and HOT. Every stored batch updates
-- its conversations' last_seq and last_message_at (00004): an index on
-- either column, even in a partial index's predicate (WHERE last_seq > 0),
-- turns each of those updates into a non-HOT one that writes an entry in
-- every index of the table. So the view indexes below hold only status and
-- assignee_id, which a message changes only when it reopens a conversation;
-- the views keep InboxPage's plan (a serial scan of conversations with a
-- top-N sort, 00004 and 00006) when a filter is not selective, and use these
-- indexes when it is (the open conversations, one agent's).
--
-- Search: a GIN index over the 'simple' (language-neutral) text search
-- vector of every message body; each inserted message adds its words to the
-- index's pending list (fastupdate), merged in bulk by vacuum. Visitor names
-- are matched with ILIKE '%text%', served by a trigram index when the
-- pg_trgm extension can be installed (it is trusted: a database owner may
-- install it, when the server has it, as Debian's postgresql package does);
-- without it the same query reads the users table.
--
-- Adding status with a constant default rewrites nothing (PostgreSQL >= 11).
-- The GIN index is built here, in the migration's transaction: on a big
-- messages table that blocks appends while it builds; build it beforehand with
-- CREATE INDEX CONCURRENTLY messages_body_fts_idx … (the same definition)
-- to avoid that: IF NOT EXISTS then skips it.

-- +goose Up
ALTER TABLE conversations
    ADD COLUMN status text NOT NULL DEFAULT 'open'
        CONSTRAINT conversations_status_check CHECK (status IN ('open', 'pending', 'resolved')),
    ADD COLUMN assignee_id bigint NULL REFERENCES users (id);

-- Views by status (with or without "unassigned"), and by assignee.
CREATE INDEX conversations_status_idx ON conversations (status, assignee_id);
CREATE INDEX conversations_assignee_idx ON conversations (assignee_id, status)
    WHERE assignee_id IS NOT NULL;

-- Each change of a conversation's status or assignee. after_seq is the
-- conversation's last_seq when it was made, read under the conversation's
-- row lock, as are the ids: within a conversation, id order is after_seq
-- order.
CREATE TABLE conversation_events (
    id              bigserial   PRIMARY KEY,
    conversation_id bigint      NOT NULL REFERENCES conversations (id),
    after_seq       bigint      NOT NULL CHECK (after_seq >= 0),
    kind            text        NOT NULL CHECK (kind IN ('status', 'assignee')),
    status          text        NULL CHECK (status IN ('open', 'pending', 'resolved')),
    assignee_id     bigint      NULL REFERENCES users (id),
    actor_id        bigint      NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    CHECK ((kind = 'status') = (status IS NOT NULL)),
    CHECK (kind = 'assignee' OR assignee_id IS NULL)
);
CREATE INDEX conversation_events_thread_idx
    ON conversation_events (conversation_id, after_seq, id);

-- One read mark per staff user and conversation: the last seq they read.
-- Updated in place (its only index, the key, never changes: HOT).
CREATE TABLE read_marks (
    user_id         bigint NOT NULL REFERENCES users (id),
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    seq             bigint NOT NULL CHECK (seq >= 0),
    PRIMARY KEY (user_id, conversation_id)
) WITH (fillfactor = 70);

CREATE INDEX IF NOT EXISTS messages_body_fts_idx
    ON messages USING gin (to_tsvector('simple', body));

-- +goose StatementBegin
DO $do$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'grainchat: pg_trgm is not available (%): visitor name search reads the users table', SQLERRM;
        RETURN;
    END;
    -- The extension may live in another schema than users: name its
    -- operator class through the extension's schema.
    EXECUTE format('CREATE INDEX IF NOT EXISTS users_name_trgm_idx ON users USING gin (name %I.gin_trgm_ops)',
        (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'));
END
$do$;
-- +goose StatementEnd

-- grainchat_append_messages: 00007's function, which also reopens. A fresh
-- message (not a duplicate) that is not from staff (p_sender_is_admin
-- false), stored in a conversation that is pending or resolved (read under
-- the batch's row locks), moves it back to open in the same statement and
-- records a status event: actor the sender, after_seq the seq before that
-- message, created_at the batch's time. Only the first such message of a
-- conversation in the batch reopens it; its row returns the event
-- (reopen_event_id, and the actor's external id and name from users).
-- Everything else is 00007's, unchanged: locks, time, seqs, duplicates.
-- The output type changes, so the function is dropped and created again
-- (CREATE OR REPLACE cannot change it); prepared statements that call it
-- are prepared again (pgstore's checkPrepared).
DROP FUNCTION grainchat_append_messages(bigint[], bigint[], text[], boolean[], text[], text[]);

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
DROP FUNCTION grainchat_append_messages(bigint[], bigint[], text[], boolean[], text[], text[]);
-- +goose StatementBegin
CREATE FUNCTION grainchat_append_messages(
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


DROP INDEX IF EXISTS users_name_trgm_idx;
DROP INDEX messages_body_fts_idx;
DROP TABLE read_marks;
DROP TABLE conversation_events;
DROP INDEX conversations_assignee_idx;
DROP INDEX conversations_status_idx;
ALTER TABLE conversations DROP COLUMN assignee_id, DROP COLUMN status;
