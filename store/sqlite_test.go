package store

import (
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
