-- API keys (storage.APIKeys): secrets that servers present to the REST API,
-- each authenticating as its bot, a staff user (users.is_admin) with
-- external id 'apikey:' || lower(name) that only CreateAPIKey writes (the
-- stores refuse that prefix from tokens).
--
-- Only the key's SHA-256 is stored (key_hash). A key's name is unique in
-- lower case among the keys not revoked (api_keys_active_name_key), so a
-- revoked key's name can be given to a new key, which gets the same bot. At
-- most storage.MaxAPIKeys (100) keys not revoked: a creation counts them
-- under a lock that orders it with every other write of the table (see
-- pgstore's CreateAPIKey). The check repeats storage.NormalizeAPIKeyName's
-- rule. Keys are read by hash on every request a key authenticates
-- (api_keys_key_hash_key); last_used_at is written at most about once a
-- minute per key and node, off the request's path.

-- +goose Up
CREATE TABLE api_keys (
    id           bigserial   PRIMARY KEY,
    name         text        NOT NULL CHECK (name ~ '^[A-Za-z0-9_ -]{1,64}$' AND name = btrim(name)),
    key_hash     bytea       NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE CHECK (length(key_hash) = 32),
    bot_user_id  bigint      NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by   bigint      NULL REFERENCES users (id),
    last_used_at timestamptz NULL,
    revoked_at   timestamptz NULL
);

CREATE UNIQUE INDEX api_keys_active_name_key ON api_keys (lower(name)) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_bot_user_idx ON api_keys (bot_user_id);

-- +goose Down
DROP TABLE api_keys;
