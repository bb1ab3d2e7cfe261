package puppet

import (
	"container/list"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/records"
)

// DefaultCacheSize is the number of derived keys a Registry keeps unless WithCacheSize
// says otherwise.
const DefaultCacheSize = 10_000

// ErrInvalidQuery: a Whois query is neither a chat key nor "network:user".
var ErrInvalidQuery = errors.New("invalid whois query")

// Store persists Records. store.Store implements it on SQLite and PostgreSQL.
type Store interface {
	// UpsertPuppet inserts r, or updates the existing record of (Network, Account,
	// User): FirstSeen is kept, LastSeen and ChatKey are replaced, and DisplayName is
	// replaced unless r.DisplayName is empty. It fails if another remote user already
	// holds r.ChatKey.
	UpsertPuppet(ctx context.Context, r records.Puppet) error
	// PuppetByRemote returns the record of (network, account, user); ok is false when
	// there is none.
	PuppetByRemote(ctx context.Context, network, account, user string) (r records.Puppet, ok bool, err error)
	// PuppetByChatKey returns the record whose ChatKey is chatKey (the identity.ChatKey
	// form); ok is false when there is none.
	PuppetByChatKey(ctx context.Context, chatKey string) (r records.Puppet, ok bool, err error)
	// PuppetsByUser returns the records of user on network under every gateway account,
	// ordered by account. It serves Whois "network:user", which names no account.
	PuppetsByUser(ctx context.Context, network, user string) ([]records.Puppet, error)
	// CountPuppets returns the number of records.
	CountPuppets(ctx context.Context) (int64, error)
}

// Option configures a Registry.
type Option func(*Registry)

// WithCacheSize sets how many derived keys the registry keeps in memory (at least 1;
// smaller values mean 1).
func WithCacheSize(n int) Option {
	return func(r *Registry) { r.size = max(n, 1) }
}

// DefaultSightingResolution is how far apart two sightings of one puppet must be for the
// second to be written, unless WithSightingResolution says otherwise.
const DefaultSightingResolution = time.Minute

// WithSightingResolution sets the resolution of LastSeen: a sighting less than d after
// the one last written, with no new display name, is not written (Key then does no
// I/O for a cached puppet). 0 writes every sighting.
func WithSightingResolution(d time.Duration) Option {
	return func(r *Registry) { r.resolution = max(d, 0) }
}

// Registry hands out puppet keys and records them. It is safe for concurrent use.
//
// Derived keys are cached in a bounded LRU: when the cache holds its size and a new
// puppet is derived, the least recently used entry is evicted (its key is re-derived
// the next time it is needed). The cache holds keys only in memory.
type Registry struct {
	secret *identity.Secret
	store  Store
	clock  func() time.Time
	size   int
	derive func(identity.PuppetID) (*ecdsa.PrivateKey, error)
	// resolution: see WithSightingResolution.
	resolution time.Duration

	mu    sync.Mutex
	lru   *list.List // of *entry, most recently used first
	cache map[identity.PuppetID]*list.Element
}

// entry is one cached puppet. It holds the key as its 96 bytes (the scalar and the
// public point) rather than as an *ecdsa.PrivateKey, whose three big.Ints and struct
// cost about 330 bytes of heap: with 10,000 puppets cached that is 2.3 MiB, against
// materialising a key (four small allocations, no curve arithmetic) per Key call. The
// strings of rec share their bytes with id and chatKey (see Key), so a puppet's chat key
// is held once, here, whoever else keeps it.
type entry struct {
	id      identity.PuppetID
	d       [32]byte // private scalar, big-endian
	pub     [64]byte // public point X ‖ Y, big-endian
	chatKey string
	// rec is the record as last written by this registry, valid when written is true;
	// guarded by Registry.mu.
	rec     records.Puppet
	written bool
}

func newEntry(id identity.PuppetID, key *ecdsa.PrivateKey) *entry {
	e := &entry{id: id, chatKey: identity.ChatKey(&key.PublicKey)}
	key.D.FillBytes(e.d[:])
	key.X.FillBytes(e.pub[:32])
	key.Y.FillBytes(e.pub[32:])
	return e
}

// key returns a new *ecdsa.PrivateKey of the entry's key.
func (e *entry) key() *ecdsa.PrivateKey {
	return &ecdsa.PrivateKey{
		PublicKey: ecdsa.PublicKey{Curve: crypto.S256(), X: new(big.Int).SetBytes(e.pub[:32]), Y: new(big.Int).SetBytes(e.pub[32:])},
		D:         new(big.Int).SetBytes(e.d[:]),
	}
}

// New returns a registry deriving keys from secret and recording them in store. clock
// gives the sighting times (nil means time.Now). It does no I/O.
func New(secret *identity.Secret, store Store, clock func() time.Time, opts ...Option) *Registry {
	if clock == nil {
		clock = time.Now
	}
	r := &Registry{
		secret:     secret,
		store:      store,
		clock:      clock,
		size:       DefaultCacheSize,
		resolution: DefaultSightingResolution,
		lru:        list.New(),
		cache:      map[identity.PuppetID]*list.Element{},
	}
	r.derive = secret.PuppetKey
	for _, o := range opts {
		o(r)
	}
	return r
}

