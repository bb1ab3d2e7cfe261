package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"

	_ "github.com/jackc/pgx/v5/stdlib" // registers database/sql driver "pgx"
)

// Store is an open database with its schema migrated. It is safe for concurrent use;
// the tables' accessors (Archive, …) share its connection pool.
type Store struct {
	db *sql.DB
	// archiveDB is the archive's own pool on SQLite (synchronous NORMAL, see
	// Archive.Checkpoint), nil where the archive shares db.
	archiveDB *sql.DB
	d         dialect
	archive   *Archive
	applied   int // migrations applied by this Open, for tests
	// seenInserts counts MarkSeen inserts, to prune every seenPruneEvery; seenMax is
	// SeenMax (tests lower it); seenEvicted counts the marks dropped to keep it.
	seenInserts atomic.Uint64
	seenMax     int
	seenEvicted atomic.Uint64
	// writeGate serialises the hot writers of this process on SQLite (the gateway's
	// ingest and mark writers, its retries and failures, puppet sightings, and the
	// archive's Put on its own pool): nil on PostgreSQL. SQLite has one write lock per database, and a writer that
	// finds it taken does not queue: its busy handler sleeps 1, 2, 5, 10 … 100 ms and
	// tries again, so two writers that meet cost each other tens of milliseconds (the
	// block profile of BenchmarkGateway_APIToStatus: the ingest and the mark writers
	// each blocked seconds in BEGIN IMMEDIATE). Queued here they take turns at once.
	// A gated writer that still meets the lock (a writer not gated: pruning, rarer
	// tables, another process) waits under the busy timeout as before.
	writeGate writeGate
	// lastPeerStamp is the last peer_cache added_at given (peerStamp).
	lastPeerStamp atomic.Int64
}

// writeGate is a lock of capacity 1 that a waiter can give up when its ctx ends; the
// nil gate is no lock.
type writeGate chan struct{}

// lock takes the gate, or returns ctx's error; the caller calls the returned func once
// its write (transaction or statement) has ended.
func (g writeGate) lock(ctx context.Context) (unlock func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g <- struct{}{}:
		return func() { <-g }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lockWrite takes the store's write gate (writeGate.lock).
func (s *Store) lockWrite(ctx context.Context) (unlock func(), err error) {
	return s.writeGate.lock(ctx)
}

// Open connects to the database the config names, applies the embedded migrations it
// lacks (in one transaction) and returns the store. It blocks for the connection and the
// migrations, bounded by ctx; the caller owns the Store and must Close it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		db  *sql.DB
		err error
	)
	switch cfg.Driver {
	case DriverSQLite:
		if err := secureSQLiteFiles(cfg.Path); err != nil {
			return nil, fmt.Errorf("open %s store: %w", cfg.Driver, err)
		}
		db = openSQLite(cfg, "FULL")
	case DriverPostgres:
		db, err = sql.Open("pgx", cfg.DSN)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", cfg.Driver, err)
	}
	var archiveDB *sql.DB
	if cfg.Driver == DriverSQLite {
		// The archive writes through a pool of its own at synchronous NORMAL: its
		// commits reach the WAL without waiting for the disk, and Checkpoint (the
		// mailserver calls it every few milliseconds) makes them durable. The other
		// tables' pool stays at FULL: each of its commits syncs the WAL, archive frames
		// included.
		archiveDB = openSQLite(cfg, "NORMAL")
	}
	s, err := openDB(ctx, db, archiveDB, cfg.Driver)
	if err != nil {
		db.Close()
		if archiveDB != nil {
			archiveDB.Close()
		}
		return nil, err
	}
	if archiveDB != nil {
		s.archive.walPath = cfg.Path + "-wal"
	}
	return s, nil
}

// OpenDB is Open for a *sql.DB the caller opened with a driver of its choice, for
// dialect "sqlite" or "postgres". A SQLite handle must set what Open's DSN sets (WAL,
// busy timeout, foreign keys, immediate write transactions). Closing the Store closes db.
// It exists for benchmarks that compare drivers; the product uses Open.
func OpenDB(ctx context.Context, db *sql.DB, driver string) (*Store, error) {
	return openDB(ctx, db, nil, driver)
}

// openDB migrates db and builds the store; archiveDB, when not nil, is the archive's own
// pool on the same database.
func openDB(ctx context.Context, db, archiveDB *sql.DB, driver string) (*Store, error) {
	d, ok := dialects[driver]
	if !ok {
		return nil, fmt.Errorf("store.driver: %q is neither %q nor %q: %w", driver, DriverSQLite, DriverPostgres, ErrConfig)
	}
	s := &Store{db: db, archiveDB: archiveDB, d: d, seenMax: SeenMax}
	if driver == DriverSQLite {
		s.writeGate = make(writeGate, 1)
	}
	n, err := s.migrate(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s store: %w", driver, err)
	}
	s.applied = n
	s.archive = newArchive(cmp.Or(archiveDB, db), d)
	s.archive.gate = s.writeGate
	return s, nil
}

// Archive returns the mailserver archive (the envelopes table).
func (s *Store) Archive() *Archive { return s.archive }

// Close closes the connection pool; in-flight calls finish first (database/sql).
func (s *Store) Close() error {
	s.archive.closeStmts()
	if s.archiveDB != nil {
		if err := s.archiveDB.Close(); err != nil {
			s.db.Close()
			return fmt.Errorf("close %s store: archive: %w", s.d.name, err)
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s store: %w", s.d.name, err)
	}
	return nil
}
