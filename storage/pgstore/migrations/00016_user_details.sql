-- The visitor's details a token may carry (storage.UserInput's Email and
-- Context, the token's email and ctx claims), which staff see: the latest
-- token's, replaced at each connect that changes them (Connect reads them
-- with the user, so an unchanged connect still writes nothing). Context is
-- canonical JSON text, not jsonb: compared byte for byte with the token's on
-- every connect, and only ever shown whole.

-- +goose Up
ALTER TABLE users
    ADD COLUMN email text NULL CHECK (email IS NULL OR (email <> '' AND octet_length(email) <= 254)),
    ADD COLUMN context text NULL CHECK (context IS NULL OR (context <> '' AND octet_length(context) <= 4096));

-- +goose Down
ALTER TABLE users DROP COLUMN email, DROP COLUMN context;
