package store

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// Sentinel errors. Errors returned by this package wrap one of these, or one of package
// records' (records.ErrUnknownEntry), where callers may branch on the cause; driver
// errors are wrapped with what failed.
var (
	// ErrConfig: the Config is invalid (unknown driver, missing path or DSN).
	ErrConfig = errors.New("invalid store config")
	// ErrMalformedCursor: a query cursor is neither empty nor mailserver.CursorLength bytes.
	ErrMalformedCursor = errors.New("malformed cursor")
	// ErrInvalidQuery: a query's limit is not positive.
	ErrInvalidQuery = errors.New("invalid query")
	// ErrMigration: the embedded migrations are inconsistent, or the database holds a
	// schema version this binary does not know (a newer binary migrated it).
	ErrMigration = errors.New("schema migration")
	// ErrFull: a write found no room, because the disk is full (SQLite's SQLITE_FULL,
	// PostgreSQL's disk_full) or the SQLite database reached Config.MaxBytes. Nothing
	// of that write is stored; the same write succeeds once space returns (freed on
	// disk, or by the retention and size caps pruning).
	ErrFull = errors.New("store full: no room for the write (disk full, or store.max_bytes reached)")
)

// full wraps err in ErrFull when it says the database or the disk is full.
func full(err error) error {
	if err == nil || errors.Is(err, ErrFull) {
		return err
	}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrFull {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == pgDiskFull {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// fullErr is full for a write method's named error result: defer fullErr(&err).
func fullErr(err *error) { *err = full(*err) }

// pgDiskFull is PostgreSQL's SQLSTATE disk_full.
const pgDiskFull = "53100"
