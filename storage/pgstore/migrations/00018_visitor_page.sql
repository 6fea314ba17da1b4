-- The page a visitor's browser last reported (storage.VisitorPage,
-- SaveVisitorPages): the host page's URL and title, and the browser's
-- User-Agent, with when it was reported. Written off the message path (the
-- nodes' presence actors, in batches, at most once per visitor every few
-- seconds); only staff reads (InboxView, ConversationEntry) show it.
-- page_seen_at orders the reports: an older one never replaces a newer.

-- +goose Up
ALTER TABLE users
    ADD COLUMN page_url text NULL CHECK (page_url IS NULL OR (page_url <> '' AND octet_length(page_url) <= 2048)),
    ADD COLUMN page_title text NULL CHECK (page_title IS NULL OR octet_length(page_title) <= 300),
    ADD COLUMN user_agent text NULL CHECK (user_agent IS NULL OR octet_length(user_agent) <= 512),
    ADD COLUMN page_seen_at timestamptz NULL,
    ADD CONSTRAINT users_page_complete CHECK (
        (page_url IS NULL AND page_seen_at IS NULL) OR
        (page_url IS NOT NULL AND page_title IS NOT NULL AND user_agent IS NOT NULL AND page_seen_at IS NOT NULL));

-- +goose Down
ALTER TABLE users DROP CONSTRAINT users_page_complete,
    DROP COLUMN page_url, DROP COLUMN page_title, DROP COLUMN user_agent, DROP COLUMN page_seen_at;
