package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/statusgate/statusgate/records"
	"github.com/statusgate/statusgate/store"
)

func TestLedgerRetention(t *testing.T) {
	for _, be := range ledgerBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, s *store.Store)
			}{
				{"by_time", testPruneByTime},
				{"by_size", testPruneBySize},
				{"keeps_clock", testPruneKeepsClock},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, openLedger(t, be.config(t)))
				})
			}
		})
	}
}

// at is event n of ch received at r.
func at(ch string, n int, r time.Time) records.Event {
	ev := event(ch, n)
	ev.Received = r
	return ev
}

func prune(t *testing.T, s *store.Store, before time.Time, maxBytes int64) store.LedgerPruned {
	t.Helper()
	p, err := s.PruneLedger(context.Background(), before, maxBytes)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	return p
}

// testPruneByTime: completed entries and the events nothing refers to any more go once
// older than the retention; pending entries, their events, recent entries and the
// newest entry of each destination stay.
func testPruneByTime(t *testing.T, s *store.Store) {
	ctx := context.Background()
	old, recent := t0.Add(-40*24*time.Hour), t0.Add(-24*time.Hour)
	done := ingest(t, s, at("status:a", 1, old), dests("matrix:x", "irc:y")) // delivered and failed long ago
	es := pending(t, s, "matrix:x", 0, 10)
	ey := pending(t, s, "irc:y", 0, 10)
	if err := s.MarkDelivered(ctx, es[0].ID, []string{"matrix:x/$1"}, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx, ey[0].ID, 12, "gone", old.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	ingest(t, s, at("status:a", 2, old), dests("matrix:x")) // pending for 40 days
	late := ingest(t, s, at("status:a", 3, old), dests("matrix:x"))
	lateEntry := pending(t, s, "matrix:x", 0, 10)[1]
	if err := s.MarkDelivered(ctx, lateEntry.ID, nil, recent); err != nil { // delivered after an outage
		t.Fatal(err)
	}
	if _, ok, err := s.IngestEvent(ctx, at("status:a", 4, old), nil); err != nil || !ok { // no destination
		t.Fatal(err)
	}
	ingest(t, s, at("status:a", 5, recent), dests("matrix:x", "irc:y")) // newest of both: pending
	_ = done
	_ = late

	p := prune(t, s, t0.Add(-30*24*time.Hour), 0)
	if p.Entries != 2 || p.Events != 2 {
		t.Errorf("pruned %+v, want 2 entries (event 1's) and 2 events (1 and 4)", p)
	}
	if got := mapped(t, s, "status:a", "status:a/m1", "matrix:x"); len(got) != 0 {
		t.Errorf("event 1 still mapped: %v", got)
	}
	got := pending(t, s, "matrix:x", 0, 10)
	if len(got) != 2 || !bytes.Equal(got[0].Body, event("status:a", 2).Body) {
		t.Errorf("pending entries after pruning: %+v; want events 2 and 5", got)
	}
	// Event 3 is still referred to by its recently completed entry: a later pruning,
	// once that is old, takes both.
	if p := prune(t, s, t0, 0); p.Entries != 1 || p.Events != 1 {
		t.Errorf("second pruning: %+v, want event 3 and its entry", p)
	}
	// A pruned origin is forgotten: delivered again, it is a new event.
	if _, ok, err := s.IngestEvent(ctx, at("status:a", 1, t0), dests("matrix:x")); err != nil || !ok {
		t.Errorf("re-delivery of a pruned origin: inserted %v, %v", ok, err)
	}
}

// testPruneBySize: past the cap, the oldest events without a pending entry go, with
// their entries and mappings, until the bodies kept fit; a pending event stays even
// when it is the oldest.
func testPruneBySize(t *testing.T, s *store.Store) {
	ctx := context.Background()
	const body = 10 << 10
	var ids []int64
	for n := 1; n <= 20; n++ {
		ev := event("status:a", n)
		ev.Body = bytes.Repeat([]byte{byte('a' + n)}, body)
		ingest(t, s, ev, dests("slack:C1"))
		es := pending(t, s, "slack:C1", 0, 100)
		e := es[len(es)-1]
		ids = append(ids, e.ID)
		if n == 3 {
			continue // stays pending
		}
		if err := s.MarkDelivered(ctx, e.ID, []string{fmt.Sprintf("slack:C1/%d", n)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.LedgerBytes(ctx)
	if err != nil || before != 20*body {
		t.Fatalf("ledger bytes %d, %v; want %d", before, err, 20*body)
	}
	p := prune(t, s, time.Time{}, 5*body)
	after, err := s.LedgerBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The five newest fit the cap; event 3 is pending and stays.
	if p.Events != 14 || p.Entries != 14 || after != 6*body {
		t.Errorf("pruned %+v, %d bytes kept; want 14 events and entries, %d bytes", p, after, 6*body)
	}
	if got := pending(t, s, "slack:C1", 0, 10); len(got) != 1 || got[0].ID != ids[2] {
		t.Errorf("pending after pruning: %+v, want event 3's entry", got)
	}
	for n, want := range map[int]int{1: 0, 15: 0, 16: 1, 20: 1} {
		if got := mapped(t, s, "status:a", fmt.Sprintf("status:a/m%d", n), "slack:C1"); len(got) != want {
			t.Errorf("event %d mapped to %v, want %d IDs", n, got, want)
		}
	}
}

// testPruneKeepsClock: the newest entry of each destination survives any pruning, so
// MaxClock, from which the Status clock resumes after a restart, is unchanged.
func testPruneKeepsClock(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for n := 1; n <= 5; n++ {
		d := dests("status:status")
		d[0].Clock = uint64(1000 + n)
		ingest(t, s, event("slack:C1", n), d)
	}
	for _, e := range pending(t, s, "status:status", 0, 10) {
		if err := s.MarkDelivered(ctx, e.ID, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	p := prune(t, s, t0.Add(time.Hour), 1)
	if p.Entries != 4 {
		t.Errorf("pruned %+v, want 4 entries", p)
	}
	if c, err := s.MaxClock(ctx, "status:status"); err != nil || c != 1005 {
		t.Errorf("MaxClock after pruning = %d, %v; want 1005", c, err)
	}
}

// sqliteUsed is the bytes of the SQLite database at path holding data: its pages minus
// the free ones.
func sqliteUsed(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages, free, size int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := db.QueryRow(q).Scan(v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return (pages - free) * size
}

// TestLedger_sizeBounded is issue 15 finding 11 for the ledger: every event, delivered
// entry and message-map row was kept for ever. 2,000 relayed messages of 4 KiB, pruned
// every 100 with a 256 KiB cap, keep the database's used pages bounded; the same
// traffic without pruning (what the gateway did before) grows it without end.
func TestLedger_sizeBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	run := func(name string, pruneEvery int) int64 {
		path := filepath.Join(dir, name+".db")
		s := openLedger(t, store.Config{Path: path})
		for n := 1; n <= 2000; n++ {
			ev := event("slack:C1", n)
			ev.Body = bytes.Repeat([]byte("x"), 4<<10)
			ingest(t, s, ev, dests("status:status"))
			es := pending(t, s, "status:status", 0, 1)
			if err := s.MarkDelivered(ctx, es[0].ID, []string{fmt.Sprintf("status:0x%d", n)}, t0); err != nil {
				t.Fatal(err)
			}
			if pruneEvery > 0 && n%pruneEvery == 0 {
				prune(t, s, time.Time{}, 256<<10)
			}
		}
		return sqliteUsed(t, path)
	}
	unbounded, bounded := run("unpruned", 0), run("pruned", 100)
	t.Logf("2,000 × 4 KiB relayed: %d KiB used without pruning, %d KiB with a 256 KiB cap pruned every 100", unbounded>>10, bounded>>10)
	if bounded > 1<<20 {
		t.Errorf("with pruning the ledger uses %d KiB, want at most 1 MiB (cap 256 KiB plus what arrived since the last pruning)", bounded>>10)
	}
}

// TestStore_full is the disk-full behaviour (issue 15 finding 11), on a database capped
// by store.max_bytes: SQLite answers SQLITE_FULL exactly as on a full disk. Writes that
// find no room fail with ErrFull and store nothing (a batch is all or nothing), what was
// stored before stays readable, and once pruning frees room the same writes succeed.
func TestStore_full(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "full.db")
	s := openLedger(t, store.Config{Path: path, MaxBytes: 1 << 20})
	body := bytes.Repeat([]byte("y"), 8<<10)
	var stored int
	var fullErr error
	for n := 1; n <= 1000; n++ {
		ev := event("slack:C1", n)
		ev.Body = body
		if _, _, err := s.IngestEvent(ctx, ev, dests("status:status", "matrix:x")); err != nil {
			fullErr = err
			break
		}
		stored++
	}
	if !errors.Is(fullErr, store.ErrFull) {
		t.Fatalf("after %d events: error %v, want store.ErrFull", stored, fullErr)
	}
	t.Logf("1 MiB cap: %d events of 8 KiB stored, then: %v", stored, fullErr)
	if n := countPending(t, s, "status:status"); n != int64(stored) {
		t.Fatalf("%d entries pending after %d stored: the failed write left rows", n, stored)
	}
	// A batch finding no room is refused whole.
	batch := []records.Ingest{{Event: event("slack:C2", 1), Dests: dests("status:status")}, {Event: event("slack:C2", 2), Dests: dests("status:status")}}
	batch[1].Event.Body = body
	if _, err := s.IngestEvents(ctx, batch); !errors.Is(err, store.ErrFull) {
		t.Fatalf("batch on a full store: %v, want ErrFull", err)
	}
	if got := mapped(t, s, "slack:C2", "slack:C2/m1", "slack:C2"); len(got) != 0 {
		t.Fatalf("a refused batch left its first event: %v", got)
	}
	// Delivery marks still work on a full store (they rewrite rows in place).
	for _, e := range pending(t, s, "status:status", 0, 1000) {
		if err := s.MarkDelivered(ctx, e.ID, nil, t0); err != nil {
			t.Fatalf("mark delivered on a full store: %v", err)
		}
	}
	for _, e := range pending(t, s, "matrix:x", 0, 1000) {
		if err := s.MarkDelivered(ctx, e.ID, nil, t0); err != nil {
			t.Fatalf("mark delivered on a full store: %v", err)
		}
	}
	// Room returns: the retention frees pages, which SQLite reuses.
	if p := prune(t, s, t0.Add(time.Hour), 0); p.Events == 0 {
		t.Fatal("nothing pruned")
	}
	if _, err := s.IngestEvents(ctx, batch); err != nil {
		t.Fatalf("the refused batch after pruning: %v", err)
	}
	if used := sqliteUsed(t, path); used > 1<<20 {
		t.Errorf("database uses %d bytes, over its 1 MiB cap", used)
	}
}
