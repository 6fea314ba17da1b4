-- The desk's canned replies (storage.Desk: CannedReplies, SaveCannedReply,
-- DeleteCannedReply) and an index for the staff list (StaffUsers).
--
-- A name is stored in lower case (storage.CannedReplyInput.Normalize), so
-- the plain unique constraint makes names unique whatever their case;
-- SaveCannedReply reports its violation as ECONFLICT. The checks repeat the
-- rules Normalize applies, so that nothing else writes a reply the stores
-- would refuse. At most storage.MaxCannedReplies (500) replies: a creation
-- counts them under a lock that orders it with every other write of the
-- table (see pgstore's SaveCannedReply), so concurrent creations cannot
-- pass the bound together.
--
-- Both lists are sorted by byte order (COLLATE "C"), as memstore sorts
-- them, whatever the database's collation. The staff list is read each
-- time a staff page connects: a partial index of the staff users, in list
-- order, keeps it from reading every visitor. A user's name or role
-- changes rarely (on a connection with a changed token), so the index
-- costs nothing on the message path.

-- +goose Up
CREATE TABLE canned_replies (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL CONSTRAINT canned_replies_name_key UNIQUE
                           CHECK (name ~ '^[a-z0-9_-]{1,32}$'),
    body       text        NOT NULL CHECK (body <> '' AND char_length(body) <= 4000),
    updated_by bigint      NOT NULL REFERENCES users (id),
    updated_at timestamptz NOT NULL
);

CREATE INDEX users_staff_idx ON users (name COLLATE "C", id) WHERE is_admin;

-- +goose Down
DROP INDEX users_staff_idx;
DROP TABLE canned_replies;
