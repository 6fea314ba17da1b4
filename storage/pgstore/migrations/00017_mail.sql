-- Email notifications (storage.Mail; integrations/mail sends them): per
-- conversation, how far its staff replies were emailed to the visitor,
-- whether staff were told of it as a new conversation, and the transcript
-- its visitor asked for by email. A mail is claimed
-- (visitor_claimed_seq, staff_state 'claimed') in its own transaction before
-- it is sent and settled after, so a sender that dies mid-send leaves a claim
-- that its successor settles as sent: a mail is never sent twice (one may be
-- lost in that window instead; docs/EMAIL.md). Nothing on the message path
-- reads or writes this table.

-- +goose Up
CREATE TABLE mail_state (
    conversation_id     bigint      PRIMARY KEY REFERENCES conversations (id),
    -- The visitor was emailed (or given up on) the staff replies up to here.
    visitor_mailed_seq  bigint      NOT NULL DEFAULT 0 CHECK (visitor_mailed_seq >= 0),
    -- A mail of the replies up to here is being sent.
    visitor_claimed_seq bigint      NULL CHECK (visitor_claimed_seq > 0),
    visitor_failures    integer     NOT NULL DEFAULT 0,
    visitor_retry_at    timestamptz NULL,
    -- Staff's new-conversation mail: NULL not decided, 'claimed' being sent,
    -- 'sent', 'skipped' (staff were online, or there was nobody to tell).
    staff_state         text        NULL CHECK (staff_state IN ('claimed', 'sent', 'skipped')),
    staff_failures      integer     NOT NULL DEFAULT 0,
    staff_retry_at      timestamptz NULL,
    -- The visitor asked for the transcript by email (NULL: no request
    -- waiting); claimed while being sent; sent_at rate-limits requests.
    transcript_requested_at timestamptz NULL,
    transcript_claimed      boolean     NOT NULL DEFAULT false,
    transcript_failures     integer     NOT NULL DEFAULT 0,
    transcript_retry_at     timestamptz NULL,
    transcript_sent_at      timestamptz NULL
) WITH (fillfactor = 70);

-- The transcript requests waiting: few, found without a scan.
CREATE INDEX mail_state_transcript_idx ON mail_state (transcript_requested_at)
    WHERE transcript_requested_at IS NOT NULL;

-- +goose Down
DROP TABLE mail_state;
