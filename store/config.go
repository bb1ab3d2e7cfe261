package store

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// minMaxBytes is the smallest Config.MaxBytes: room for the schema and some rows.
const minMaxBytes = 256 << 10

// Drivers accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config selects and locates the database.
type Config struct {
	// Driver is "sqlite" or "postgres". Zero value: "sqlite".
	Driver string `yaml:"driver"`
	// Path is the SQLite database file (created if missing, mode 0600, with its -wal and
	// -shm files; an existing one loses group and other permissions; its directory must
	// exist).
	// Required for sqlite; no default, the caller puts it under its data dir.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string, URL ("postgres://user@host:5432/db") or
	// key=value form, as pgx parses it. Required for postgres; no default.
	DSN string `yaml:"dsn"`
	// MaxBytes caps the SQLite database file (sqlite only: give PostgreSQL a volume or a
	// quota of its own). A write that would grow the file past it fails with ErrFull and
	// stores nothing, exactly as on a full disk; room freed by the retention and size
	// caps is reused inside the file. It is a backstop for those caps, so that the
	// database can never fill the disk the node key and the logs live on. The -wal file
	// comes on top (it is emptied at each checkpoint). Default 0: no cap.
	MaxBytes int64 `yaml:"max_bytes"`
}

func (c Config) withDefaults() Config {
	if c.Driver == "" {
		c.Driver = DriverSQLite
	}
	return c
}

// Validate checks a config after defaults are applied, without touching the database.
// It reports every problem (errors.Join), each naming its dotted key and wrapping
// ErrConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, ErrConfig)...))
	}
	switch c.Driver {
	case DriverSQLite:
		if strings.TrimSpace(c.Path) == "" {
			bad("store.path: empty for driver sqlite")
		}
		if c.DSN != "" {
			bad("store.dsn: set for driver sqlite (it is for postgres; use store.path)")
		}
		if c.MaxBytes < 0 || c.MaxBytes > 0 && c.MaxBytes < minMaxBytes {
			bad("store.max_bytes: %d, want 0 (no cap) or at least %d", c.MaxBytes, minMaxBytes)
		}
	case DriverPostgres:
		if strings.TrimSpace(c.DSN) == "" {
			bad("store.dsn: required for driver postgres")
		}
		if c.Path != "" {
			bad("store.path: set for driver postgres (it is for sqlite; use store.dsn)")
		}
		if c.MaxBytes != 0 {
			bad("store.max_bytes: sqlite only (give PostgreSQL a volume or a quota of its own)")
		}
	default:
		bad("store.driver: %q is not %s or %s", c.Driver, DriverSQLite, DriverPostgres)
	}
	return errors.Join(errs...)
}

// LogValue describes the database for the log: the SQLite path, or the PostgreSQL host
// and database, never the DSN itself (it may hold a password).
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("driver", c.Driver)}
	if c.Driver != DriverPostgres {
		return slog.GroupValue(append(attrs, slog.String("path", c.Path))...)
	}
	if u, err := url.Parse(c.DSN); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		attrs = append(attrs, slog.String("host", u.Host), slog.String("database", strings.TrimPrefix(u.Path, "/")))
	}
	return slog.GroupValue(attrs...)
}
