-- Email notifications (storage.Mail; integrations/mail sends them): per
-- conversation, how far its staff replies were emailed to the visitor, and
-- whether staff were told of it as a new conversation. A mail is claimed
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
    staff_retry_at      timestamptz NULL
) WITH (fillfactor = 70);

-- +goose Down
DROP TABLE mail_state;
