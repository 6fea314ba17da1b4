-- The support desk (storage.Desk): a conversation's status and assignee, the
-- recorded changes of both (conversation_events), each staff user's read
-- marks (read_marks), indexes for the inbox views, search (message_search,
-- filled off the message path through search_queue), and
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
-- Search is indexed off the message path. A GIN index on the messages
-- (to_tsvector of every body, evaluated and inserted by the append, while
-- the batch's conversations are locked) cost batches of 100-500 messages
-- 30-50 % of their time. Instead:
--
-- * message_search holds each message's 'simple' (language-neutral) text
--   search vector, with its conversation, under a GIN index; InboxView's
--   search reads it. Visitor names are matched with ILIKE '%text%', served
--   by a trigram index when the pg_trgm extension can be installed (it is
--   trusted: a database owner may install it, when the server has it, as
--   Debian's postgresql package does); without it the same query reads the
--   users table.
-- * grainchat_append_messages adds one row per call to search_queue: the
--   lowest and highest id of the messages it stored (none when it stored
--   none). Two bigints, no index, no expression over the text: the message
--   path's only extra write, per batch, not per message.
-- * An indexer (pgstore's Store.IndexSearch, run by every chatd node in the
--   background) takes a few queue rows with DELETE ... FOR UPDATE SKIP
--   LOCKED ... RETURNING and, in the same statement, indexes the messages
--   whose ids those rows span and that message_search does not hold yet.
--
-- Why a queue and not a watermark: ids come from a sequence when the append
-- runs, not when it commits, so a batch with lower ids can commit after one
-- with higher ids; an indexer that remembered "indexed up to id N" would skip
-- it forever. A queue row becomes visible exactly when its batch commits (the
-- same transaction), and the indexer's statement reads the queue and the
-- messages in one snapshot: every message a visible row spans is visible
-- too. A range rather than a list of ids: the ids of one call are
-- consecutive unless concurrent calls took ids from the sequence at the same
-- moment; then ranges overlap, and the indexer indexes every committed
-- message of its range, whoever stored it (a message whose batch has not
-- committed is left to that batch's own row), skipping the ones already
-- indexed. SKIP LOCKED lets several indexers (one per node) take disjoint
-- rows; a row taken by an indexer whose transaction fails comes back. Two
-- indexers inserting the same message (overlapping ranges) both go in id
-- order, so they wait for each other without deadlocking, and ON CONFLICT DO
-- NOTHING keeps one. Per-conversation seq watermarks would cost the message
-- path nothing, but finding the conversations that moved means reading all
-- of them on every pass (last_seq is not indexed: 00004), on every node.
--
-- A message is searchable once an indexer has run after its batch
-- committed: within the indexer's interval (500 ms by default) when it keeps
-- up. The messages stored before this migration are queued by it, in ranges
-- of 1,000 ids, and indexed the same way after it. The backfill reads
-- messages after ALTER TABLE conversations, whose lock waits for every
-- append in flight (an append locks its conversations' rows) and holds off
-- new ones until this migration commits: no append falls between the two.
--
-- Adding status with a constant default rewrites nothing (PostgreSQL >= 11).

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

-- Each message's text search vector, filled by the indexer.
CREATE TABLE message_search (
    message_id      bigint   PRIMARY KEY,
    conversation_id bigint   NOT NULL,
    tsv             tsvector NOT NULL
);
CREATE INDEX message_search_tsv_idx ON message_search USING gin (tsv);

-- The batches not indexed yet: ranges of message ids. No index: it is read
-- from its start (SKIP LOCKED) and stays short while the indexer keeps up;
-- rows are deleted as fast as they come, so vacuum it often.
CREATE TABLE search_queue (
    first_id bigint NOT NULL,
    last_id  bigint NOT NULL,
    CHECK (first_id <= last_id)
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

INSERT INTO search_queue (first_id, last_id)
SELECT g, g + 999
FROM generate_series((SELECT min(id) FROM messages), (SELECT max(id) FROM messages), 1000) g;

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
-- (reopen_event_id, and the actor's external id and name from users). It
-- queues its new messages for the search indexer (search_queue, above).
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
DROP TABLE search_queue;
DROP TABLE message_search;
DROP TABLE read_marks;
DROP TABLE conversation_events;
DROP INDEX conversations_assignee_idx;
DROP INDEX conversations_status_idx;
ALTER TABLE conversations DROP COLUMN assignee_id, DROP COLUMN status;
