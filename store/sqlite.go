package store

import (
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
