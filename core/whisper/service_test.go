package whisper

import (
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

func subscribe(t testing.TB, s *Service, name string) *Subscription {
	t.Helper()
	sub, err := s.Subscribe(Filter{Topics: []Topic{TopicFromName(name)}, SymKey: symKeyOf(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Unsubscribe)
	return sub
}

// noMore checks that nothing else arrived on sub, once a later marker message has: the
// marker travels behind everything sent before it.
func noMore(t *testing.T, sub *Subscription) {
	t.Helper()
	select {
	case m := <-sub.C():
		t.Fatalf("unexpected message %q", m.Payload)
	default:
	}
}

func TestService_gossipsBetweenPeersExactlyOnce(t *testing.T) {
	a, b := startService(t, Config{}), startService(t, Config{})
	connect(t, a, b)
	subA, subB := subscribe(t, a, "status"), subscribe(t, b, "status")

	env := testEnvelope(t, "status", "hello", 0.002, 15, time.Now())
	if err := a.Send(env); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*Subscription{subA, subB} {
		m := receive(t, sub)
		if string(m.Payload) != "hello" || !m.Signed() || m.EnvelopeHash != env.Hash() {
			t.Fatalf("got %q signed=%v hash=%x", m.Payload, m.Signed(), m.EnvelopeHash)
		}
	}
	// Sending it again, from either side, is a duplicate: nobody delivers it twice.
	if err := b.Send(env); err != nil {
		t.Fatal(err)
	}
	marker := testEnvelope(t, "status", "marker", 0.002, 15, time.Now())
	if err := b.Send(marker); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, subA); string(m.Payload) != "marker" {
		t.Fatalf("got %q, want the marker", m.Payload)
	}
	if m := receive(t, subB); string(m.Payload) != "marker" {
		t.Fatalf("got %q, want the marker", m.Payload)
	}
	noMore(t, subA)
	noMore(t, subB)
	if st := b.Stats(); st.Duplicates != 1 || st.Received != 2 {
		t.Fatalf("b stats %+v, want 2 received and 1 duplicate", st)
	}
	// a sent b two envelopes and b sent a none back: b had learned them from a or sent
	// the marker, which a had not seen.
	if pa := a.Peers()[0]; pa.Sent != 1 || pa.Received != 1 {
		t.Fatalf("a's view of b: %+v", pa)
	}
}

func TestService_honoursPeerPoWRequirement(t *testing.T) {
	a, b := startService(t, Config{}), startService(t, Config{})
	connect(t, a, b)
	subB := subscribe(t, b, "status")
	if err := b.SetMinPoW(0.5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to learn b's PoW", func() bool { return a.Peers()[0].PoW == 0.5 })

	low := testEnvelope(t, "status", "low", 0.002, 15, time.Now())
	low = lowPoW(t, low, 0.5)
	if err := a.Send(low); err != nil {
		t.Fatal(err)
	}
	high := testEnvelope(t, "status", "high", 0.6, 15, time.Now())
	if err := a.Send(high); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, subB); string(m.Payload) != "high" {
		t.Fatalf("b got %q first, want only the envelope meeting its PoW", m.Payload)
	}
	noMore(t, subB)
	if len(b.Peers()) != 1 || b.Stats().Rejected != 0 {
		t.Fatalf("b rejected something or dropped a: %+v", b.Stats())
	}
}

func TestService_honoursPeerBloom(t *testing.T) {
	a, b := startService(t, Config{}), startService(t, Config{})
	connect(t, a, b)
	subB := subscribe(t, b, "wanted")
	subscribe(t, b, "unwanted")
	b.SetBloom(BloomOf(TopicFromName("wanted")))
	waitFor(t, "a to learn b's bloom", func() bool { return !a.Peers()[0].FullNode })

	if err := a.Send(testEnvelope(t, "unwanted", "no", 0.002, 15, time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(testEnvelope(t, "wanted", "yes", 0.002, 15, time.Now())); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, subB); string(m.Payload) != "yes" {
		t.Fatalf("b got %q", m.Payload)
	}
	if b.Stats().Received != 1 || b.Stats().Rejected != 0 {
		t.Fatalf("b stats %+v: the unwanted topic must not have been sent", b.Stats())
	}
	// Widening the bloom again makes a send what b skipped, still in a's pool.
	b.SetBloom(FullBloom())
	waitFor(t, "b to receive the pooled envelope", func() bool { return b.Stats().Received == 2 })
}

func TestService_settingChangeTolerance(t *testing.T) {
	// The expiry loop reads the clock too: the test moves it atomically.
	var nowNs atomic.Int64
	nowNs.Store(time.Unix(1_700_000_000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, nowNs.Load()) }
	s := startService(t, Config{MinPoW: 0.001, Clock: clock})
	env := lowPoW(t, testEnvelope(t, "status", "x", 0.002, 15, clock()), 0.5)
	if err := s.SetMinPoW(0.5); err != nil {
		t.Fatal(err)
	}
	// Within 10 s the old requirement still admits the envelope...
	if env.PoW() >= 0.001 {
		if _, _, err := s.ingest(env, nil); err != nil {
			t.Fatalf("within the tolerance: %v", err)
		}
	}
	// ...after it, the new one rejects a fresh one.
	nowNs.Add(int64(11 * time.Second))
	env2 := lowPoW(t, testEnvelope(t, "status", "y", 0.002, 15, clock()), 0.5)
	if _, _, err := s.ingest(env2, nil); !errors.Is(err, ErrPoWTooLow) {
		t.Fatalf("after the tolerance: %v, want ErrPoWTooLow", err)
	}
}

func TestService_expiredEnvelopesAreNotForwarded(t *testing.T) {
	now := time.Now()
	var offset atomic.Int64 // read by the service's expiry loop
	clock := func() time.Time { return now.Add(time.Duration(offset.Load())) }
	a := startService(t, Config{Clock: clock})
	env := testEnvelope(t, "status", "old", 0.002, 2, now)
	if err := a.Send(env); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(5 * time.Second))
	if n := a.pool.expire(clock().Unix()); n != 1 {
		t.Fatalf("expired %d envelopes, want 1", n)
	}
	b := startService(t, Config{})
	connect(t, a, b)
	subB := subscribe(t, b, "status")
	fresh := testEnvelope(t, "status", "fresh", 0.002, 60, clock())
	if err := a.Send(fresh); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, subB); string(m.Payload) != "fresh" {
		t.Fatalf("b got %q; the expired envelope was forwarded", m.Payload)
	}
	noMore(t, subB)
}

func TestService_badInputDisconnects(t *testing.T) {
	// good must still be in the pool when the last check reads it, however long the
	// cases took (up to 10 s each on a loaded machine): the longest TTL accepted. The
	// envelopes dated off now are made when sent, so that the test's own duration does
	// not move them across the 10 s allowance or the 20 s of "very old".
	good := testEnvelope(t, "status", "ok", 0.002, DefaultMaxTTL, time.Now())
	status := func(items ...any) []byte {
		b, err := rlp.EncodeToBytes(items)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name   string
		code   uint64 // first packet's code
		status []byte
		then   func(r *rawPeer)
		want   error
	}{
		{"status not a list", statusCode, []byte{0x05}, nil, ErrHandshake},
		{"wrong version", statusCode, status(uint64(5), math.Float64bits(0)), nil, ErrVersion},
		{"NaN PoW in status", statusCode, status(uint64(6), math.Float64bits(math.NaN())), nil, ErrHandshake},
		{"bloom of 3 bytes", statusCode, status(uint64(6), uint64(0), []byte{1, 2, 3}), nil, ErrHandshake},
		{"messages before status", messagesCode, []byte{0xc0}, nil, ErrHandshake},
		{"oversize packet", statusCode, nil, func(r *rawPeer) { r.send(messagesCode, make([]byte, 4097)) }, ErrPacketTooLarge},
		{"garbage envelope list", statusCode, nil, func(r *rawPeer) { r.send(messagesCode, []byte{0xc3, 0x01, 0x02, 0x03}) }, ErrMalformedEnvelope},
		{"not a list", statusCode, nil, func(r *rawPeer) { r.send(messagesCode, []byte{0x83, 1, 2, 3}) }, ErrMalformedPacket},
		{"bloom of 63 bytes", statusCode, nil, func(r *rawPeer) {
			b, _ := rlp.EncodeToBytes(make([]byte, 63))
			r.send(bloomFilterExCode, b)
		}, ErrBloomSize},
		{"infinite PoW requirement", statusCode, nil, func(r *rawPeer) { r.send(powRequirementCode, powBits(math.Inf(1))) }, ErrMalformedPacket},
		{"low PoW envelope", statusCode, nil, func(r *rawPeer) { r.sendEnvelopes(good, lowPoW(t, good, 0.001)) }, ErrPoWTooLow},
		{"envelope from the future", statusCode, nil, func(r *rawPeer) {
			r.sendEnvelopes(testEnvelope(t, "status", "f", 0.002, 15, time.Now().Add(time.Minute)))
		}, ErrFromFuture},
		{"very old envelope", statusCode, nil, func(r *rawPeer) {
			r.sendEnvelopes(testEnvelope(t, "status", "o", 0.002, 15, time.Now().Add(-time.Minute)))
		}, ErrVeryOld},
	}
	s := startService(t, Config{MinPoW: 0.001, MaxMessageSize: 4096})
	sub := subscribe(t, s, "status")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRawCode(t, s, tc.code, tc.status)
			if tc.then != nil {
				r.next(statusCode)
				tc.then(r)
			}
			if err := r.result(); !errors.Is(err, tc.want) {
				t.Fatalf("disconnect reason %v, want %v", err, tc.want)
			}
		})
	}
	// Still healthy: the good envelope of the low-PoW case was delivered once, and a new
	// peer is served.
	if m := receive(t, sub); string(m.Payload) != "ok" {
		t.Fatalf("got %q", m.Payload)
	}
	r := dialRaw(t, s, nil)
	r.next(statusCode)
	r.next(messagesCode) // the pooled good envelope
	if !r.alive() {
		t.Fatal("healthy peer disconnected")
	}
}

