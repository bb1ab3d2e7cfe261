package whisper

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rlp"
)

// remote plays the other side of a pipe: it sends what the test says, then reads our
// status so that our send completes.
func remote(t *testing.T, rw p2p.MsgReadWriter, code uint64, body []byte) <-chan Status {
	got := make(chan Status, 1)
	go func() {
		if err := p2p.Send(rw, code, rlp.RawValue(body)); err != nil {
			t.Errorf("remote send: %v", err)
		}
		var st Status
		_, err := readStatus(rw, maxStatusSize, func(b []byte) (PeerSettings, error) {
			var err error
			st, err = DecodeStatus(b)
			return PeerSettings{}, err
		})
		if err != nil {
			t.Errorf("remote read: %v", err)
		}
		got <- st
	}()
	return got
}

func TestHandshake_exchange(t *testing.T) {
	a, b := p2p.MsgPipe()
	defer a.Close()
	bloom := BloomOf(TopicFromName("status"))
	theirs, _ := EncodeStatus(Status{PoW: 0.002, Bloom: bloom, Confirmations: true})
	seen := remote(t, b, statusCode, theirs)
	st, err := Handshake(a, Status{PoW: 0.001, Bloom: FullBloom()}, HandshakePolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if st.PoW != 0.002 || st.Bloom != bloom || !st.Confirmations {
		t.Errorf("their status: %+v", st)
	}
	if ours := <-seen; ours.PoW != 0.001 || !ours.Bloom.IsFull() {
		t.Errorf("they saw %+v", ours)
	}
}

func TestHandshake_gethFourItems(t *testing.T) {
	a, b := p2p.MsgPipe()
	defer a.Close()
	full := FullBloom()
	geth, _ := rlp.EncodeToBytes([]any{uint64(6), math.Float64bits(0.2), full[:], false})
	remote(t, b, statusCode, geth)
	st, err := Handshake(a, Status{Bloom: FullBloom()}, HandshakePolicy{})
	if err != nil || st.PoW != 0.2 || st.Confirmations {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestHandshake_rejects(t *testing.T) {
	light, _ := EncodeStatus(Status{Bloom: FullBloom(), LightNode: true})
	v5, _ := rlp.EncodeToBytes([]any{uint64(5)})
	cases := []struct {
		name   string
		code   uint64
		body   []byte
		policy HandshakePolicy
	}{
		{"messages before status", messagesCode, []byte{0xc0}, HandshakePolicy{}},
		{"oversize status", statusCode, make([]byte, maxStatusSize+1), HandshakePolicy{}},
		{"wrong version", statusCode, v5, HandshakePolicy{}},
		{"garbage", statusCode, []byte{0xff, 0x01}, HandshakePolicy{}},
		{"two light nodes, restricted", statusCode, light, HandshakePolicy{LightNode: true, RestrictLightPeers: true}},
	}
	for _, tc := range cases {
		a, b := p2p.MsgPipe()
		remote(t, b, tc.code, tc.body)
		if _, err := Handshake(a, Status{Bloom: FullBloom()}, tc.policy); !errorsIs(err, ErrHandshake) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		a.Close()
	}
	// Two light nodes are fine when the policy allows it (status-go's default).
	a, b := p2p.MsgPipe()
	defer a.Close()
	remote(t, b, statusCode, light)
	if _, err := Handshake(a, Status{Bloom: FullBloom()}, HandshakePolicy{LightNode: true}); err != nil {
		t.Errorf("unrestricted light peers: %v", err)
	}
}

func TestHandshake_peerGone(t *testing.T) {
	a, b := p2p.MsgPipe()
	b.Close()
	if _, err := Handshake(a, Status{Bloom: FullBloom()}, HandshakePolicy{}); err == nil {
		t.Error("handshake with a closed pipe succeeded")
	}
}

// TestHandshake_timeout: a peer that reads our status and never sends its own is cut
// off after policy.Timeout: Abort is called (RunPeer disconnects), Handshake waits for
// the pending read and returns an error wrapping ErrHandshake.
func TestHandshake_timeout(t *testing.T) {
	a, b := p2p.MsgPipe()
	defer a.Close()
	go func() { // reads our status, then nothing
		for {
			msg, err := b.ReadMsg()
			if err != nil {
				return
			}
			msg.Discard()
		}
	}()
	aborted := make(chan struct{})
	_, err := Handshake(a, Status{Bloom: FullBloom()}, HandshakePolicy{Timeout: 50 * time.Millisecond,
		Abort: func() { close(aborted); a.Close() }})
	if !errorsIs(err, ErrHandshake) || !strings.Contains(err.Error(), "no status within 50ms") {
		t.Fatalf("err = %v, want a handshake timeout", err)
	}
	select {
	case <-aborted:
	default:
		t.Error("Abort was not called")
	}
	if _, err := Handshake(a, Status{Bloom: FullBloom()}, HandshakePolicy{Timeout: time.Second}); !errorsIs(err, ErrHandshake) {
		t.Errorf("a timeout without Abort: %v", err)
	}
}

func TestPeer_sendRateHonoursAdvertisedLimits(t *testing.T) {
	s, err := NewService(Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{s: s, limits: s.cfg.Limits}
	if r, b := p.sendRate(); r != 50 || b != 20 || p.strict() {
		t.Fatalf("defaults: %v/s burst %v, want 50 and 20", r, b)
	}
	p.rateLimits = &RateLimits{IP: 10, PeerID: 4}
	if r, b := p.sendRate(); r != 3 || b != 2 || !p.strict() {
		t.Fatalf("status-go's limits 10 per IP, 4 per peer: %v/s burst %v, want 3 and 2", r, b)
	}
	// A limit below geth's pace is honoured too: the periodic cycle waits for the budget.
	p.rateLimits = &RateLimits{PeerID: 1}
	if r, b := p.sendRate(); r != 0.75 || b != 1 {
		t.Fatalf("a limit below geth's pace: %v/s burst %v, want 0.75 and 1", r, b)
	}
	p.rateLimits = &RateLimits{} // advertised, but no limits (status-go's zero value)
	if r, b := p.sendRate(); r != 50 || b != 20 || p.strict() {
		t.Fatalf("zero limits: %v/s burst %v, want the defaults", r, b)
	}
	// Waku's byte limits (option 6): the lowest non-zero one, and then strict.
	p.byteLimits = &RateLimits{IP: 1 << 20, PeerID: 4096}
	if br := p.byteRate(); br != 3072 || !p.strict() {
		t.Fatalf("byte limits: %v B/s, strict %v; want 3072 and strict", br, p.strict())
	}
}

func TestPeer_budget(t *testing.T) {
	s, err := NewService(Config{Limits: PeerLimits{SendPacketsPerSecond: 10, SendPacketBurst: 2}})
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{s: s, limits: s.cfg.Limits}
	t0 := time.Unix(1000, 0)
	for i := range 2 {
		if w := p.budgetWait(t0); w != 0 {
			t.Fatalf("packet %d of the burst waits %v", i, w)
		}
		p.budget.tokens--
	}
	if w := p.budgetWait(t0); w != 100*time.Millisecond {
		t.Fatalf("after the burst: wait %v, want 100 ms", w)
	}
	if w := p.budgetWait(t0.Add(50 * time.Millisecond)); w != 50*time.Millisecond {
		t.Fatalf("half a token later: wait %v, want 50 ms", w)
	}
	// The periodic cycle may overspend; eager sends then wait longer.
	p.budget.tokens -= 2
	if w := p.budgetWait(t0.Add(100 * time.Millisecond)); w != 200*time.Millisecond {
		t.Fatalf("overspent: wait %v, want 200 ms", w)
	}
	if w := p.budgetWait(t0.Add(time.Hour)); w != 0 || p.budget.tokens != 2 {
		t.Fatalf("an hour later: wait %v, %v tokens; want 0 and the burst", w, p.budget.tokens)
	}
}

// A peer's known set is bounded (maxKnown, oldest first) and, once a burst expired,
// shrinks back to what is live instead of holding its peak for the peer's lifetime.
func TestKnownSetShrinksAfterExpiry(t *testing.T) {
	p := &Peer{known: make(map[uint64]uint32)}
	hash := func(i int) common.Hash {
		return crypto.Keccak256Hash([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	}
	// A burst expiring at 100, then a few envelopes living until 200.
	const burst, live = 5000, 40
	for i := range burst {
		p.addKnownLocked(hash(i), 100)
	}
	for i := range live {
		p.addKnownLocked(hash(burst+i), 200)
	}
	p.addKnownLocked(hash(burst), 200) // again: no second place in the ring
	if len(p.known) != burst+live || len(p.knownRing) != burst+live {
		t.Fatalf("known %d, ring %d; want %d each", len(p.known), len(p.knownRing), burst+live)
	}
	p.expireKnown(150)
	if len(p.known) != live || len(p.knownRing) != live || cap(p.knownRing) != live || p.knownNext != 0 {
		t.Fatalf("after the burst expired: known %d, ring %d (cap %d, next %d); want %d",
			len(p.known), len(p.knownRing), cap(p.knownRing), p.knownNext, live)
	}
	for i := range live { // kept, oldest first
		if k := knownKey(hash(burst + i)); p.knownRing[i] != k || p.known[k] != 200 {
			t.Fatalf("ring[%d] is not envelope %d (expiry %d)", i, burst+i, p.known[k])
		}
	}
	// Small sets are left as they are (nothing to gain).
	q := &Peer{known: make(map[uint64]uint32)}
	for i := range knownCompactMin - 1 {
		q.addKnownLocked(hash(i), 100)
	}
	q.expireKnown(150)
	if len(q.known) != 0 || len(q.knownRing) != knownCompactMin-1 {
		t.Fatalf("small set: known %d, ring %d", len(q.known), len(q.knownRing))
	}
	// The bound holds, evicting the oldest; after a wrap, compaction keeps the order.
	r := &Peer{known: make(map[uint64]uint32)}
	for i := range maxKnown + 10 {
		exp := uint32(100)
		if i >= maxKnown+10-live {
			exp = 200
		}
		r.addKnownLocked(hash(i), exp)
	}
	if len(r.known) != maxKnown || len(r.knownRing) != maxKnown || r.knownNext != 10 {
		t.Fatalf("full set: known %d, ring %d, next %d", len(r.known), len(r.knownRing), r.knownNext)
	}
	if _, ok := r.known[knownKey(hash(0))]; ok {
		t.Fatal("the oldest entry was not evicted")
	}
	r.expireKnown(150)
	if len(r.known) != live || len(r.knownRing) != live {
		t.Fatalf("after expiry: known %d, ring %d", len(r.known), len(r.knownRing))
	}
	for i := range live {
		if r.knownRing[i] != knownKey(hash(maxKnown+10-live+i)) {
			t.Fatalf("ring[%d] out of order after the wrap", i)
		}
	}
}
