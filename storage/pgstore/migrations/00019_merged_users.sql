-- Anonymous visitors who signed in (storage.Store.MergeUser): the anonymous
-- user points at the signed-in one their conversation was merged into, and
-- can no longer connect. Read with the user at connect; written once per
-- merge.

-- +goose Up
ALTER TABLE users ADD COLUMN merged_into bigint NULL REFERENCES users (id) CHECK (merged_into <> id);

-- +goose Down
ALTER TABLE users DROP COLUMN merged_into;