func TestService_duplicateFloodIsHarmless(t *testing.T) {
	s := startService(t, Config{Limits: PeerLimits{PacketsPerSecond: 1e6, PacketBurst: 1e6}})
	sub := subscribe(t, s, "status")
	env := testEnvelope(t, "status", "once", 0.002, 15, time.Now())
	r := dialRaw(t, s, nil)
	r.next(statusCode)
	batch := make([]*Envelope, 100)
	for i := range batch {
		batch[i] = env
	}
	for range 50 {
		r.sendEnvelopes(batch...)
	}
	waitFor(t, "all duplicates processed", func() bool { return s.Stats().Duplicates == 4999 })
	if m := receive(t, sub); string(m.Payload) != "once" {
		t.Fatalf("got %q", m.Payload)
	}
	noMore(t, sub)
	if !r.alive() || s.Stats().Envelopes != 1 {
		t.Fatalf("alive=%v stats=%+v", r.alive(), s.Stats())
	}
}

func TestService_rateLimitDropsExcessPackets(t *testing.T) {
	s := startService(t, Config{Limits: PeerLimits{PacketsPerSecond: 0.001, PacketBurst: 3}})
	r := dialRaw(t, s, nil)
	r.next(statusCode)
	for i := range 10 {
		r.sendEnvelopes(testEnvelope(t, "status", string(rune('a'+i)), 0.002, 15, time.Now()))
	}
	waitFor(t, "drops counted", func() bool { return s.Peers()[0].Dropped == 7 })
	if got := s.Stats().Received; got != 3 {
		t.Fatalf("received %d envelopes, want the 3 within the burst", got)
	}
	if !r.alive() {
		t.Fatal("rate-limited peer was disconnected; the policy is to drop")
	}
}

