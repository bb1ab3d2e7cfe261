package puppet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/records"
)

// memStore is a test stand-in for store.Store: an in-memory Store with the same
// semantics (first seen kept, empty display name keeps the stored one, unique chat key).
// The real store runs the same registry on SQLite and PostgreSQL in store/puppets_test.go.
type memStore struct {
	mu   sync.Mutex
	recs map[identity.PuppetID]records.Puppet
}

func newMemStore() *memStore { return &memStore{recs: map[identity.PuppetID]records.Puppet{}} }

func (m *memStore) UpsertPuppet(_ context.Context, r records.Puppet) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := identity.PuppetID{Network: r.Network, Account: r.Account, User: r.User}
	for k, o := range m.recs {
		if o.ChatKey == r.ChatKey && k != id {
			return errors.New("chat key already held")
		}
	}
	if old, ok := m.recs[id]; ok {
		r.FirstSeen = old.FirstSeen
		if r.DisplayName == "" {
			r.DisplayName = old.DisplayName
		}
	}
	m.recs[id] = r
	return nil
}

func (m *memStore) PuppetByRemote(_ context.Context, network, account, user string) (records.Puppet, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[identity.PuppetID{Network: network, Account: account, User: user}]
	return r, ok, nil
}

func (m *memStore) PuppetByChatKey(_ context.Context, chatKey string) (records.Puppet, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.ChatKey == chatKey {
			return r, true, nil
		}
	}
	return records.Puppet{}, false, nil
}

func (m *memStore) PuppetsByUser(_ context.Context, network, user string) ([]records.Puppet, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []records.Puppet
	for _, r := range m.recs {
		if r.Network == network && r.User == user {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) CountPuppets(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.recs)), nil
}

var _ Store = (*memStore)(nil)

