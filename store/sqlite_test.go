package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOpen_sqliteFilesPrivate: issue 15 finding 12, the database was 0644. A new
// database and its -wal and -shm files are 0600 (SQLite gives the side files the main
// file's mode), and an existing 0644 database and side files lose group and other
// permissions.
func TestOpen_sqliteFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	check := func(what, path string) {
		t.Helper()
		s := openStore(t, Config{Path: path})
		if _, err := s.Archive().Prune(t.Context(), time.Unix(0, 0)); err != nil { // a write: the WAL exists
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if m := st.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: %s has mode %v, want 0600", what, filepath.Base(p), m)
			}
		}
		s.Close()
	}
	check("new database", filepath.Join(dir, "new.db"))

	old := filepath.Join(dir, "old.db")
	check("old database", old)
	for _, p := range []string{old, old + "-wal", old + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	check("existing 0644 database", old)
}
