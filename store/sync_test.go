package store

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/mailserver"
)

// TestSyncStore: per-chat mailserver sync state on both backends — absent, saved,
// overwritten with and without an interrupted range, and kept across a reopen.
func TestSyncStore(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg := be.config(t)
			s := openStore(t, cfg)
			if _, ok, err := s.LoadSync(ctx, "status"); err != nil || ok {
				t.Fatalf("fresh store: ok=%v err=%v", ok, err)
			}
			covered := time.Unix(1575000000, 123456789)
			to := covered.Add(time.Hour)
			cursor := bytes.Repeat([]byte{7}, mailserver.CursorLength)
			if err := s.SaveSync(ctx, "status", mailserver.SyncState{Covered: covered, Cursor: cursor, To: to}); err != nil {
				t.Fatal(err)
			}
			st, ok, err := s.LoadSync(ctx, "status")
			if err != nil || !ok || !st.Covered.Equal(covered) || !bytes.Equal(st.Cursor, cursor) || !st.To.Equal(to) {
				t.Fatalf("loaded %+v ok=%v err=%v", st, ok, err)
			}
			if err := s.SaveSync(ctx, "status", mailserver.SyncState{Covered: to}); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveSync(ctx, "other", mailserver.SyncState{Covered: covered}); err != nil {
				t.Fatal(err)
			}
			st, _, _ = s.LoadSync(ctx, "status")
			if !st.Covered.Equal(to) || st.Cursor != nil || !st.To.IsZero() {
				t.Fatalf("overwritten state %+v", st)
			}
			if cfg.Driver != DriverPostgres { // the PostgreSQL database is the test's own; reopen SQLite's file
				s.Close()
				s = openStore(t, cfg)
				if st, ok, _ := s.LoadSync(ctx, "other"); !ok || !st.Covered.Equal(covered) {
					t.Fatalf("after reopen: %+v ok=%v", st, ok)
				}
			}
		})
	}
}
