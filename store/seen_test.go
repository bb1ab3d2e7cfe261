package store

import (
	"context"
	"testing"
	"time"
)

// TestMarkSeen: on both backends a message id is new once per owner, another owner has
// its own set, it stays seen across a reopen, and rows older than SeenRetention are
// pruned (every seenPruneEvery inserts).
func TestMarkSeen(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg := be.config(t)
			s := openStore(t, cfg)
			alice, bob := []byte{2, 1}, []byte{3, 2}
			id := [32]byte{1}
			t0 := time.Unix(1575000000, 0)
			for i, tc := range []struct {
				owner []byte
				want  bool
			}{{alice, true}, {alice, false}, {bob, true}} {
				got, err := s.MarkSeen(ctx, tc.owner, id, t0)
				if err != nil || got != tc.want {
					t.Fatalf("step %d: new=%v err=%v, want %v", i, got, err, tc.want)
				}
			}
			if ok, err := s.Seen(ctx, alice, id); err != nil || !ok {
				t.Fatalf("Seen(alice) = %v, %v", ok, err)
			}
			if ok, err := s.Seen(ctx, alice, [32]byte{9}); err != nil || ok {
				t.Fatalf("Seen(unknown id) = %v, %v", ok, err)
			}
			if cfg.Driver != DriverPostgres {
				s.Close()
				s = openStore(t, cfg)
				if got, err := s.MarkSeen(ctx, alice, id, t0); err != nil || got {
					t.Fatalf("after reopen: new=%v err=%v", got, err)
				}
			}
			// Fill up to a prune, well after the retention: the old rows go.
			later := t0.Add(SeenRetention + time.Hour)
			for i := 0; s.seenInserts.Load()%seenPruneEvery != 0 || i == 0; i++ {
				if _, err := s.MarkSeen(ctx, alice, [32]byte{2, byte(i), byte(i >> 8)}, later); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := s.MarkSeen(ctx, bob, id, later); err != nil || !got {
				t.Fatalf("after prune: new=%v err=%v, want the old row gone", got, err)
			}
		})
	}
}

// TestMarkSeen_bounded: on both backends the marks are bounded in number too (SeenMax,
// here 10), not only in age: a flood of messages within the retention keeps the newest
// marks, drops the oldest at the next prune, and counts them.
func TestMarkSeen_bounded(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := openStore(t, be.config(t))
			s.seenMax = 10
			owners := [][]byte{{2, 1}, {3, 2}}
			t0 := time.Unix(1575000000, 0)
			id := func(i int) [32]byte { return [32]byte{4, byte(i), byte(i >> 8)} }
			for i := range seenPruneEvery {
				if _, err := s.MarkSeen(ctx, owners[i%2], id(i), t0.Add(time.Duration(i)*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range seenPruneEvery {
				ok, err := s.Seen(ctx, owners[i%2], id(i))
				if err != nil {
					t.Fatal(err)
				}
				if want := i >= seenPruneEvery-10; ok != want {
					t.Fatalf("mark %d of %d kept=%v, want %v (the newest 10)", i, seenPruneEvery, ok, want)
				}
			}
			if n := s.SeenEvicted(); n != seenPruneEvery-10 {
				t.Fatalf("evictions counted %d, want %d", n, seenPruneEvery-10)
			}
		})
	}
}