func testSecret(tb testing.TB, fill byte) *identity.Secret {
	tb.Helper()
	s, err := identity.NewSecret(bytes.Repeat([]byte{fill}, identity.SecretLen))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// fakeClock returns a clock that advances one second per call.
func fakeClock() func() time.Time {
	var mu sync.Mutex
	t := time.Unix(1600000000, 0)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

var alice = identity.PuppetID{Network: "matrix", Account: "@bridge:example.org", User: "@alice:example.org"}

func TestKeyDeterministic(t *testing.T) {
	ctx := context.Background()
	sec := testSecret(t, 1)
	k1, r1, err := New(sec, newMemStore(), fakeClock()).Key(ctx, alice, "Alice")
	if err != nil {
		t.Fatal(err)
	}
	// A fresh registry and store (a restart) gives the same key and chat key.
	k2, r2, err := New(testSecret(t, 1), newMemStore(), fakeClock()).Key(ctx, alice, "")
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) || r1.ChatKey != r2.ChatKey {
		t.Fatalf("same secret and id gave different keys: %s vs %s", r1.ChatKey, r2.ChatKey)
	}
	want, err := sec.PuppetKey(alice)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(want) || r1.ChatKey != identity.ChatKey(&want.PublicKey) {
		t.Fatal("registry key differs from identity.PuppetKey")
	}
	if !strings.HasPrefix(r1.ChatKey, "0x04") || len(r1.ChatKey) != 132 {
		t.Fatalf("chat key %q not in 0x04 form", r1.ChatKey)
	}
	// Another secret gives another key.
	_, r3, err := New(testSecret(t, 2), newMemStore(), fakeClock()).Key(ctx, alice, "")
	if err != nil {
		t.Fatal(err)
	}
	if r3.ChatKey == r1.ChatKey {
		t.Fatal("different secrets gave the same key")
	}
}

func TestKeyDistinctUsers(t *testing.T) {
	ctx := context.Background()
	r := New(testSecret(t, 1), newMemStore(), fakeClock())
	ids := []identity.PuppetID{
		alice,
		{Network: "matrix", Account: "@bridge:example.org", User: "@bob:example.org"},
		{Network: "matrix", Account: "@other:example.org", User: alice.User}, // same user, other account
		{Network: "slack", Account: "@bridge:example.org", User: alice.User}, // same user, other network
	}
	seen := map[string]identity.PuppetID{}
	for _, id := range ids {
		k, rec, err := r.Key(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[rec.ChatKey]; dup {
			t.Fatalf("%+v and %+v share chat key %s", prev, id, rec.ChatKey)
		}
		seen[rec.ChatKey] = id
		if identity.ChatKey(&k.PublicKey) != rec.ChatKey {
			t.Fatal("record chat key is not the key's")
		}
		if rec.Network != id.Network || rec.Account != id.Account || rec.User != id.User {
			t.Fatalf("record %+v for id %+v", rec, id)
		}
	}
	if n, err := r.Count(ctx); err != nil || n != int64(len(ids)) {
		t.Fatalf("count = %d, %v; want %d", n, err, len(ids))
	}
}

func TestKeyRecordsSightings(t *testing.T) {
	ctx := context.Background()
	r := New(testSecret(t, 1), newMemStore(), fakeClock(), WithSightingResolution(0))
	_, r1, err := r.Key(ctx, alice, "Alice")
	if err != nil {
		t.Fatal(err)
	}
	if !r1.FirstSeen.Equal(r1.LastSeen) || r1.DisplayName != "Alice" {
		t.Fatalf("first sighting: %+v", r1)
	}
	_, r2, err := r.Key(ctx, alice, "")
	if err != nil {
		t.Fatal(err)
	}
	if !r2.FirstSeen.Equal(r1.FirstSeen) || !r2.LastSeen.After(r1.LastSeen) || r2.DisplayName != "Alice" {
		t.Fatalf("second sighting (no name): %+v after %+v", r2, r1)
	}
	_, r3, err := r.Key(ctx, alice, "Alice B.")
	if err != nil {
		t.Fatal(err)
	}
	if !r3.FirstSeen.Equal(r1.FirstSeen) || !r3.LastSeen.After(r2.LastSeen) || r3.DisplayName != "Alice B." {
		t.Fatalf("third sighting (renamed): %+v", r3)
	}
}

// TestKeyInvalidID: a puppet can never be obtained for an invalid id, and nothing is
// derived, cached or recorded for it.
func TestKeyInvalidID(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	r := New(testSecret(t, 1), st, fakeClock())
	derived := 0
	r.derive = func(id identity.PuppetID) (*ecdsa.PrivateKey, error) { derived++; return r.secret.PuppetKey(id) }
	long := strings.Repeat("x", identity.MaxPuppetIDField+1)
	for _, id := range []identity.PuppetID{
		{},
		{Network: "matrix", Account: "a"},
		{Network: "matrix", User: "u"},
		{Account: "a", User: "u"},
		{Network: "matrix", Account: "a", User: long},
		{Network: "matrix", Account: "a", User: "\xff"},
	} {
		k, rec, err := r.Key(ctx, id, "x")
		if !errors.Is(err, identity.ErrInvalidPuppetID) || k != nil || rec != (records.Puppet{}) {
			t.Errorf("Key(%+q) = %v, %+v, %v; want ErrInvalidPuppetID", id, k, rec, err)
		}
	}
	if n, _ := st.CountPuppets(ctx); n != 0 || derived != 0 || len(r.cache) != 0 {
		t.Fatalf("invalid ids left %d records, %d derivations, %d cache entries", n, derived, len(r.cache))
	}
	// A registry without a secret hands out nothing either.
	if _, _, err := New(nil, st, nil).Key(ctx, alice, ""); !errors.Is(err, identity.ErrInvalidSecret) {
		t.Fatalf("nil secret: %v", err)
	}
}

func TestCacheEviction(t *testing.T) {
	ctx := context.Background()
	r := New(testSecret(t, 1), newMemStore(), fakeClock(), WithCacheSize(2))
	derived := map[string]int{}
	r.derive = func(id identity.PuppetID) (*ecdsa.PrivateKey, error) {
		derived[id.User]++
		return r.secret.PuppetKey(id)
	}
	id := func(u string) identity.PuppetID { return identity.PuppetID{Network: "irc", Account: "libera", User: u} }
	keys := map[string]*ecdsa.PrivateKey{}
	for _, u := range []string{"a", "b", "a", "c", "a", "b"} {
		k, _, err := r.Key(ctx, id(u), "")
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := keys[u]; ok && !prev.Equal(k) {
			t.Fatalf("key of %s changed after eviction", u)
		}
		keys[u] = k
		if len(r.cache) > 2 || r.lru.Len() != len(r.cache) {
			t.Fatalf("cache holds %d (lru %d), bound 2", len(r.cache), r.lru.Len())
		}
	}
	// a: miss, hit, hit. b: miss, then evicted by c (a was more recently used), miss
	// again. c: miss.
	if want := map[string]int{"a": 1, "b": 2, "c": 1}; fmt.Sprint(derived) != fmt.Sprint(want) {
		t.Fatalf("derivations %v, want %v", derived, want)
	}
	var users []string
	for el := r.lru.Front(); el != nil; el = el.Next() {
		users = append(users, el.Value.(*entry).id.User)
	}
	if !slices.Equal(users, []string{"b", "a"}) {
		t.Fatalf("cache order (most recent first) %v, want [b a]", users)
	}
}

func TestWhois(t *testing.T) {
	ctx := context.Background()
	r := New(testSecret(t, 1), newMemStore(), fakeClock())
	k, rec, err := r.Key(ctx, alice, "Alice")
	if err != nil {
		t.Fatal(err)
	}
	other := identity.PuppetID{Network: alice.Network, Account: "@a-second-bot:example.org", User: alice.User}
	_, rec2, err := r.Key(ctx, other, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Key(ctx, identity.PuppetID{Network: "matrix", Account: alice.Account, User: "@bob:example.org"}, ""); err != nil {
		t.Fatal(err)
	}
	pub := &k.PublicKey
	for _, q := range []string{
		identity.ChatKey(pub),                                 // 0x04…
		strings.TrimPrefix(identity.ChatKey(pub), "0x"),       // 04…
		strings.ToUpper(identity.ChatKey(pub)[2:]),            // upper-case hex
		identity.CompressedHex(pub),                           // 0x02/0x03…
		strings.TrimPrefix(identity.CompressedHex(pub), "0x"), // 02/03…
		identity.DisplayKey(pub),                              // zQ3…
	} {
		got, err := r.Whois(ctx, q)
		if err != nil || len(got) != 1 || got[0] != rec {
			t.Errorf("Whois(%s) = %+v, %v; want [%+v]", q, got, err, rec)
		}
	}
	got, err := r.Whois(ctx, "matrix:@alice:example.org")
	if err != nil || len(got) != 2 || got[0] != rec2 || got[1] != rec {
		t.Fatalf("Whois(network:user) = %+v, %v; want [%+v %+v] ordered by account", got, err, rec2, rec)
	}
	// Well-formed but unknown: no records, no error.
	for _, q := range []string{"matrix:@carol:example.org", "slack:@alice:example.org"} {
		if got, err := r.Whois(ctx, q); err != nil || len(got) != 0 {
			t.Errorf("Whois(%s) = %+v, %v; want none", q, got, err)
		}
	}
	stranger, err := testSecret(t, 9).PuppetKey(alice)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Whois(ctx, identity.DisplayKey(&stranger.PublicKey)); err != nil || len(got) != 0 {
		t.Errorf("Whois(unknown key) = %+v, %v; want none", got, err)
	}
	for _, q := range []string{"", "alice", "0x04", "Matrix:@alice", "matrix:", ":alice", "zQ3notakey"} {
		if got, err := r.Whois(ctx, q); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("Whois(%q) = %+v, %v; want ErrInvalidQuery", q, got, err)
		}
	}
}

func TestKeyConcurrent(t *testing.T) {
	ctx := context.Background()
	r := New(testSecret(t, 1), newMemStore(), fakeClock(), WithCacheSize(3))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id := identity.PuppetID{Network: "irc", Account: "libera", User: fmt.Sprint((g + i) % 5)}
				if _, _, err := r.Key(ctx, id, ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(r.cache) > 3 {
		t.Fatalf("cache grew to %d", len(r.cache))
	}
}

// nopStore is a Store that records nothing, so the benchmark measures the registry.
type nopStore struct{ rec records.Puppet }

func (n *nopStore) UpsertPuppet(_ context.Context, r records.Puppet) error { n.rec = r; return nil }
func (n *nopStore) PuppetByRemote(context.Context, string, string, string) (records.Puppet, bool, error) {
	return n.rec, true, nil
}
func (n *nopStore) PuppetByChatKey(context.Context, string) (records.Puppet, bool, error) {
	return records.Puppet{}, false, nil
}
func (n *nopStore) PuppetsByUser(context.Context, string, string) ([]records.Puppet, error) {
	return nil, nil
}
func (n *nopStore) CountPuppets(context.Context) (int64, error) { return 0, nil }

func BenchmarkRegistryKey(b *testing.B) {
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		r := New(testSecret(b, 1), &nopStore{}, time.Now)
		if _, _, err := r.Key(ctx, alice, ""); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := r.Key(ctx, alice, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		r := New(testSecret(b, 1), &nopStore{}, time.Now, WithCacheSize(1))
		ids := [2]identity.PuppetID{alice, {Network: "irc", Account: "libera", User: "bob"}}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// Alternating two ids through a one-entry cache misses every time.
			if _, _, err := r.Key(ctx, ids[i&1], ""); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// TestKeySightingResolution: repeated sightings within the resolution write nothing
// (the hot path does no I/O), a new name or a sighting after the resolution does.
func TestKeySightingResolution(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: newMemStore()}
	r := New(testSecret(t, 1), st, fakeClock(), WithSightingResolution(time.Minute)) // the clock ticks 1 s a call
	k1, r1, err := r.Key(ctx, alice, "Alice")
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		k, rec, err := r.Key(ctx, alice, "Alice")
		if err != nil || !k.Equal(k1) || rec != r1 {
			t.Fatalf("repeat: %v %+v %v", k.Equal(k1), rec, err)
		}
		if _, _, err := r.Key(ctx, alice, ""); err != nil {
			t.Fatal(err)
		}
	}
	if st.upserts != 1 {
		t.Fatalf("%d upserts for sightings within a minute, want 1", st.upserts)
	}
	if _, rec, err := r.Key(ctx, alice, "Alice B."); err != nil || rec.DisplayName != "Alice B." || st.upserts != 2 {
		t.Fatalf("rename: %+v %v (%d upserts)", rec, err, st.upserts)
	}
	for range 60 { // a minute of clock
		r.clock()
	}
	if _, rec, err := r.Key(ctx, alice, ""); err != nil || !rec.LastSeen.After(r1.LastSeen.Add(time.Minute)) || st.upserts != 3 {
		t.Fatalf("after the resolution: %+v %v (%d upserts)", rec, err, st.upserts)
	}
}

// countingStore counts the upserts reaching a Store.
type countingStore struct {
	Store
	upserts int
}

func (c *countingStore) UpsertPuppet(ctx context.Context, r records.Puppet) error {
	c.upserts++
	return c.Store.UpsertPuppet(ctx, r)
}

// The cache keeps the key as bytes: every Key call returns a key of its own, equal to the
// derived one, and what a caller does to it does not reach the cache or other callers.
func TestKeyReturnsOwnCopy(t *testing.T) {
	ctx := context.Background()
	sec := testSecret(t, 1)
	r := New(sec, newMemStore(), fakeClock())
	want, err := sec.PuppetKey(alice)
	if err != nil {
		t.Fatal(err)
	}
	k1, r1, err := r.Key(ctx, alice, "Alice") // miss: derived, written
	if err != nil {
		t.Fatal(err)
	}
	k2, r2, err := r.Key(ctx, alice, "") // hit within the resolution: no write
	if err != nil {
		t.Fatal(err)
	}
	if k1 == k2 {
		t.Fatal("two calls returned the same *ecdsa.PrivateKey")
	}
	for _, k := range []*ecdsa.PrivateKey{k1, k2} {
		if !k.Equal(want) || !k.PublicKey.Equal(&want.PublicKey) || k.Curve != want.Curve {
			t.Fatal("cached key differs from identity.PuppetKey")
		}
	}
	if r1 != r2 || r1.ChatKey != identity.ChatKey(&want.PublicKey) || r1.User != alice.User || r1.Account != alice.Account {
		t.Fatalf("records %+v and %+v", r1, r2)
	}
	k1.D.SetInt64(1)
	k1.X.SetInt64(2)
	k3, _, err := r.Key(ctx, alice, "")
	if err != nil {
		t.Fatal(err)
	}
	if !k3.Equal(want) || !k2.Equal(want) {
		t.Fatal("modifying a returned key changed the cache or another caller's key")
	}
}
