package whisper

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
)

// poolEnv is an envelope of exactly size bytes (Size) for pool tests: its PoW is given
// to add, not computed.
func poolEnv(t *testing.T, nonce uint64, size int, expiry uint32) *Envelope {
	t.Helper()
	env, err := NewEnvelope(expiry, 10, Topic{1, 2, 3, 4}, make([]byte, size-EnvelopeHeaderLength), nonce)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestPool_largestShareFirst(t *testing.T) {
	var flooder, small, other enode.ID
	flooder[0], small[0], other[0] = 1, 2, 3
	unit := poolCost(poolEnv(t, 0, 100, 2000)) // what one envelope of Size 100 counts
	p := newPool(10 * unit)
	add := func(n uint64, from enode.ID, local bool, pow float64) (poolResult, int) {
		return p.add(poolEnv(t, n, 100, 2000), pow, from, local, 0)
	}
	// The flooder fills the pool: 10 envelopes, the cheapest being nonce 3.
	for n := range uint64(10) {
		pow := 1.0
		if n == 3 {
			pow = 0.5
		}
		if res, ev := add(n, flooder, false, pow); res != poolAdded || ev != 0 {
			t.Fatalf("envelope %d: %v, %d evicted", n, res, ev)
		}
	}
	// Its next one may only replace a cheaper envelope of its own...
	if res, _ := add(10, flooder, false, 0.5); res != poolFull {
		t.Fatalf("flooder's equal-PoW envelope: %v, want poolFull", res)
	}
	if res, ev := add(11, flooder, false, 2); res != poolAdded || ev != 1 || p.contains(poolEnv(t, 3, 100, 2000).Hash()) {
		t.Fatalf("flooder's dearer envelope: %v, %d evicted; the cheapest must go", res, ev)
	}
	// ...while a peer holding less evicts the flooder's, whatever the PoW.
	for n := uint64(100); n < 104; n++ {
		if res, ev := add(n, small, false, 0.001); res != poolAdded || ev != 1 {
			t.Fatalf("small peer's envelope %d: %v, %d evicted", n, res, ev)
		}
	}
	// Our own envelopes evict peers' ones, the largest holder's first.
	for n := uint64(200); n < 202; n++ {
		if res, ev := add(n, enode.ID{}, true, 0); res != poolAdded || ev != 1 {
			t.Fatalf("own envelope %d: %v, %d evicted", n, res, ev)
		}
	}
	if got := p.sources[flooder].bytes; got != 4*unit {
		t.Fatalf("flooder holds %d bytes, want %d (an equal share with the small peer)", got, 4*unit)
	}
	// The two peers are even now: neither evicts the other's, a third evicts one.
	if res, _ := add(105, small, false, 0.001); res != poolFull {
		t.Fatalf("even shares: %v, want poolFull", res)
	}
	if res, ev := add(300, other, false, 0.001); res != poolAdded || ev != 1 {
		t.Fatalf("third peer: %v, %d evicted", res, ev)
	}
	// A peer never evicts our own envelopes.
	q := newPool(3 * unit)
	for n := range uint64(3) {
		q.add(poolEnv(t, n, 100, 2000), 0, enode.ID{}, true, 0)
	}
	if res, _ := q.add(poolEnv(t, 9, 100, 2000), 100, other, false, 1); res != poolFull {
		t.Fatalf("peer over our own envelopes: %v, want poolFull", res)
	}
	if res, _ := q.add(poolEnv(t, 10, 100, 2000), 100, enode.ID{}, true, 0); res != poolFull {
		t.Fatalf("own envelope over our own: %v, want poolFull", res)
	}

	// Bookkeeping: the evicted are flagged in since, and expiry empties everything.
	evicted := 0
	for _, e := range p.since(0) {
		if e.evicted.Load() {
			evicted++
		}
	}
	n, bytes := p.stats()
	if n != 10 || bytes != 10*unit || evicted != len(p.since(0))-10 {
		t.Fatalf("%d envelopes, %d bytes, %d of %d flagged", n, bytes, evicted, len(p.since(0)))
	}
	if got := p.expire(2001); got != 10 {
		t.Fatalf("expired %d, want 10", got)
	}
	if n, bytes := p.stats(); n != 0 || bytes != 0 || len(p.sources) != 0 || p.local.bytes != 0 || len(p.since(0)) != 0 {
		t.Fatalf("after expiry: %d envelopes, %d bytes, %d sources, %d local bytes", n, bytes, len(p.sources), p.local.bytes)
	}
}

// sendAcked writes one code-1 packet and waits for the service's batch acknowledgement
// (status-go confirmations), so the packet has been processed when it returns.
func (r *rawPeer) sendAcked(envs ...*Envelope) {
	r.t.Helper()
	body, err := rlp.EncodeToBytes(envs)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(messagesCode, body)
	want := crypto.Keccak256Hash(body)
	var got [32]byte
	// The ack comes once the whole packet is handled: for a packet of 32,768 envelopes
	// (TestPool_tinyEnvelopesBoundedInMemory) that took more than 10 s under -race at
	// load 15-20, so the deadline allows for the work, not for a round trip.
	if err := rlp.DecodeBytes(r.nextWithin(batchAcknowledgedCode, time.Minute).body, &got); err != nil || got != want {
		r.t.Fatalf("batch ack %x, %v; want %x", got, err, want)
	}
}

// TestPool_pinningDoesNotBlockOwnPosts is issue 15 finding 7: one peer fills the pool
// with cheap, long-lived envelopes (the minimum PoW, an hour's TTL, then the longest TTL
// we accept); our own posts and an honest peer's envelopes must still get in.
//
// Before the fair eviction and the TTL cap (2026-12-05): 10 of 10 own posts failed with
// ErrPoolFull and 0 of 10 honest envelopes were pooled.
func TestPool_pinningDoesNotBlockOwnPosts(t *testing.T) {
	const poolBytes = 64 << 10
	s := startService(t, Config{MinPoW: 0.0002, MaxPoolBytes: poolBytes, Confirmations: true,
		Limits: PeerLimits{PacketsPerSecond: 1e6, PacketBurst: 1e6}})
	now := time.Now()
	filler := strings.Repeat("x", 2000)

	keys := map[string]*SymKey{}
	wrap := func(chat, text string, ttl uint32, pow float64, at time.Time) *Envelope {
		if keys[chat] == nil {
			keys[chat] = symKeyOf(t, chat) // PBKDF2: slow under -race, so once per chat
		}
		env, err := Wrap(&MessageParams{Topic: TopicFromName(chat), KeySym: keys[chat], Src: keyOf(t, chat), Payload: []byte(text),
			TTL: ttl, PoW: pow, WorkTime: 5 * time.Second, Clock: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	spam := func(text string, ttl uint32) *Envelope { return wrap("spam", text, ttl, 0.0002, now) }

	attacker := dialRaw(t, s, nil)
	attacker.next(statusCode)
	// Large envelopes first, then small ones into what space is left, as a flooder
	// filling the pool to the brim would.
	for _, ttl := range []uint32{3600, DefaultMaxTTL} {
		for _, wave := range []struct{ size, packets int }{{2000, 6}, {10, 2}} {
			size := wave.size
			for i := range wave.packets {
				envs := make([]*Envelope, 6)
				for j := range envs {
					envs[j] = spam(fmt.Sprint(ttl, size, i, j, filler[:size]), ttl)
				}
				attacker.sendAcked(envs...)
			}
		}
	}
	st := s.Stats()
	t.Logf("after the flood: %+v", st)
	if st.PoolBytes > poolBytes {
		t.Fatalf("pool holds %d bytes, over its bound %d", st.PoolBytes, poolBytes)
	}
	if st.Envelopes == 0 {
		t.Fatal("the attacker's envelopes within the TTL cap were not pooled at all")
	}
	if st.LongTTL != 48 || st.Rejected != 0 {
		t.Fatalf("LongTTL %d, Rejected %d: want the 48 envelopes of TTL 3600 refused as a policy", st.LongTTL, st.Rejected)
	}

	failed := 0
	for i := range 10 {
		// Fresh timestamps: sealing the flood can take longer than 15 s on a loaded
		// machine, and an own post stamped at the flood's start would have expired.
		if err := s.Send(wrap("status", fmt.Sprint("own ", i), 15, 0.002, time.Now())); err != nil {
			if !errors.Is(err, ErrPoolFull) {
				t.Fatal(err)
			}
			failed++
		}
	}

	honest := dialRaw(t, s, nil)
	honest.next(statusCode)
	pooled := 0
	for i := range 10 {
		env := wrap("honest", fmt.Sprint("honest ", i), 15, 0.002, time.Now())
		honest.sendAcked(env)
		if s.pool.contains(env.Hash()) {
			pooled++
		}
	}
	t.Logf("own posts failed: %d of 10; honest envelopes pooled: %d of 10; stats %+v", failed, pooled, s.Stats())
	if failed > 0 || pooled != 10 {
		t.Fatalf("own posts failed: %d of 10 (want 0); honest envelopes pooled: %d of 10 (want 10)", failed, pooled)
	}
	if !attacker.alive() || !honest.alive() {
		t.Fatal("a peer was disconnected; pool pressure is our limit, not the peer's fault")
	}
}

// TestPool_tinyEnvelopesBoundedInMemory is the review of issue 15's "byte bounds on every
// buffer, cache, ring and map that remote input can grow" for the pool and the peers'
// known sets: one peer sends packets of 1 MiB, each of 32,768 envelopes with no data
// (Size 20, the cheapest there are), at its byte limit. MaxPoolBytes must bound what
// the pool holds in memory and the peer's known set must stay bounded.
//
// Before: the pool counted 20 bytes an envelope (a 256 KiB pool took 13,107 envelopes,
// each costing about 276 bytes), every pooled envelope held its whole 1 MiB packet
// (DecodeEnvelope aliases the body), and the peer's known set held every hash it sent
// (262,144); the heap grew by tens of MiB. After: the pool's cost counts each
// envelope's overhead, new envelopes of a packet of several are copied out of it, and
// the known set holds at most maxKnown.
func TestPool_tinyEnvelopesBoundedInMemory(t *testing.T) {
	const (
		poolBytes = 256 << 10
		packets   = 8
		perPacket = 32768
	)
	s := startService(t, Config{MinPoW: 1e-4, MaxPoolBytes: poolBytes, Confirmations: true,
		Limits: PeerLimits{PacketsPerSecond: 1e6, PacketBurst: 1e6, BytesPerSecond: 1e12, ByteBurst: 1 << 40}})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	attacker := dialRaw(t, s, nil)
	attacker.next(statusCode)
	expiry := uint32(time.Now().Unix()) + DefaultMaxTTL
	topic := TopicFromName("tiny")
	sent := 0
	for i := range packets {
		envs := make([]*Envelope, perPacket)
		for j := range envs {
			env, err := NewEnvelope(expiry, DefaultMaxTTL, topic, nil, uint64(i*perPacket+j))
			if err != nil {
				t.Fatal(err)
			}
			envs[j] = env
		}
		attacker.sendAcked(envs...)
		sent += len(envs)
	}
	st := s.Stats()
	p := s.Peer(attacker.id)
	if p == nil {
		t.Fatal("the attacker was disconnected")
	}
	p.mu.Lock()
	known := len(p.known)
	p.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d tiny envelopes in %d packets: pool holds %d envelopes, %d bytes counted (bound %d); the peer's known set %d; heap grew %.1f MiB",
		sent, packets, st.Envelopes, st.PoolBytes, poolBytes, known, float64(grown)/(1<<20))
	if max := poolBytes / (EnvelopeHeaderLength + pooledOverhead); st.Envelopes > max {
		t.Errorf("pool holds %d envelopes of no data: more than %d, the bytes they cost", st.Envelopes, max)
	}
	if known > maxKnown {
		t.Errorf("the peer's known set holds %d hashes, over %d", known, maxKnown)
	}
	// The pool's bound, the known set's (about 6 MiB) and slack: not the 8 MiB of
	// packets, nor a hash of each of the 262,144 envelopes.
	if limit := int64(poolBytes + 8<<20); grown > limit {
		t.Errorf("heap grew %.1f MiB holding a %d KiB pool, over %.1f MiB", float64(grown)/(1<<20), poolBytes>>10, float64(limit)/(1<<20))
	}
	runtime.KeepAlive(s)
}

// What the pool holds per envelope beside its bytes: the Envelope and its pool entry.
// BenchmarkPoolMemory measures the whole overhead; this keeps the two structs from
// growing back into larger size classes unnoticed.
func TestPooledStructSizes(t *testing.T) {
	if n := unsafe.Sizeof(Envelope{}); n > 96 {
		t.Errorf("Envelope is %d bytes, want at most 96", n)
	}
	if n := unsafe.Sizeof(pooled{}); n > 48 {
		t.Errorf("pooled is %d bytes, want at most 48", n)
	}
}

// Once a burst has expired, the pool's index and order shrink to what is left instead
// of keeping the burst's size for the node's lifetime (Go maps do not shrink).
func TestPool_shrinksAfterBurstExpired(t *testing.T) {
	p := newPool(math.MaxInt)
	const burst, left = 3 * poolShrinkMin, 100
	var peer enode.ID
	var kept []*Envelope
	for i := range burst + left {
		expiry := uint32(1000)
		if i >= burst {
			expiry = 2000
		}
		env, err := NewEnvelope(expiry, 10, TopicFromName("status"), []byte{byte(i)}, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if res, _ := p.add(env, 1, peer, false, 1); res != poolAdded {
			t.Fatalf("envelope %d: %v", i, res)
		}
		if i >= burst {
			kept = append(kept, env)
		}
	}
	if p.peak != burst+left {
		t.Fatalf("peak %d, want %d", p.peak, burst+left)
	}
	if n := p.expire(1500); n != burst {
		t.Fatalf("expired %d, want %d", n, burst)
	}
	if p.peak != left || len(p.byHash) != left || len(p.order) != left || cap(p.order) > 2*left {
		t.Fatalf("after the burst: peak %d, index %d, order %d (cap %d); want %d", p.peak, len(p.byHash), len(p.order), cap(p.order), left)
	}
	for _, env := range kept {
		if !p.contains(env.Hash()) {
			t.Fatal("an envelope still within its TTL is gone from the index")
		}
	}
	if got := p.since(0); len(got) != left || got[0].env != kept[0] {
		t.Fatal("order lost the envelopes left")
	}
	if n, _ := p.stats(); n != left {
		t.Fatalf("stats: %d envelopes, want %d", n, left)
	}
	// Below poolShrinkMin nothing is rebuilt.
	q := newPool(math.MaxInt)
	for i := range 10 {
		env, _ := NewEnvelope(1000, 10, TopicFromName("status"), nil, uint64(i))
		q.add(env, 1, peer, false, 1)
	}
	q.expire(1500)
	if q.peak != 10 {
		t.Fatalf("small pool rebuilt: peak %d", q.peak)
	}
}
