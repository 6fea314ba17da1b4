-- grainchat_store holds the store's identity (storage.Store.StoreID): a
-- random UUID, created once with the schema, read by every node at Open. It
-- tells pages that the data set behind the server is not the one they cached
-- ids from.
--
-- A restored backup keeps the id it had when the backup was taken, while its
-- id sequences are rewound to that moment: give it a new id before serving it
-- (pgstore's Store.ResetStoreID, or
-- UPDATE grainchat_store SET id = gen_random_uuid()::text). See StoreID in
-- storage/storage.go.
--
-- The table has exactly one row: its key is a boolean that can only be true.

-- +goose Up
CREATE TABLE grainchat_store (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id        text    NOT NULL CHECK (id <> '')
);
INSERT INTO grainchat_store (id) VALUES (gen_random_uuid()::text);

-- +goose Down
DROP TABLE grainchat_store;
