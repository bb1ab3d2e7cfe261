package store

import (
	"database/sql"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/whisper"
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

// TestArchive_full: on a database at its cap (SQLITE_FULL, as on a full disk) an
// archive write fails with ErrFull and stores nothing of its batch; once the size cap
// frees room, it succeeds.
func TestArchive_full(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, Config{Path: filepath.Join(t.TempDir(), "full.db"), MaxBytes: 1 << 20})
	a := s.Archive()
	var stored []mailserver.Record
	var err error
	for c := uint32(1000); c < 3000; c++ {
		batch := []mailserver.Record{newRecord(t, c, topicA, uint64(c), 4000), newRecord(t, c, topicA, uint64(c)+1<<32, 4000)}
		if err = a.Put(ctx, batch); err != nil {
			break
		}
		stored = append(stored, batch...)
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("after %d envelopes: %v, want ErrFull", len(stored), err)
	}
	equalEnvelopes(t, "on the full store", queryAll(t, a, 0, math.MaxUint32, whisper.FullBloom()), sorted(stored))
	if _, err := a.PruneBytes(ctx, 256<<10); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, []mailserver.Record{newRecord(t, 5000, topicA, 5000, 4000)}); err != nil {
		t.Fatalf("put after pruning: %v", err)
	}
}

// TestArchive_checkpoint: on SQLite the archive writes through its own pool at
// synchronous NORMAL (the other tables' pool stays at FULL), so a Put is in the WAL
// only; Checkpoint copies it into the database file (syncing the WAL first): a copy of
// the database file without its WAL holds nothing of the Put before Checkpoint, and all
// of it after.
func TestArchive_checkpoint(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s := openStore(t, Config{Path: path})
	for pool, want := range map[*sql.DB]int{s.db: 2, s.archive.db: 1} {
		var level int
		if err := pool.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil {
			t.Fatal(err)
		}
		if level != want {
			t.Errorf("synchronous = %d on the %s pool, want %d", level, map[bool]string{true: "archive's", false: "tables'"}[pool == s.archive.db], want)
		}
	}
	if err := s.Archive().Checkpoint(ctx); err != nil { // the schema into the file
		t.Fatal(err)
	}
	var recs []mailserver.Record
	for c := uint32(1000); c < 1100; c++ {
		recs = append(recs, newRecord(t, c, topicA, uint64(c), 100))
	}
	if err := s.Archive().Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	fileHolds := func() int {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(t.TempDir(), "copy.db") // no -wal beside it: the file alone
		if err := os.WriteFile(cp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite3", "file:"+cp+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM envelopes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := fileHolds(); n != 0 {
		t.Fatalf("the database file holds %d envelopes before the checkpoint, want 0 (the Put only in the WAL)", n)
	}
	if err := s.Archive().Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fileHolds(); n != len(recs) {
		t.Fatalf("the database file holds %d envelopes after the checkpoint, want %d", n, len(recs))
	}
}
