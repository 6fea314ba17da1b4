-- Internal notes (storage.Change.Note): staff-only events in a conversation's
-- thread, with their text in body. They ride on conversation_events, so they
-- are ordered with messages and the other events the same way (after_seq,
-- under the conversation's row lock), and cost the message path nothing.

-- +goose Up
ALTER TABLE conversation_events ADD COLUMN body text NULL;
ALTER TABLE conversation_events DROP CONSTRAINT conversation_events_kind_check;
ALTER TABLE conversation_events ADD CONSTRAINT conversation_events_kind_check
    CHECK (kind IN ('status', 'assignee', 'note'));
ALTER TABLE conversation_events ADD CONSTRAINT conversation_events_note_check
    CHECK ((kind = 'note') = (body IS NOT NULL) AND (body IS NULL OR (body <> '' AND char_length(body) <= 20000)));

-- +goose Down
DELETE FROM conversation_events WHERE kind = 'note';
ALTER TABLE conversation_events DROP CONSTRAINT conversation_events_note_check;
ALTER TABLE conversation_events DROP CONSTRAINT conversation_events_kind_check;
ALTER TABLE conversation_events ADD CONSTRAINT conversation_events_kind_check
    CHECK (kind IN ('status', 'assignee'));
ALTER TABLE conversation_events DROP COLUMN body;
