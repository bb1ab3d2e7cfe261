package store

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/records"
)

// store may not import puppet (ARCHITECTURE.md): *Store implements puppet.Store with
// package records' types. This test-only import checks it at compile time (the
// dependency check ignores test imports).
var _ puppet.Store = (*Store)(nil)

// TestPuppets: the puppet registry table on both backends — insert, upsert keeping
// first_seen and updating last_seen and the display name, lookups both ways, the unique
// chat key, and the count.
func TestPuppets(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := openStore(t, be.config(t))
			if _, ok, err := s.PuppetByRemote(ctx, "matrix", "bot", "alice"); err != nil || ok {
				t.Fatalf("fresh store by remote: ok=%v err=%v", ok, err)
			}
			if _, ok, err := s.PuppetByChatKey(ctx, "0x04aa"); err != nil || ok {
				t.Fatalf("fresh store by chat key: ok=%v err=%v", ok, err)
			}
			t0 := time.Unix(1600000000, 123456789)
			a := records.Puppet{Network: "matrix", Account: "bot", User: "alice", ChatKey: "0x04aa",
				DisplayName: "Alice", FirstSeen: t0, LastSeen: t0}
			if err := s.UpsertPuppet(ctx, a); err != nil {
				t.Fatal(err)
			}
			got, ok, err := s.PuppetByRemote(ctx, "matrix", "bot", "alice")
			if err != nil || !ok || !equalPuppet(got, a) {
				t.Fatalf("by remote: %+v ok=%v err=%v; want %+v", got, ok, err, a)
			}

			// A later sighting without a name: first_seen and the name kept.
			t1 := t0.Add(time.Hour)
			if err := s.UpsertPuppet(ctx, records.Puppet{Network: "matrix", Account: "bot", User: "alice",
				ChatKey: "0x04aa", FirstSeen: t1, LastSeen: t1}); err != nil {
				t.Fatal(err)
			}
			want := a
			want.LastSeen = t1
			if got, ok, err := s.PuppetByChatKey(ctx, "0x04aa"); err != nil || !ok || !equalPuppet(got, want) {
				t.Fatalf("after unnamed sighting: %+v ok=%v err=%v; want %+v", got, ok, err, want)
			}
			// A rename.
			t2 := t1.Add(time.Hour)
			if err := s.UpsertPuppet(ctx, records.Puppet{Network: "matrix", Account: "bot", User: "alice",
				ChatKey: "0x04aa", DisplayName: "Alice B.", FirstSeen: t2, LastSeen: t2}); err != nil {
				t.Fatal(err)
			}
			want.LastSeen, want.DisplayName = t2, "Alice B."
			if got, ok, err := s.PuppetByRemote(ctx, "matrix", "bot", "alice"); err != nil || !ok || !equalPuppet(got, want) {
				t.Fatalf("after rename: %+v ok=%v err=%v; want %+v", got, ok, err, want)
			}

			// Another remote user may not take alice's chat key.
			if err := s.UpsertPuppet(ctx, records.Puppet{Network: "matrix", Account: "bot", User: "mallory",
				ChatKey: "0x04aa", FirstSeen: t2, LastSeen: t2}); err == nil {
				t.Fatal("a second remote user took an existing chat key")
			}
			if got, _, _ := s.PuppetByChatKey(ctx, "0x04aa"); got.User != "alice" {
				t.Fatalf("chat key now belongs to %q", got.User)
			}

			// Same user under another account, and the lookup across accounts.
			b := records.Puppet{Network: "matrix", Account: "another", User: "alice", ChatKey: "0x04bb", FirstSeen: t2, LastSeen: t2}
			if err := s.UpsertPuppet(ctx, b); err != nil {
				t.Fatal(err)
			}
			recs, err := s.PuppetsByUser(ctx, "matrix", "alice")
			if err != nil || len(recs) != 2 || !equalPuppet(recs[0], b) || !equalPuppet(recs[1], want) {
				t.Fatalf("by user: %+v, %v", recs, err)
			}
			if recs, err := s.PuppetsByUser(ctx, "slack", "alice"); err != nil || len(recs) != 0 {
				t.Fatalf("by user on another network: %+v, %v", recs, err)
			}
			if n, err := s.CountPuppets(ctx); err != nil || n != 2 {
				t.Fatalf("count = %d, %v; want 2", n, err)
			}
		})
	}
}

// TestPuppetRegistry runs the puppet registry on the real store, both backends.
func TestPuppetRegistry(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := openStore(t, be.config(t))
			sec, err := identity.NewSecret(bytes.Repeat([]byte{3}, identity.SecretLen))
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1600000000, 0)
			clock := func() time.Time { now = now.Add(time.Second); return now }
			reg := puppet.New(sec, s, clock)
			id := identity.PuppetID{Network: "matrix", Account: "@bridge:example.org", User: "@alice:example.org"}
			k1, r1, err := reg.Key(ctx, id, "Alice")
			if err != nil {
				t.Fatal(err)
			}
			if r1.ChatKey != identity.ChatKey(&k1.PublicKey) || r1.DisplayName != "Alice" || !r1.FirstSeen.Equal(r1.LastSeen) {
				t.Fatalf("first sighting: %+v", r1)
			}
			// A restart: new registry, same store and secret.
			k2, r2, err := puppet.New(sec, s, clock).Key(ctx, id, "")
			if err != nil {
				t.Fatal(err)
			}
			if !k2.Equal(k1) || r2.ChatKey != r1.ChatKey || !r2.FirstSeen.Equal(r1.FirstSeen) ||
				!r2.LastSeen.After(r1.LastSeen) || r2.DisplayName != "Alice" {
				t.Fatalf("after restart: %+v, first %+v", r2, r1)
			}
			for _, q := range []string{r1.ChatKey, identity.CompressedHex(&k1.PublicKey), identity.DisplayKey(&k1.PublicKey),
				"matrix:@alice:example.org"} {
				got, err := reg.Whois(ctx, q)
				if err != nil || len(got) != 1 || !equalPuppet(got[0], r2) {
					t.Errorf("Whois(%s) = %+v, %v; want [%+v]", q, got, err, r2)
				}
			}
			if _, _, err := reg.Key(ctx, identity.PuppetID{Network: "matrix", User: "x"}, ""); err == nil ||
				!strings.Contains(err.Error(), "account") {
				t.Fatalf("invalid id: %v", err)
			}
			if n, err := reg.Count(ctx); err != nil || n != 1 {
				t.Fatalf("count = %d, %v; want 1", n, err)
			}
		})
	}
}

// equalPuppet compares records with time.Time.Equal (the store returns local times).
func equalPuppet(a, b records.Puppet) bool {
	return a.Network == b.Network && a.Account == b.Account && a.User == b.User && a.ChatKey == b.ChatKey &&
		a.DisplayName == b.DisplayName && a.FirstSeen.Equal(b.FirstSeen) && a.LastSeen.Equal(b.LastSeen)
}
