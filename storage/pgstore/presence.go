package pgstore

import (
	"context"
	"time"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// This file implements storage.Presence (00011).

// saveLastSeenQuery upserts last-seen times ($1 ids, $2 times, no id twice),
// never backwards, skipping unknown conversations.
const saveLastSeenQuery = `
	INSERT INTO visitor_presence (conversation_id, last_seen_at)
	SELECT v.id, v.at FROM unnest($1::bigint[], $2::timestamptz[]) AS v(id, at)
	JOIN conversations c ON c.id = v.id
	ON CONFLICT (conversation_id) DO UPDATE
	SET last_seen_at = GREATEST(visitor_presence.last_seen_at, EXCLUDED.last_seen_at)`

// SaveLastSeen implements storage.Presence with one statement.
func (s *Store) SaveLastSeen(ctx context.Context, seen []storage.LastSeen) error {
	if len(seen) == 0 {
		return nil
	}
	if len(seen) > storage.MaxLastSeenBatch {
		return storage.Errorf(storage.EINVALID, "at most %d last-seen times at once", storage.MaxLastSeenBatch)
	}
	latest := make(map[int64]time.Time, len(seen))
	for _, l := range seen {
		if at, ok := latest[l.ConversationID]; !ok || l.At.After(at) {
			latest[l.ConversationID] = l.At
		}
	}
	ids := make([]int64, 0, len(latest))
	times := make([]string, 0, len(latest))
	for id, at := range latest {
		ids = append(ids, id)
		times = append(times, at.UTC().Format(time.RFC3339Nano))
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, saveLastSeenQuery, pq.Array(ids), pq.Array(times)); err != nil {
		return dbError(ctx, "pgstore: save last seen", err)
	}
	return nil
}

// LastSeen implements storage.Presence with one statement.
func (s *Store) LastSeen(ctx context.Context, ids []int64) (map[int64]time.Time, error) {
	out := make(map[int64]time.Time)
	if len(ids) == 0 {
		return out, nil
	}
	if len(ids) > storage.MaxLastSeenBatch {
		return nil, storage.Errorf(storage.EINVALID, "at most %d conversations at once", storage.MaxLastSeenBatch)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT conversation_id, last_seen_at FROM visitor_presence WHERE conversation_id = ANY($1::bigint[])`, pq.Array(ids))
	if err != nil {
		return nil, dbError(ctx, "pgstore: last seen", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, dbError(ctx, "pgstore: last seen", err)
		}
		out[id] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: last seen", err)
	}
	return out, nil
}

// saveVisitorPagesQuery writes visitors' pages ($1 user ids, no id twice;
// $2 URLs, $3 titles, $4 user agents, $5 times), never replacing a newer
// one, skipping unknown users.
const saveVisitorPagesQuery = `
	UPDATE users u
	SET page_url = v.url, page_title = v.title, user_agent = v.ua, page_seen_at = v.at
	FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS v(id, url, title, ua, at)
	WHERE u.id = v.id AND (u.page_seen_at IS NULL OR u.page_seen_at <= v.at)`

// SaveVisitorPages implements storage.Presence with one statement (00018).
func (s *Store) SaveVisitorPages(ctx context.Context, pages []storage.VisitorPage) error {
	latest, err := rules.VisitorPages(pages)
	if err != nil || len(latest) == 0 {
		return err
	}
	ids := make([]int64, len(latest))
	urls := make([]string, len(latest))
	titles := make([]string, len(latest))
	agents := make([]string, len(latest))
	times := make([]string, len(latest))
	for i, p := range latest {
		ids[i], urls[i], titles[i], agents[i] = p.UserID, p.URL, p.Title, p.UserAgent
		times[i] = p.At.Format(time.RFC3339Nano)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err = s.db.ExecContext(ctx, saveVisitorPagesQuery,
		pq.Array(ids), pq.Array(urls), pq.Array(titles), pq.Array(agents), pq.Array(times))
	if err != nil {
		return dbError(ctx, "pgstore: save visitor pages", err)
	}
	return nil
}
