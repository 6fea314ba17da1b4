-- Initial schema: users, their one conversation each, and its messages.

-- +goose Up
CREATE TABLE users (
    id          bigserial   PRIMARY KEY,
    external_id text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    is_admin    boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conversations (
    id              bigserial   PRIMARY KEY,
    user_id         bigint      NOT NULL UNIQUE REFERENCES users (id),
    -- last_seq is the seq of the newest message (0: none). AppendMessages
    -- locks this row to assign the next seqs.
    last_seq        bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    last_message_at timestamptz NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The admin inbox: conversations with messages, most recent activity first.
CREATE INDEX conversations_inbox_idx
    ON conversations (last_message_at DESC, id DESC)
    WHERE last_seq > 0;

CREATE TABLE messages (
    id              bigserial   PRIMARY KEY,
    conversation_id bigint      NOT NULL REFERENCES conversations (id),
    seq             bigint      NOT NULL CHECK (seq > 0),
    sender_id       bigint      NOT NULL REFERENCES users (id),
    sender_name     text        NOT NULL,
    sender_is_admin boolean     NOT NULL,
    body            text        NOT NULL,
    client_msg_id   text        NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq)
);

-- Idempotent appends: one message per (conversation, sender, client message id).
CREATE UNIQUE INDEX messages_client_msg_id_key
    ON messages (conversation_id, sender_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;

-- +goose Down
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE users;
