package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// openSQLite opens the database at cfg.Path with mattn/go-sqlite3 (cgo), chosen over
// modernc.org/sqlite on the archive workload (docs/benchmarks.md, "SQLite driver"; the
// comparison lives in the store/sqlitebench module). Its own driver value, not the
// globally registered "sqlite3", so that every pooled connection gets cfg.MaxBytes as
// its max_page_count. synchronous is the pool's synchronous level: "FULL" for every
// table but the archive's, "NORMAL" for the archive's own pool (see Archive.Checkpoint).
func openSQLite(cfg Config, synchronous string) *sql.DB {
	drv := &sqlite3.SQLiteDriver{}
	if cfg.MaxBytes > 0 {
		drv.ConnectHook = func(c *sqlite3.SQLiteConn) error { return capPages(c, cfg.MaxBytes) }
	}
	return sql.OpenDB(sqliteConnector{dsn: sqliteDSN(cfg.Path, synchronous), drv: drv})
}

// sqliteConnector is a driver.Connector for one DSN.
type sqliteConnector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c sqliteConnector) Driver() driver.Driver                        { return c.drv }

// capPages sets the connection's max_page_count so that the database file stays
// within maxBytes (at least one page). SQLite keeps the count at the file's current
// size if that is larger: the file then stays as large as it is.
func capPages(c *sqlite3.SQLiteConn, maxBytes int64) error {
	rows, err := c.Query("PRAGMA page_size", nil)
	if err != nil {
		return fmt.Errorf("read page_size: %w", err)
	}
	v := make([]driver.Value, 1)
	err = rows.Next(v)
	rows.Close()
	if err != nil && err != io.EOF {
		return fmt.Errorf("read page_size: %w", err)
	}
	size, ok := v[0].(int64)
	if !ok || size <= 0 {
		return fmt.Errorf("read page_size: got %v", v[0])
	}
	if _, err := c.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", max(maxBytes/size, 1)), nil); err != nil {
		return fmt.Errorf("set max_page_count: %w", err)
	}
	return nil
}

// sqliteDSN opens path as a URI with, on every pooled connection: WAL journal (readers
// never block the writer); the synchronous level given (FULL: the WAL is synced at every
// commit, so a committed write survives power loss, as the delivery ledger requires;
// mattn's own default is NORMAL); a 5 s busy timeout (concurrent writers wait instead of failing
// with SQLITE_BUSY); foreign keys enforced; and BEGIN IMMEDIATE for transactions (a
// writer takes the write lock up front, so it never fails on a read→write upgrade).
func sqliteDSN(path, synchronous string) string {
	return "file:" + escapeURIPath(path) +
		"?_journal_mode=WAL&_synchronous=" + synchronous + "&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate"
}

// escapeURIPath escapes the characters that would end or alter a file: URI's path.
func escapeURIPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// sqliteFileMode is the mode of the database and its -wal, -shm and -journal files:
// they hold the message archive, the delivery ledger and every puppet's remote name,
// which are not for other users of the machine.
const sqliteFileMode fs.FileMode = 0o600

// secureSQLiteFiles creates the database file at path with mode 0600 when it is missing
// (SQLite itself would create it 0644, and gives the -wal and -shm files the database
// file's mode), and takes group and other permissions away from an existing database
// and its side files.
func secureSQLiteFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, sqliteFileMode)
	if err != nil {
		return fmt.Errorf("create sqlite database: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create sqlite database: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat sqlite file: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&^0o077); err != nil {
				return fmt.Errorf("restrict sqlite file %s: %w", p, err)
			}
		}
	}
	return nil
}
