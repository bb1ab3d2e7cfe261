package store

import "errors"

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
)
