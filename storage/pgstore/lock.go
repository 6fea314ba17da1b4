package pgstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// This file owns the cluster-wide locks (storage.Lock): PostgreSQL session
// advisory locks, each held on a connection of its own.

// lockCheck is how often a held lock checks its session.
const lockCheck = time.Second

// sessionLock tries to take the advisory lock (class, key) on a connection of
// its own, which it keeps until Release or until the session fails a check
// (every lockCheck, 5 s at most each): then the connection is discarded
// (ending the session, so releasing the lock if the database still sees it)
// and Lost is closed. ok is false when another session holds the lock.
func (s *Store) sessionLock(ctx context.Context, what string, class, key int64) (storage.Lock, bool, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, dbError(ctx, "pgstore: lock "+what+": connect", err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2)`, class, key).Scan(&ok); err != nil {
		discard(conn)
		return nil, false, dbError(ctx, "pgstore: lock "+what, err)
	}
	if !ok {
		_ = conn.Close()
		return nil, false, nil
	}
	l := &heldLock{conn: conn, lost: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l, true, nil
}

// discard closes conn's session instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// heldLock is a held lock: its goroutine owns the connection.
type heldLock struct {
	conn     *sql.Conn
	lost     chan struct{}
	release  chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func (l *heldLock) Lost() <-chan struct{} { return l.lost }

// Release discards the session (so the lock is free at once) and waits for
// the watcher to end.
func (l *heldLock) Release() {
	l.stopOnce.Do(func() { close(l.release) })
	<-l.done
}

func (l *heldLock) watch() {
	defer close(l.done)
	defer discard(l.conn)
	t := time.NewTicker(lockCheck)
	defer t.Stop()
	for {
		select {
		case <-l.release:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := l.conn.ExecContext(ctx, `SELECT 1`)
		cancel()
		if err != nil {
			close(l.lost)
			return
		}
	}
}
