-- The inbox (Store.InboxPage and Inbox) reads the whole conversations table
-- on each page and keeps the newest rows in a top-N sort: no index serves its
-- order (see 00004). From about 8 MB (60,000 conversations) the planner
-- hands part of that scan to a parallel worker. On the 2-core reference
-- machine (docs/BENCHMARKS.md) that made a page slower and cost more CPU:
-- 100,000 conversations, page of 50, pgbench, mean latency with a worker /
-- without: 62 / 14 ms (first page), 39 / 10 ms (middle page). The worker's
-- start-up and the merge cost more than the scan they share, and the worker
-- takes a core from the message path. No other query scans this table: the
-- message path reads its rows by key.
--
-- Scans of conversations stay serial, whatever the server's
-- max_parallel_workers_per_gather.

-- +goose Up
ALTER TABLE conversations SET (parallel_workers = 0);

-- +goose Down
ALTER TABLE conversations RESET (parallel_workers);