func TestService_softTimeErrorsAndConfirmations(t *testing.T) {
	s := startService(t, Config{SoftTimeErrors: true, Confirmations: true})
	r := dialRaw(t, s, nil)
	st, err := DecodeStatus(r.next(statusCode).body)
	if err != nil || !st.Confirmations {
		t.Fatalf("status %+v, %v: confirmations not advertised", st, err)
	}
	future := testEnvelope(t, "status", "f", 0.002, 15, time.Now().Add(time.Minute))
	body, _ := rlp.EncodeToBytes([]*Envelope{future})
	r.send(messagesCode, body)

	var resp struct {
		Version  uint
		Response struct {
			Hash   [32]byte
			Errors []struct {
				Hash        [32]byte
				Code        uint
				Description string
			}
		}
	}
	if err := rlp.DecodeBytes(r.next(messageResponseCode).body, &resp); err != nil {
		t.Fatal(err)
	}
	batch := crypto.Keccak256Hash(body)
	if resp.Version != 1 || resp.Response.Hash != batch || len(resp.Response.Errors) != 1 ||
		resp.Response.Errors[0].Hash != future.Hash() || resp.Response.Errors[0].Code != envelopeTimeErrorCode ||
		resp.Response.Errors[0].Description != "envelope from future" {
		t.Fatalf("message response %+v", resp)
	}
	var ack [32]byte
	if err := rlp.DecodeBytes(r.next(batchAcknowledgedCode).body, &ack); err != nil || ack != batch {
		t.Fatalf("batch ack %x, %v; want %x", ack, err, batch)
	}
	if !r.alive() {
		t.Fatal("soft time errors must not disconnect")
	}
}

