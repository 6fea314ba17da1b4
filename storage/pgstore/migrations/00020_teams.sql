-- Teams (storage.UserInput.Team): a visitor's team, from their token's team
-- claim, replaced at each connect like email and context. Staff whose token
-- names teams see the conversations of those teams and of visitors without
-- one (''). An old node inserting a user leaves it '' (no team): the column
-- has a default and nothing an old node reads changes.

-- +goose Up
ALTER TABLE users ADD COLUMN team text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN team;
