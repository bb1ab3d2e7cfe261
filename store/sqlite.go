package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	_ "github.com/mattn/go-sqlite3" // registers database/sql driver "sqlite3"
)

// sqliteDriver is the database/sql driver Open uses for SQLite: mattn/go-sqlite3 (cgo),
// chosen over modernc.org/sqlite on the archive workload (docs/benchmarks.md, "SQLite
// driver"; the comparison lives in the store/sqlitebench module).
const sqliteDriver = "sqlite3"

// sqliteDSN opens path as a URI with, on every pooled connection: WAL journal (readers
// never block the writer); synchronous FULL (the WAL is synced at every commit, so a
// committed write survives power loss, as the delivery ledger requires; mattn's own
// default is NORMAL); a 5 s busy timeout (concurrent writers wait instead of failing
// with SQLITE_BUSY); foreign keys enforced; and BEGIN IMMEDIATE for transactions (a
// writer takes the write lock up front, so it never fails on a read→write upgrade).
func sqliteDSN(path string) string {
	return "file:" + escapeURIPath(path) +
		"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate"
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
