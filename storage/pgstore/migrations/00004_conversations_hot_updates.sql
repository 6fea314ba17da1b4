-- Every stored batch updates its conversations' last_seq and last_message_at.
-- With last_message_at indexed, each of those updates wrote a new entry in
-- every index of the table and left a dead row behind for vacuum: under load
-- the table and its indexes bloated within seconds and each batch got slower.
-- Without that index, and with room left on each page (fillfactor 50), the
-- updates are HOT: no index entry, and dead versions are pruned page by page.
--
-- The inbox query (Store.Inbox) now sorts the conversations that have
-- messages instead of reading an index. It runs when the inbox grain
-- activates, not per message or per connection (the grain keeps the inbox in
-- memory), so a top-N sort over all conversations is the cheaper side.
--
-- fillfactor applies to pages written from now on; an existing table gets it
-- throughout after a VACUUM FULL or pg_repack, at the operator's choosing.

-- +goose Up
DROP INDEX conversations_inbox_idx;
ALTER TABLE conversations SET (fillfactor = 50);

-- +goose Down
ALTER TABLE conversations RESET (fillfactor);
CREATE INDEX conversations_inbox_idx
    ON conversations (last_message_at DESC, id DESC)
    WHERE last_seq > 0;