// Key returns the private key of the puppet for id and its record after this sighting:
// the record is upserted with LastSeen now and DisplayName displayName (kept as stored
// when displayName is empty), FirstSeen as first recorded. A sighting within the
// sighting resolution of the last one this registry wrote, bringing no new display
// name, is not written: the record returned is the one written then. It fails, wrapping
// identity.ErrInvalidPuppetID, for an invalid id, before any lookup.
//
// Each call returns a key of its own: the cache keeps none that a caller could modify.
func (r *Registry) Key(ctx context.Context, id identity.PuppetID, displayName string) (*ecdsa.PrivateKey, records.Puppet, error) {
	if err := id.Validate(); err != nil {
		return nil, records.Puppet{}, fmt.Errorf("puppet key: %w", err)
	}
	e, err := r.cached(id)
	if err != nil {
		return nil, records.Puppet{}, err
	}
	now := r.clock()
	r.mu.Lock()
	if e.written && (displayName == "" || displayName == e.rec.DisplayName) && now.Sub(e.rec.LastSeen) < r.resolution {
		// Seen a moment ago and recorded then: nothing new to write. This is the hot
		// path of a busy bridge (a write per message would cost a disk sync each).
		rec := e.rec
		r.mu.Unlock()
		return e.key(), rec, nil
	}
	r.mu.Unlock()
	rec := records.Puppet{
		Network: id.Network, Account: id.Account, User: id.User,
		ChatKey: e.chatKey, DisplayName: displayName,
		FirstSeen: now, LastSeen: now,
	}
	if err := r.store.UpsertPuppet(ctx, rec); err != nil {
		return nil, records.Puppet{}, fmt.Errorf("record puppet of %s/%s: %w", id.Network, id.Account, err)
	}
	stored, ok, err := r.store.PuppetByRemote(ctx, id.Network, id.Account, id.User)
	if err != nil {
		return nil, records.Puppet{}, fmt.Errorf("read puppet of %s/%s: %w", id.Network, id.Account, err)
	}
	if !ok || stored.ChatKey != e.chatKey {
		// Never hand out a key whose record says otherwise.
		return nil, records.Puppet{}, fmt.Errorf("read puppet of %s/%s: record missing or chat key mismatch", id.Network, id.Account)
	}
	// The record as read equals the entry on these fields (the query and the check
	// above): keep the entry's strings, not a second copy of each from the store.
	stored.Network, stored.Account, stored.User, stored.ChatKey = e.id.Network, e.id.Account, e.id.User, e.chatKey
	r.mu.Lock()
	e.rec, e.written = stored, true
	r.mu.Unlock()
	return e.key(), stored, nil
}

// cached returns the cache entry of id, deriving and inserting it on a miss.
func (r *Registry) cached(id identity.PuppetID) (*entry, error) {
	r.mu.Lock()
	if el, ok := r.cache[id]; ok {
		r.lru.MoveToFront(el)
		e := el.Value.(*entry)
		r.mu.Unlock()
		return e, nil
	}
	r.mu.Unlock()

	// Derive outside the lock; two concurrent misses derive the same key twice, harmless.
	key, err := r.derive(id)
	if err != nil {
		return nil, fmt.Errorf("puppet key: %w", err)
	}
	e := newEntry(id, key)

	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.cache[id]; ok { // another caller won the race
		r.lru.MoveToFront(el)
		return el.Value.(*entry), nil
	}
	r.cache[id] = r.lru.PushFront(e)
	for r.lru.Len() > r.size {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.cache, old.Value.(*entry).id)
	}
	return e, nil
}

// Whois looks puppets up by query, which is either
//
//   - a chat key in any form identity.ParseChatKey accepts (0x04… uncompressed, 02…/03…
//     compressed with or without 0x, or the zQ3… display key): at most one record; or
//   - "network:user", a bridges.RemoteUserID as connectors build it (split at the first
//     ':', so user may itself contain ':', as Matrix IDs do): the records of that user
//     under every gateway account of the network, ordered by account.
//
// A query holding ':' is taken as network:user, any other as a chat key. No match is an
// empty result and a nil error. A malformed query fails wrapping ErrInvalidQuery.
func (r *Registry) Whois(ctx context.Context, query string) ([]records.Puppet, error) {
	if strings.Contains(query, ":") {
		uid := bridges.RemoteUserID(query)
		if err := uid.Validate(); err != nil {
			return nil, fmt.Errorf("whois: %w: %w", ErrInvalidQuery, err)
		}
		recs, err := r.store.PuppetsByUser(ctx, uid.Network(), uid.Local())
		if err != nil {
			return nil, fmt.Errorf("whois %s: %w", query, err)
		}
		slices.SortFunc(recs, func(a, b records.Puppet) int { return strings.Compare(a.Account, b.Account) })
		return recs, nil
	}
	pub, err := identity.ParseChatKey(query)
	if err != nil {
		return nil, fmt.Errorf("whois: %w: neither a chat key nor network:user: %w", ErrInvalidQuery, err)
	}
	chatKey := identity.ChatKey(pub)
	rec, ok, err := r.store.PuppetByChatKey(ctx, chatKey)
	if err != nil {
		return nil, fmt.Errorf("whois %s: %w", chatKey, err)
	}
	if !ok {
		return nil, nil
	}
	return []records.Puppet{rec}, nil
}

// Count returns the number of recorded puppets.
func (r *Registry) Count(ctx context.Context) (int64, error) {
	n, err := r.store.CountPuppets(ctx)
	if err != nil {
		return 0, fmt.Errorf("count puppets: %w", err)
	}
	return n, nil
}
