-- Messages drop their foreign keys to conversations and users: their checks
-- ran as two triggers per inserted row and took about two thirds of the time
-- of a batch append (500 messages: about 65 ms with them, 22 ms without, on
-- the reference 2-core machine; docs/BENCHMARKS.md).
--
-- What the keys guarded still holds: messages are only written by
-- grainchat_append_messages, which writes a message only when its
-- conversation (locked FOR UPDATE until commit) and its sender exist, and
-- grainchat never deletes users or conversations.

-- +goose Up
ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_sender_id_fkey;

-- +goose Down
ALTER TABLE messages ADD CONSTRAINT messages_conversation_id_fkey
    FOREIGN KEY (conversation_id) REFERENCES conversations (id);
ALTER TABLE messages ADD CONSTRAINT messages_sender_id_fkey
    FOREIGN KEY (sender_id) REFERENCES users (id);
