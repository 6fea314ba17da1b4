// Package pgstore is the PostgreSQL storage.Store, grainchat's production
// store. It uses database/sql with sqlx and the lib/pq driver.
//
// Several processes may share one database: message seqs are assigned under
// a row lock on the conversation (see AppendMessages), and migrations run
// under a PostgreSQL advisory lock (see Migrate).
package pgstore

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
)

var _ storage.Store = (*Store)(nil)

// Defaults for the zero values of Options.
const (
	DefaultMaxOpenConns    = 20
	DefaultAppendConns     = 2
	DefaultConnMaxLifetime = 30 * time.Minute
	DefaultConnMaxIdleTime = 5 * time.Minute
	DefaultConnectTimeout  = 5 * time.Second
	DefaultQueryTimeout    = 10 * time.Second

	DefaultSearchIndexInterval = 500 * time.Millisecond
	DefaultSearchIndexMaxLag   = 30 * time.Second
)

// Options configures a Store. Every zero value means the documented default.
type Options struct {
	// MaxOpenConns caps the pool's connections. Zero means
	// DefaultMaxOpenConns (20).
	MaxOpenConns int
	// AppendConns are connections of a pool of their own that only
	// AppendMessages uses (the message path), on top of MaxOpenConns: a
	// burst of other queries — hundreds of grains loading their
	// conversations after a cold start, history pages — then never makes a
	// batch of messages wait for a connection. Zero means DefaultAppendConns
	// (2: the appender's writer and one more); negative means none (appends
	// share the pool).
	AppendConns int
	// MaxIdleConns caps the idle connections kept open. Zero means
	// MaxOpenConns.
	MaxIdleConns int
	// ConnMaxLifetime closes connections older than this. Zero means
	// DefaultConnMaxLifetime (30 minutes).
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes connections idle for longer. Zero means
	// DefaultConnMaxIdleTime (5 minutes).
	ConnMaxIdleTime time.Duration
	// ConnectTimeout bounds opening one connection, unless the DSN sets
	// connect_timeout. Zero means DefaultConnectTimeout (5 seconds).
	ConnectTimeout time.Duration
	// QueryTimeout bounds each method call (a whole AppendMessages
	// transaction included) on top of the caller's context. Zero means
	// DefaultQueryTimeout (10 seconds); negative means no bound but ctx's.
	QueryTimeout time.Duration
	// SkipMigrations makes Open leave the schema alone. False (the default)
	// means Open applies pending migrations, as Migrate does.
	SkipMigrations bool
	// SearchIndexInterval is how often the Store's background loop indexes
	// the messages stored since its last pass, for InboxView's search (see
	// IndexSearch): a message is searchable within about this long after
	// its batch committed. Every node of a cluster runs the loop; they share
	// the work. Zero means DefaultSearchIndexInterval (500 ms); negative
	// means no loop (something else must call IndexSearch). Close stops it.
	SearchIndexInterval time.Duration
	// SearchIndexMaxLag bounds how long the indexer yields to the message
	// path: while this node's appends were in flight more than half of the
	// last interval (the store is saturated), the loop skips its pass, so
	// that indexing does not take the database's time from messages, unless
	// the oldest message waiting would then be older than this. Zero means
	// DefaultSearchIndexMaxLag (30 s); negative means never yield.
	SearchIndexMaxLag time.Duration
	// Webhooks makes the Store record webhook events (storage.Webhooks,
	// migration 00014) in the transactions that store what they describe:
	// one queue row per AppendMessages call, per desk change, per new
	// conversation and per moved read mark. Every node of a cluster must
	// agree (a node without it records nothing of its own writes). False
	// (the default) records nothing.
	Webhooks bool
}

// withDefaults returns o with its zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = DefaultMaxOpenConns
	}
	if o.AppendConns == 0 {
		o.AppendConns = DefaultAppendConns
	}
	if o.MaxIdleConns <= 0 || o.MaxIdleConns > o.MaxOpenConns {
		o.MaxIdleConns = o.MaxOpenConns
	}
	if o.ConnMaxLifetime <= 0 {
		o.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if o.ConnMaxIdleTime <= 0 {
		o.ConnMaxIdleTime = DefaultConnMaxIdleTime
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.SearchIndexInterval == 0 {
		o.SearchIndexInterval = DefaultSearchIndexInterval
	}
	if o.SearchIndexMaxLag == 0 {
		o.SearchIndexMaxLag = DefaultSearchIndexMaxLag
	}
	return o
}

// Store is the PostgreSQL storage.Store. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
	// appendDB is AppendMessages' pool (Options.AppendConns), db without one.
	appendDB *sqlx.DB
	logger   *slog.Logger
	opts     Options

	stmtMu sync.Mutex
	stmts  map[string]*sqlx.Stmt // see prepared

	idMu sync.RWMutex
	id   string // see StoreID

	appending busyMeter    // the message path's busy time, for the indexer (indexLoop)
	yielded   atomic.Int64 // indexer passes skipped to yield to the message path
	indexMu   sync.Mutex   // one IndexSearch at a time (see IndexSearch)
	stopIndex func()       // stops the indexer's loop; nil without one
	stopOnce  sync.Once
}

// prepared returns query prepared, preparing it on first use; database/sql
// then prepares it again by itself on each pooled connection. The queries
// of every connection and every message are prepared: the server parses and
// plans them once per connection instead of once per call. The round trip of
// a first prepare runs outside the lock, so that a slow one (the database
// unreachable) holds up only its own callers.
func (s *Store) prepared(ctx context.Context, query string) (*sqlx.Stmt, error) {
	return s.preparedOn(ctx, s.db, query)
}