func TestService_directMessagesOnlyFromTrustedPeers(t *testing.T) {
	s := startService(t, Config{})
	name := "inbox"
	direct, err := s.Subscribe(Filter{Topics: []Topic{TopicFromName(name)}, SymKey: symKeyOf(t, name), AllowP2P: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Unsubscribe)
	gossipOnly := subscribe(t, s, name)
	// Long expired: direct delivery skips the acceptance rules (mailserver history).
	old := testEnvelope(t, name, "history", 0, 10, time.Now().Add(-time.Hour))
	old2 := testEnvelope(t, name, "history 2", 0, 10, time.Now().Add(-time.Hour))

	untrusted := dialRaw(t, s, nil)
	untrusted.next(statusCode)
	untrusted.send(p2pMessageCode, old.Bytes())

	trusted := dialRaw(t, s, nil)
	trusted.next(statusCode)
	s.MarkTrusted(trusted.id)
	trusted.send(p2pMessageCode, old.Bytes()) // geth: one envelope
	list, _ := rlp.EncodeToBytes([]*Envelope{old2})
	trusted.send(p2pMessageCode, list) // status-go: a list

	// Workers decrypt in parallel, so the two may arrive in either order.
	got := map[string]bool{string(receive(t, direct).Payload): true, string(receive(t, direct).Payload): true}
	if !got["history"] || !got["history 2"] {
		t.Fatalf("got %v", got)
	}
	noMore(t, direct)
	noMore(t, gossipOnly)
	if !untrusted.alive() || !trusted.alive() || s.Stats().Envelopes != 0 {
		t.Fatalf("direct messages must be neither pooled nor fatal: %+v", s.Stats())
	}
}

// hookRecorder implements the mailserver hooks and records what it gets.
type hookRecorder struct {
	archived    chan *Envelope
	requests    chan []byte
	completions chan []byte
}

func newHookRecorder() *hookRecorder {
	return &hookRecorder{archived: make(chan *Envelope, 16), requests: make(chan []byte, 16), completions: make(chan []byte, 16)}
}

func (h *hookRecorder) Archive(env *Envelope) { h.archived <- env }
func (h *hookRecorder) HandleRequest(p *Peer, payload []byte) error {
	h.requests <- payload
	return nil
}
func (h *hookRecorder) HandleRequestComplete(p *Peer, payload []byte) { h.completions <- payload }

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("hook not called within 10 s")
		var zero T
		return zero
	}
}

