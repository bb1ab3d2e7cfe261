package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/statusgate/statusgate/records"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/diskfull"
	"github.com/statusgate/statusgate/test/pgtest"
)

// TestStore_diskFull is issue 15 finding 11 on a real full file system (a tmpfs the test
// mounts and fills; TestStore_full simulates it with store.max_bytes), on both backends:
// SQLite's file on it, and PostgreSQL's tables in a tablespace on it. Writes that find
// no room fail with store.ErrFull and store nothing; what was stored stays readable;
// once room returns on disk, the same writes succeed on the same open store (no
// restart, no reopen).
func TestStore_diskFull(t *testing.T) {
	for _, be := range []struct {
		name string
		open func(t *testing.T, fs *diskfull.FS) *store.Store
	}{
		{store.DriverSQLite, func(t *testing.T, fs *diskfull.FS) *store.Store {
			return openLedger(t, store.Config{Path: filepath.Join(fs.Dir, "store.db")})
		}},
		{store.DriverPostgres, func(t *testing.T, fs *diskfull.FS) *store.Store {
			return openOnTablespace(t, fs)
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			fs := diskfull.Mount(t, 8<<20)
			s := be.open(t, fs)
			testDiskFull(t, s, fs)
		})
	}
}

func testDiskFull(t *testing.T, s *store.Store, fs *diskfull.FS) {
	ctx := context.Background()
	// Random bodies: PostgreSQL would compress a repeated one to nothing.
	body := func() []byte {
		b := make([]byte, 8<<10)
		rand.Read(b)
		return b
	}
	stored := 0
	for n := 1; n <= 20; n++ { // room for all of them
		ev := event("slack:C1", n)
		ev.Body = body()
		ingest(t, s, ev, dests("status:status"))
		stored++
	}
	fs.Fill(t)

	// The disk is full: events are stored while the database has room inside its files
	// (SQLite's free pages and WAL, PostgreSQL's free space in the pages of its
	// relations), then refused with ErrFull.
	var fullErr error
	for n := stored + 1; n <= 2000; n++ {
		ev := event("slack:C1", n)
		ev.Body = body()
		if _, _, err := s.IngestEvent(ctx, ev, dests("status:status")); err != nil {
			fullErr = err
			break
		}
		stored++
	}
	if !errors.Is(fullErr, store.ErrFull) {
		t.Fatalf("on a full disk after %d events: %v, want store.ErrFull", stored, fullErr)
	}
	t.Logf("disk full after %d events of 8 KiB: %v", stored, fullErr)
	if n := countPending(t, s, "status:status"); n != int64(stored) {
		t.Fatalf("%d entries pending after %d stored: the refused write left rows", n, stored)
	}
	// A batch finding no room is refused whole, and so is every retry while the disk
	// stays full.
	batch := []records.Ingest{{Event: event("slack:C2", 1), Dests: dests("status:status")},
		{Event: event("slack:C2", 2), Dests: dests("status:status")}}
	batch[0].Event.Body, batch[1].Event.Body = body(), body()
	for range 3 {
		if _, err := s.IngestEvents(ctx, batch); !errors.Is(err, store.ErrFull) {
			t.Fatalf("batch on a full disk: %v, want ErrFull", err)
		}
	}
	if got := mapped(t, s, "slack:C2", "slack:C2/m1", "slack:C2"); len(got) != 0 {
		t.Fatalf("a refused batch left its first event: %v", got)
	}
	// Delivery marks rewrite rows, yet may need room too (SQLite appends to its WAL,
	// PostgreSQL writes new row versions): refused with ErrFull if so, never otherwise.
	es := pending(t, s, "status:status", 0, 5)
	markErr := s.MarkDelivered(ctx, es[0].ID, nil, t0)
	if markErr != nil && !errors.Is(markErr, store.ErrFull) {
		t.Fatalf("mark delivered on a full disk: %v, want nil or ErrFull", markErr)
	}
	t.Logf("mark delivered on a full disk: %v", markErr)
	// So do the puppet registry's records (a new remote user's first message).
	for i := range 200 {
		p := records.Puppet{Network: "matrix", Account: "bot", User: fmt.Sprintf("u%d-%x", i, body()[:64]),
			ChatKey: fmt.Sprintf("0x04%x", body()[:65]), FirstSeen: t0, LastSeen: t0}
		if err := s.UpsertPuppet(ctx, p); err != nil {
			if !errors.Is(err, store.ErrFull) {
				t.Fatalf("record a puppet on a full disk: %v, want nil or ErrFull", err)
			}
			t.Logf("record a puppet on a full disk: refused after %d: %v", i, err)
			break
		}
	}

	// And the secure transport's state (core/ratchet's Store).
	for i := range 200 {
		owner := append([]byte{2}, body()[:32]...)
		if _, err := s.SetInstallationID(ctx, owner, fmt.Sprintf("%x", body()[:16])); err != nil {
			if !errors.Is(err, store.ErrFull) {
				t.Fatalf("record an installation id on a full disk: %v, want nil or ErrFull", err)
			}
			t.Logf("record an installation id on a full disk: refused after %d: %v", i, err)
			break
		}
	}

	// Room returns on disk: the same store takes the refused batch and more.
	fs.Free(t)
	if _, err := s.IngestEvents(ctx, batch); err != nil {
		t.Fatalf("the refused batch once room returned: %v", err)
	}
	for n := stored + 1; n <= stored+5; n++ {
		ev := event("slack:C1", n)
		ev.Body = body()
		ingest(t, s, ev, dests("status:status"))
	}
	if err := s.MarkDelivered(ctx, es[1].ID, nil, t0); err != nil {
		t.Fatalf("mark delivered once room returned: %v", err)
	}
	want := int64(stored + 5 + 2 - 1) // es[1] delivered
	if markErr == nil {
		want-- // and es[0] too
	}
	if n := countPending(t, s, "status:status"); n != want {
		t.Fatalf("%d entries pending once room returned, want %d", n, want)
	}
}

// openOnTablespace opens a store on a fresh PostgreSQL database whose tables and
// indexes live in a tablespace on fs (the WAL stays in the cluster's directory, off
// the full file system, as on a server whose data volume fills).
func openOnTablespace(t *testing.T, fs *diskfull.FS) *store.Store {
	dsn := pgtest.Start(t)
	u, err := user.Lookup("postgres") // the server's user when the tests run as root
	if err != nil {
		t.Fatalf("the postgres OS user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	fs.Chown(t, uid, gid)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var db string
	if err := admin.QueryRow("SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	ts := "full_" + db
	if _, err := admin.Exec(fmt.Sprintf("CREATE TABLESPACE %s LOCATION '%s'", ts, fs.Dir)); err != nil {
		t.Fatalf("create tablespace on %s: %v", fs.Dir, err)
	}
	if _, err := admin.Exec(fmt.Sprintf("ALTER DATABASE %s SET default_tablespace = %s", db, ts)); err != nil {
		t.Fatal(err)
	}
	s := openLedger(t, store.Config{Driver: store.DriverPostgres, DSN: dsn})
	// Registered after openLedger's Close, so it runs first: the store must be closed
	// before its tables go, and the tablespace must be empty before it goes.
	t.Cleanup(func() {
		s.Close()
		a, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		for _, q := range []string{"DROP SCHEMA public CASCADE", "DROP TABLESPACE " + ts} {
			if _, err := a.Exec(q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	return s
}
