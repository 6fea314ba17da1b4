-- Internal notes are searched like messages (storage.InboxQuery.Search: the
-- inbox is staff-only, as notes are). Unlike messages (00008), a note is
-- indexed as it is written: notes are rare, written by staff through the
-- desk's change path, never on the message path, and found at once.

-- +goose Up
CREATE INDEX conversation_events_note_tsv_idx
    ON conversation_events USING gin (to_tsvector('simple', body))
    WHERE kind = 'note';

-- +goose Down
DROP INDEX conversation_events_note_tsv_idx;