func TestService_mailserverHooks(t *testing.T) {
	h := newHookRecorder()
	s := startService(t, Config{Archiver: h, Requests: h, Completions: h})
	env := testEnvelope(t, "status", "archive me", 0.002, 15, time.Now())

	r := dialRaw(t, s, nil)
	r.next(statusCode)
	r.sendEnvelopes(env, env) // the duplicate is not archived twice
	if got := recv(t, h.archived); got.Hash() != env.Hash() {
		t.Fatalf("archived %x", got.Hash())
	}
	r.send(p2pRequestCode, env.Bytes())
	if got := recv(t, h.requests); string(got) != string(env.Bytes()) {
		t.Fatalf("request payload %x", got)
	}
	// Request-complete packets count only from trusted peers.
	r.send(p2pRequestCompleteCode, []byte{0x83, 1, 2, 3})
	s.MarkTrusted(r.id)
	r.send(p2pRequestCompleteCode, []byte{0x83, 4, 5, 6})
	if got := recv(t, h.completions); string(got) != string([]byte{0x83, 4, 5, 6}) {
		t.Fatalf("completion %x, want the one sent after trusting", got)
	}
	select {
	case e := <-h.archived:
		t.Fatalf("archived twice: %x", e.Hash())
	case c := <-h.completions:
		t.Fatalf("extra completion %x", c)
	default:
	}
	if !r.alive() {
		t.Fatal("peer dropped")
	}
}

// A peer that advertises status-go rate limits below our packet budget still receives
// everything: eager forwarding waits for its budget, the periodic cycle sends the rest.
func TestService_eagerForwardingWithinAdvertisedLimits(t *testing.T) {
	s := startService(t, Config{})
	status, err := EncodeStatus(Status{Bloom: FullBloom(), RateLimits: &RateLimits{IP: 1, PeerID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, s, status)
	r.next(statusCode)
	waitFor(t, "the peer", func() bool { return len(s.Peers()) == 1 })
	want := map[[32]byte]bool{}
	for i := range 20 {
		env := testEnvelope(t, "status", string(rune('a'+i)), 0.002, 15, time.Now())
		want[env.Hash()] = true
		if err := s.Send(env); err != nil {
			t.Fatal(err)
		}
	}
	for len(want) > 0 {
		envs, err := decodeEnvelopeList(r.next(messagesCode).body)
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range envs {
			if !want[env.Hash()] {
				t.Fatalf("unexpected or repeated envelope %s", env)
			}
			delete(want, env.Hash())
		}
	}
	if info := s.Peers()[0]; info.Sent != 20 || info.Packets > 20 {
		t.Fatalf("peer info %+v", info)
	}
}

// A filter with OmitLocal is never handed (so never opens) what the node Sends itself,
// and gets a peer's envelopes like any other filter; a filter without it gets both.
func TestService_omitLocal(t *testing.T) {
	s := startService(t, Config{})
	name := "chat"
	omit, err := s.Subscribe(Filter{Topics: []Topic{TopicFromName(name)}, SymKey: symKeyOf(t, name), OmitLocal: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(omit.Unsubscribe)
	all := subscribe(t, s, name)

	if err := s.Send(testEnvelope(t, name, "ours", 0, 10, time.Now())); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, all); string(m.Payload) != "ours" {
		t.Fatalf("got %q, want our own message", m.Payload)
	}
	peer := dialRaw(t, s, nil)
	peer.next(statusCode)
	list, err := rlp.EncodeToBytes([]*Envelope{testEnvelope(t, name, "theirs", 0, 10, time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	peer.send(messagesCode, list)
	// One worker hands an envelope to its filters in the order they were installed, so
	// had omit been handed ours, it would have had it before all did: first.
	if m := receive(t, omit); string(m.Payload) != "theirs" {
		t.Fatalf("OmitLocal filter got %q first, want the peer's message", m.Payload)
	}
	if m := receive(t, all); string(m.Payload) != "theirs" {
		t.Fatalf("got %q, want the peer's message", m.Payload)
	}
}
