-- When each conversation's visitor was last connected (storage.Presence):
-- written in batches by the nodes' presence actors, a few seconds after a
-- visitor's last socket closed, never on the message path. Whether a visitor
-- is online now is not stored: the nodes know it.

-- +goose Up
CREATE TABLE visitor_presence (
    conversation_id bigint      PRIMARY KEY REFERENCES conversations (id),
    last_seen_at    timestamptz NOT NULL
) WITH (fillfactor = 70);

-- +goose Down
DROP TABLE visitor_presence;