// preparedOn is prepared on db's connections: the statements are kept by
// query, so a query must always be prepared on the same pool (appendQuery on
// appendDB, every other on db).
func (s *Store) preparedOn(ctx context.Context, db *sqlx.DB, query string) (*sqlx.Stmt, error) {
	s.stmtMu.Lock()
	st, ok := s.stmts[query]
	s.stmtMu.Unlock()
	if ok {
		return st, nil
	}
	st, err := db.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if first, ok := s.stmts[query]; ok {
		_ = st.Close() // another caller prepared it meanwhile
		return first, nil
	}
	if s.stmts == nil {
		s.stmts = make(map[string]*sqlx.Stmt)
	}
	s.stmts[query] = st
	return st, nil
}

// checkPrepared drops query's statement when err says the server no longer
// accepts it (another node's migration changed what it reads), so that the
// next call prepares it again. It returns err.
func (s *Store) checkPrepared(query string, err error) error {
	// 0A000: "cached plan must not change result type"; 26000: no such
	// prepared statement.
	if pq.As(err, "0A000", "26000") == nil {
		return err
	}
	s.stmtMu.Lock()
	st, ok := s.stmts[query]
	delete(s.stmts, query)
	s.stmtMu.Unlock()
	if ok {
		_ = st.Close()
	}
	return err
}

// getPrepared is sqlx's GetContext through a prepared statement.
func (s *Store) getPrepared(ctx context.Context, dest any, query string, args ...any) error {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return err
	}
	return s.checkPrepared(query, st.GetContext(ctx, dest, args...))
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string, as lib/pq accepts), applies pending migrations unless
// opts.SkipMigrations, checks that the database answers and reads its store
// id (StoreID; a schema without it is EINTERNAL), then starts the search
// indexer's loop (Options.SearchIndexInterval). A nil logger
// discards logs. Errors are *storage.Error: EUNAVAILABLE when the server
// cannot be reached, EINTERNAL otherwise (a bad DSN, a failed migration).
func Open(ctx context.Context, logger *slog.Logger, dsn string, opts Options) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	db, cfg, err := openDB(dsn, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: sqlx.NewDb(db, "postgres"), logger: logger, opts: opts}
	s.appendDB = s.db
	if opts.AppendConns > 0 {
		ao := opts
		ao.MaxOpenConns, ao.MaxIdleConns = opts.AppendConns, opts.AppendConns
		adb, _, err := openDB(dsn, ao)
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		s.appendDB = sqlx.NewDb(adb, "postgres")
	}
	closeDBs := func() {
		_ = db.Close()
		if s.appendDB != s.db {
			_ = s.appendDB.Close()
		}
	}

	if err := s.Ping(ctx); err != nil {
		closeDBs()
		return nil, err
	}
	if !opts.SkipMigrations {
		if err := migrate(ctx, logger, db); err != nil {
			closeDBs()
			return nil, err
		}
	}
	if s.id, err = s.readStoreID(ctx); err != nil {
		closeDBs()
		return nil, err
	}
	s.startIndexer()
	logger.Info("pgstore: opened",
		"host", cfg.Host, "port", cfg.Port, "database", cfg.Database, "user", cfg.User,
		"max_open_conns", opts.MaxOpenConns, "append_conns", max(opts.AppendConns, 0), "migrations", !opts.SkipMigrations, "store_id", s.id,
		"search_index_interval", opts.SearchIndexInterval, "search_index_max_lag", opts.SearchIndexMaxLag,
		"webhooks", opts.Webhooks)
	return s, nil
}

// openDB returns a pool for dsn configured by opts (which has its defaults).
// It does not connect yet.
func openDB(dsn string, opts Options) (*sql.DB, pq.Config, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, pq.Config{}, &storage.Error{Code: storage.EINTERNAL, Message: "pgstore: parse database DSN", Err: err}
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = opts.ConnectTimeout
	}
	// One round trip per parameterized query instead of two (parse, then
	// bind and execute). It changes only how []byte arguments are sent
	// (binary), and this package sends none.
	cfg.BinaryParameters = true
	// Times come back in UTC, whatever the server's default time zone.
	if cfg.TZ == "" {
		cfg.TZ = "UTC"
	}
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, pq.Config{}, &storage.Error{Code: storage.EINTERNAL, Message: "pgstore: configure driver", Err: err}
	}
	// TCP keepalives notice a peer that vanished without closing the
	// connection (a crashed host, a cut network) in about 30 seconds.
	connector.Dialer(dialer{d: net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3,
	}}})

	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxIdleConns)
	db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	db.SetConnMaxIdleTime(opts.ConnMaxIdleTime)
	return db, cfg, nil
}

// dialer is a pq.Dialer (and pq.DialerContext) around a net.Dialer.
type dialer struct{ d net.Dialer }

func (d dialer) Dial(network, address string) (net.Conn, error) {
	return d.d.Dial(network, address)
}

func (d dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	nd := d.d
	nd.Timeout = timeout
	return nd.Dial(network, address)
}

func (d dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.d.DialContext(ctx, network, address)
}

// DB returns the underlying pool, for tests and tools. Callers must not close it.
func (s *Store) DB() *sql.DB { return s.db.DB }

// withTimeout bounds one method call by opts.QueryTimeout.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.QueryTimeout < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.opts.QueryTimeout)
}

// Ping implements storage.Store.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		return dbError(ctx, "pgstore: ping", err)
	}
	return nil
}

// Close implements storage.Store. It stops the search indexer's loop and
// waits for it and for running queries to finish.
func (s *Store) Close() error {
	s.stopIndexer()
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		_ = st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	if s.appendDB != s.db {
		_ = s.appendDB.Close()
	}
	if err := s.db.Close(); err != nil {
		return &storage.Error{Code: storage.EINTERNAL, Message: "pgstore: close", Err: err}
	}
	s.logger.Info("pgstore: closed")
	return nil
}
