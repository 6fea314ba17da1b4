package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// This file owns search indexing: IndexSearch and the background loop that
// runs it (migration 00008 says why search is indexed off the message path).

// searchBatch is how many search_queue rows one IndexSearch takes: each is
// one AppendMessages call (storage/batch writes at most 500 messages per
// call) or 1,000 ids of the messages stored before migration 00008.
const searchBatch = 16

// indexSearchQuery takes up to $1 rows of search_queue that no other
// indexer holds, deletes them and indexes the committed messages whose ids
// they span, in id order, skipping those message_search holds already (ON
// CONFLICT: ranges overlap only when batches took ids at the same moment,
// so no probe is spent before the insert; two indexers of overlapping
// ranges wait for each other in id order, without deadlocking). One
// statement, one snapshot: every message a visible queue row spans is
// visible (its batch committed with the row). It returns how many messages
// the rows span (0: nothing left that another indexer is not taking) and
// how many it indexed.
//
// The ranges are probed through the messages' primary key (LATERAL, one
// range scan per row), never by a scan of the table.
const indexSearchQuery = `
	WITH claimed AS (
		DELETE FROM search_queue
		WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM search_queue LIMIT $1 FOR UPDATE SKIP LOCKED))
		RETURNING first_id, last_id
	), covered AS (
		SELECT m.id, m.conversation_id, m.body
		FROM claimed q
		CROSS JOIN LATERAL (
			SELECT id, conversation_id, body FROM messages
			WHERE id BETWEEN q.first_id AND q.last_id
		) m
	), indexed AS (
		INSERT INTO message_search (message_id, conversation_id, tsv)
		SELECT c.id, c.conversation_id, to_tsvector('simple', c.body)
		FROM covered c
		ORDER BY c.id
		ON CONFLICT (message_id) DO NOTHING
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM covered), (SELECT count(*) FROM indexed)`

// IndexSearch indexes one bounded batch of the messages waiting for search
// (a few AppendMessages calls' worth) and returns how many messages it took
// off the queue, indexed now or found indexed already. 0 means the queue
// is empty, or holds only batches other indexers (other nodes) are indexing
// at this moment. Calls from one Store run one at a time, and wait for the
// background loop's batch in flight (see Options.SearchIndexInterval): a
// caller that repeats IndexSearch until it returns 0 then finds searchable
// every message committed before its first call, unless another Store is
// indexing some of them at that moment. Safe for concurrent use, by several
// Stores on one database too: each message is indexed once. Errors are
// *storage.Error (EUNAVAILABLE when the database cannot be reached).
func (s *Store) IndexSearch(ctx context.Context) (int, error) {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.prepared(ctx, indexSearchQuery)
	if err != nil {
		return 0, dbError(ctx, "pgstore: index search: prepare", err)
	}
	// The batch commits without waiting for its WAL to reach the disk:
	// the appends' commits do not queue behind the indexer's flushes. A
	// crash may lose the latest batches; they are then lost whole (queue
	// rows and index entries are one transaction), and indexed again.
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, dbError(ctx, "pgstore: index search: begin", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return 0, dbError(ctx, "pgstore: index search", err)
	}
	var covered, indexed int
	if err := tx.StmtxContext(ctx, st).QueryRowContext(ctx, searchBatch).Scan(&covered, &indexed); err != nil {
		return 0, dbError(ctx, "pgstore: index search", s.checkPrepared(indexSearchQuery, err))
	}
	if err := tx.Commit(); err != nil {
		return 0, dbError(ctx, "pgstore: index search: commit", err)
	}
	return covered, nil
}

// startIndexer starts the background loop (Options.SearchIndexInterval),
// unless it is disabled; stopIndexer stops it.
func (s *Store) startIndexer() {
	if s.opts.SearchIndexInterval < 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopIndex = func() {
		cancel()
		<-done
	}
	go func() {
		defer close(done)
		s.indexLoop(ctx, s.opts.SearchIndexInterval)
	}()
}

// stopIndexer stops the background loop and waits for it to return. It may
// be called more than once.
func (s *Store) stopIndexer() {
	s.stopOnce.Do(func() {
		if s.stopIndex != nil {
			s.stopIndex()
		}
	})
}

// indexLoop indexes everything waiting every interval, until ctx ends. A
// failure is logged once, and its end once; the loop carries on.
//
// It yields to the message path: a pass is skipped while this Store's
// appends were in flight more than half of the last interval (the database
// is the message path's bottleneck, and indexing would take its time from
// messages), unless the queue was last found empty more than
// Options.SearchIndexMaxLag ago. Search then lags behind messages by up to
// that bound at peaks, and indexes what waits when they pass; a load that
// saturates the store for longer pays for indexing as it goes.
func (s *Store) indexLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	start := time.Now()
	yield := storage.NewYield(s.opts.SearchIndexMaxLag, start, s.appending.busy(start))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if yield.Skip(now, s.appending.busy(now)) {
			s.yielded.Add(1)
			continue
		}
		total, err := 0, error(nil)
		for ctx.Err() == nil {
			var n int
			n, err = s.IndexSearch(ctx)
			total += n
			if err != nil || n == 0 {
				break
			}
		}
		if err == nil && ctx.Err() == nil {
			yield.Drained(now)
		}
		switch {
		case err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled):
			if !failing {
				s.logger.Warn("pgstore: search indexing failed; retrying every interval", "err", err, "interval", interval)
			}
			failing = true
		case err == nil && failing:
			s.logger.Info("pgstore: search indexing works again", "indexed", total)
			failing = false
		}
	}
}
