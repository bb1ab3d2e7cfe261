package waku

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

var (
	topicA = whisper.TopicFromName("statusgate-a")
	topicB = whisper.TopicFromName("statusgate-b")
)

// TestHandshake_ours: what we send in both versions: every option, the bloom filter of
// a full node, our inbound limits as rate limits; a light node (TopicBloom) sends its
// topic interest instead of the bloom filter.
func TestHandshake_ours(t *testing.T) {
	s := startService(t, whisper.Config{MinPoW: 0.002, Confirmations: true})
	for _, v := range []uint{V1, V0} {
		r := dialWaku(t, s, v, Options{})
		got, err := DecodeStatus(r.next(0).body, v)
		if err != nil {
			t.Fatal(err)
		}
		want := Options{PoW: ptr(0.002), BloomFilter: ptr(whisper.FullBloom()), LightNode: ptr(false), Confirmations: ptr(true),
			PacketLimits: &whisper.RateLimits{PeerID: 100}, ByteLimits: &whisper.RateLimits{PeerID: 4 << 20}}
		if v == V0 {
			want.ByteLimits = nil
		}
		if !equalOptions(got, want) {
			t.Errorf("waku/%d: we sent %+v, want %+v", v, got, want)
		}
	}
	light := startService(t, whisper.Config{TopicBloom: true, LightNode: true})
	r := dialWaku(t, light, V1, Options{})
	got, err := DecodeStatus(r.next(0).body, V1)
	if err != nil || !got.HasTopics || len(got.TopicInterest) != 0 || got.BloomFilter != nil || !*got.LightNode {
		t.Fatalf("light node sent %+v (%v), want an empty topic interest and no bloom", got, err)
	}
}

func equalOptions(a, b Options) bool {
	ab, _ := EncodeOptions(a, V1)
	bb, _ := EncodeOptions(b, V1)
	return string(ab) == string(bb) && a.HasTopics == b.HasTopics
}

// TestHandshake_defaults: a peer that leaves every option out gets status-go's
// defaults; one that sends them has them, in either order and version.
func TestHandshake_defaults(t *testing.T) {
	s := startService(t, whisper.Config{})
	r := dialWaku(t, s, V1, Options{})
	p := peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true })
	if p.PoW != DefaultMinPoW || !p.FullNode || p.Topics != -1 || p.LightNode || p.Confirmations ||
		*p.RateLimits != (whisper.RateLimits{}) || *p.ByteLimits != (whisper.RateLimits{}) || p.Protocol != "waku/1" {
		t.Fatalf("defaults: %+v", p)
	}
	bloom := whisper.BloomOf(topicA)
	r0 := dialWaku(t, s, V0, Options{PoW: ptr(0.5), BloomFilter: &bloom, LightNode: ptr(true), Confirmations: ptr(true),
		PacketLimits: &whisper.RateLimits{IP: 7, PeerID: 3}})
	p = peerInfo(t, s, r0.id, func(whisper.PeerInfo) bool { return true })
	if p.PoW != 0.5 || p.FullNode || !p.LightNode || !p.Confirmations || *p.RateLimits != (whisper.RateLimits{IP: 7, PeerID: 3}) ||
		p.Protocol != "waku/0" {
		t.Fatalf("given: %+v", p)
	}
	r1 := dialWaku(t, s, V1, Options{TopicInterest: []whisper.Topic{topicA}, HasTopics: true, ByteLimits: &whisper.RateLimits{PeerID: 9}})
	p = peerInfo(t, s, r1.id, func(whisper.PeerInfo) bool { return true })
	if p.Topics != 1 || p.FullNode || *p.ByteLimits != (whisper.RateLimits{PeerID: 9}) {
		t.Fatalf("topic interest: %+v", p)
	}
}

// TestHandshake_badInput: every malformed handshake ends the connection with an error
// wrapping whisper.ErrHandshake and the typed error, as a malformed shh/6 status does;
// a Status Update before the handshake too.
func TestHandshake_badInput(t *testing.T) {
	s := startService(t, whisper.Config{})
	pow := math.Float64bits(0.5)
	tooMany := make([][]byte, whisper.MaxTopicInterest+1)
	for i, tp := range topics(len(tooMany)) {
		tooMany[i] = tp[:]
	}
	cases := []struct {
		name string
		v    uint
		code uint64
		body []byte
		want error
	}{
		{"duplicate key", V1, 0, enc(t, []any{[]any{0, pow}, []any{2, true}, []any{0, pow}}), ErrDuplicateOption},
		{"mistyped key", V1, 0, enc(t, []any{[]any{[]any{0}, pow}}), ErrOptionType},
		{"mistyped value", V1, 0, enc(t, []any{[]any{2, []any{true}}}), ErrOptionType},
		{"10,001 topics", V1, 0, enc(t, []any{[]any{5, tooMany}}), ErrTooManyTopics},
		{"NaN PoW", V1, 0, enc(t, []any{[]any{0, math.Float64bits(math.NaN())}}), ErrInvalidPoW},
		{"options nested wrongly", V1, 0, enc(t, []any{[]any{[]any{0, pow}}}), ErrOptionList},
		{"waku/0 options without the version", V0, 0, enc(t, []any{[]any{"0", pow}}), ErrOptionType},
		{"waku/0 version 1", V0, 0, enc(t, []any{1, []any{}}), ErrVersion},
		{"Status Update before the handshake", V1, statusUpdateCode, enc(t, []any{[]any{0, pow}}), whisper.ErrHandshake},
		{"a shh/6 status on waku/1", V1, 0, enc(t, []any{6, pow, whisper.FullBloom()}), ErrOptionList},
	}
	for _, tc := range cases {
		r := dial(t, s, Wire(tc.v), whisper.WireConfig{}, tc.code, tc.body)
		if err := r.result(); !errorsIs(err, whisper.ErrHandshake, tc.want) {
			t.Errorf("%s: %v, want %v and %v", tc.name, err, whisper.ErrHandshake, tc.want)
		}
	}
	if n := len(s.Peers()); n != 0 {
		t.Fatalf("%d peers left", n)
	}
}

// TestStatusUpdate: a peer's Status Update (code 22) changes what we forward to it:
// its topic interest (precedence over its bloom; empty wants nothing) and its PoW; a
// malformed update disconnects it.
func TestStatusUpdate(t *testing.T) {
	s := startService(t, whisper.Config{})
	r := dialWaku(t, s, V1, Options{PoW: ptr(0.0)})
	peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true })
	update := func(o Options) {
		t.Helper()
		body, err := EncodeOptions(o, V1)
		if err != nil {
			t.Fatal(err)
		}
		r.send(statusUpdateCode, body)
	}
	update(Options{TopicInterest: []whisper.Topic{topicA}, HasTopics: true})
	peerInfo(t, s, r.id, func(p whisper.PeerInfo) bool { return p.Topics == 1 })
	// Sent in this order: a B envelope forwarded would arrive before the A one.
	b1, a1 := envelope(t, topicB, 100, 60, 0), envelope(t, topicA, 100, 60, 0)
	for _, e := range []*whisper.Envelope{b1, a1} {
		if err := s.Send(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.envelopes(); len(got) != 1 || got[0].Hash() != a1.Hash() {
		t.Fatalf("with topic interest {A}: got %v, want only %s", got, a1)
	}
	// The PoW requirement: an envelope below it is held back.
	update(Options{PoW: ptr(1.0)})
	peerInfo(t, s, r.id, func(p whisper.PeerInfo) bool { return p.PoW == 1 })
	low, high := lowEnvelope(t, topicA, 100, 60, 1), envelope(t, topicA, 100, 60, 2)
	for _, e := range []*whisper.Envelope{low, high} {
		if err := s.Send(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.envelopes(); len(got) != 1 || got[0].Hash() != high.Hash() {
		t.Fatalf("with PoW 1: got %v, want only %s", got, high)
	}
	// An empty topic interest wants nothing; a bloom filter replaces it: B, and the low
	// envelopes once the PoW is back, arrive then.
	update(Options{TopicInterest: []whisper.Topic{}, HasTopics: true, PoW: ptr(0.0)})
	peerInfo(t, s, r.id, func(p whisper.PeerInfo) bool { return p.Topics == 0 && p.PoW == 0 })
	full := whisper.FullBloom()
	update(Options{BloomFilter: &full})
	peerInfo(t, s, r.id, func(p whisper.PeerInfo) bool { return p.FullNode && p.Topics == -1 })
	var got []whisper.Topic
	for len(got) < 2 {
		for _, e := range r.envelopes() {
			got = append(got, e.Topic())
		}
	}
	if !slices.Contains(got, topicB) || len(got) != 2 {
		t.Fatalf("after the bloom filter: topics %v, want b1 and the low envelope", got)
	}
	// A malformed update disconnects.
	r.send(statusUpdateCode, enc(t, []any{[]any{0, math.Float64bits(math.Inf(-1))}}))
	if err := r.result(); !errorsIs(err, whisper.ErrMalformedPacket, ErrInvalidPoW) {
		t.Fatalf("malformed update: %v", err)
	}
}

// TestLight_topicInterest: a light node (TopicBloom) advertises exactly the topics of
// its filters, to Waku peers as a topic interest in Status Updates and to shh/6 peers as
// their bloom filter; an envelope outside the interest from a Waku peer is refused
// (counted, reported, the peer kept).
func TestLight_topicInterest(t *testing.T) {
	s := startService(t, whisper.Config{TopicBloom: true, Confirmations: true})
	r := dialWaku(t, s, V1, Options{})
	peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true })
	key, err := whisper.NewSymKey(make([]byte, 32))
	if err != nil {
		key, err = whisper.SymKeyFromPassword("statusgate")
	}
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Subscribe(whisper.Filter{Topics: []whisper.Topic{topicB, topicA}, SymKey: key})
	if err != nil {
		t.Fatal(err)
	}
	o, err := DecodeOptions(r.next(statusUpdateCode).body, V1)
	want := []whisper.Topic{topicA, topicB}
	slices.SortFunc(want, func(a, b whisper.Topic) int { return slices.Compare(a[:], b[:]) })
	if err != nil || !o.HasTopics || !slices.Equal(o.TopicInterest, want) || o.BloomFilter != nil || o.PoW != nil {
		t.Fatalf("update %+v (%v), want topic interest %v only", o, err, want)
	}
	if got := s.Topics(); !slices.Equal(got, want) {
		t.Fatalf("Topics() = %v", got)
	}
	// A topic outside the interest whose bloom bits are A's and B's: it passes the bloom
	// check, so only the topic interest refuses it.
	other := envelope(t, lookalike(t, topicA, topicB), 50, 60, 0)
	r.sendEnvelopes(other)
	resp := r.next(12)
	var mr struct {
		Version  uint
		Response struct {
			Hash   [32]byte
			Errors []struct {
				Hash [32]byte
				Code uint
				Desc string
			}
		}
	}
	if err := rlp.DecodeBytes(resp.body, &mr); err != nil || len(mr.Response.Errors) != 1 || mr.Response.Errors[0].Code != envelopeOtherErrorCode {
		t.Fatalf("message response %+v (%v), want one error with code %d", mr, err, envelopeOtherErrorCode)
	}
	r.send(99, nil) // read once the code-1 packet was handled
	if st := s.Stats(); st.TopicMismatch != 1 {
		t.Fatalf("topic mismatches %d, want 1", st.TopicMismatch)
	}
	sub.Unsubscribe()
	o, err = DecodeOptions(r.next(statusUpdateCode).body, V1)
	if err != nil || !o.HasTopics || len(o.TopicInterest) != 0 {
		t.Fatalf("after unsubscribing: %+v (%v), want an empty topic interest", o, err)
	}
}

// TestLenient: a Waku peer whose envelope breaks a rule (PoW too low) is kept, as
// status-go keeps it, and told so in the message response with status-go's Waku error
// code; the envelope is neither pooled nor forwarded.
func TestLenient(t *testing.T) {
	s := startService(t, whisper.Config{MinPoW: 1, Confirmations: true})
	r := dialWaku(t, s, V1, Options{})
	low := lowEnvelope(t, topicA, 50, 60, 1)
	r.sendEnvelopes(low)
	body := r.next(12).body
	if want := envelopeOtherErrorCode; !containsCode(t, body, uint(want)) {
		t.Fatalf("message response %x lacks error code %d", body, want)
	}
	r.send(99, nil)
	p := peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true })
	if p.Rejected != 1 || p.Received != 0 || s.Stats().Envelopes != 0 {
		t.Fatalf("peer %+v, pool %d", p, s.Stats().Envelopes)
	}
	// Still connected: a good envelope is taken.
	good := envelope(t, topicA, 50, 60, 1)
	r.sendEnvelopes(good)
	r.next(12)
	r.send(99, nil)
	if p := peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true }); p.Received != 1 {
		t.Fatalf("after a good envelope: %+v", p)
	}
}

func containsCode(t *testing.T, body []byte, code uint) bool {
	t.Helper()
	var mr struct {
		Version  uint
		Response struct {
			Hash   [32]byte
			Errors []struct {
				Hash [32]byte
				Code uint
				Desc string
			}
		}
	}
	if err := rlp.DecodeBytes(body, &mr); err != nil {
		t.Fatal(err)
	}
	for _, e := range mr.Response.Errors {
		if e.Code == code {
			return true
		}
	}
	return false
}

// TestBridge_generations: one service, a shh/6 peer and a Waku peer of each version: an
// envelope from each reaches the others once, and Stats counts what came in per wire
// and what was relayed between them.
func TestBridge_generations(t *testing.T) {
	s := startService(t, whisper.Config{})
	shhStatus, err := whisper.EncodeStatus(whisper.Status{Bloom: whisper.FullBloom()})
	if err != nil {
		t.Fatal(err)
	}
	shh := dial(t, s, whisper.ShhWire(), whisper.WireConfig{}, 0, shhStatus)
	w1 := dialWaku(t, s, V1, Options{PoW: ptr(0.0)})
	w0 := dialWaku(t, s, V0, Options{PoW: ptr(0.0)})
	for _, r := range []*rawPeer{shh, w1, w0} {
		peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true })
	}
	fromShh, fromWaku := envelope(t, topicA, 80, 60, 0), envelope(t, topicB, 80, 60, 0)
	shh.sendEnvelopes(fromShh)
	for _, r := range []*rawPeer{w1, w0} {
		if got := r.envelopes(); len(got) != 1 || got[0].Hash() != fromShh.Hash() {
			t.Fatalf("waku peer got %v, want %s", got, fromShh)
		}
	}
	w1.sendEnvelopes(fromWaku)
	for _, r := range []*rawPeer{shh, w0} {
		if got := r.envelopes(); len(got) != 1 || got[0].Hash() != fromWaku.Hash() {
			t.Fatalf("peer got %v, want %s", got, fromWaku)
		}
	}
	st := s.Stats()
	byName := map[string]whisper.ProtocolStats{}
	for _, p := range st.Protocols {
		byName[p.Name] = p
	}
	if byName["shh"].Received != 1 || byName["waku"].Received != 1 || byName["waku"].SentFrom["shh"] != 2 ||
		byName["shh"].SentFrom["waku"] != 1 || byName["waku"].SentFrom["waku"] != 1 || byName["shh"].Peers != 1 || byName["waku"].Peers != 2 {
		t.Fatalf("stats %+v", st.Protocols)
	}
}

// TestRateLimits_honoured: a peer that advertises packet and byte limits never gets
// more from us: every code-1 packet fits its byte limit, and over the whole burst we
// stay within its token bucket (its rate over the elapsed time plus one second's
// worth). Every envelope still arrives.
func TestRateLimits_honoured(t *testing.T) {
	const perSecond, bytesPerSecond, n = 4, 1500, 12
	s := startService(t, whisper.Config{})
	r := dialWaku(t, s, V1, Options{PoW: ptr(0.0), PacketLimits: &whisper.RateLimits{IP: 10, PeerID: perSecond},
		ByteLimits: &whisper.RateLimits{PeerID: bytesPerSecond}})
	peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true })
	start := time.Now()
	for range n {
		if err := s.Send(envelope(t, topicA, 200, 60, 0)); err != nil {
			t.Fatal(err)
		}
	}
	got, packets, bytes := 0, 0, 0
	var last time.Time
	for got < n {
		m := r.next(1)
		last = time.Now()
		var raws []rlp.RawValue
		if err := rlp.DecodeBytes(m.body, &raws); err != nil {
			t.Fatal(err)
		}
		if len(m.body) > bytesPerSecond {
			t.Fatalf("a packet of %d bytes, above the peer's %d B/s", len(m.body), bytesPerSecond)
		}
		got, packets, bytes = got+len(raws), packets+1, bytes+len(m.body)
	}
	elapsed := last.Sub(start).Seconds()
	if limit := perSecond * (elapsed + 1); float64(packets) > limit {
		t.Errorf("%d packets in %.2f s, above %d/s with a burst of %d", packets, elapsed, perSecond, perSecond)
	}
	if limit := bytesPerSecond * (elapsed + 1); float64(bytes) > limit {
		t.Errorf("%d bytes in %.2f s, above %d B/s with a burst of %d", bytes, elapsed, bytesPerSecond, bytesPerSecond)
	}
}

// TestRateLimits_enforced: our inbound limits (WireConfig.Limits) are advertised in the
// handshake and enforced: packets over them are dropped and counted.
func TestRateLimits_enforced(t *testing.T) {
	s := startService(t, whisper.Config{})
	body, _ := EncodeStatus(Options{}, V1)
	r := dial(t, s, Wire(V1), whisper.WireConfig{Limits: whisper.PeerLimits{PacketsPerSecond: 5, PacketBurst: 5, BytesPerSecond: 1 << 20}}, 0, body)
	ours, err := DecodeStatus(r.next(0).body, V1)
	if err != nil || ours.PacketLimits.PeerID != 5 || ours.ByteLimits.PeerID != 1<<20 {
		t.Fatalf("advertised %+v (%v)", ours, err)
	}
	peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true })
	const n = 50
	start := time.Now()
	for range n {
		r.sendEnvelopes(envelope(t, topicA, 10, 60, 0))
	}
	r.send(99, nil) // read once the last code-1 packet was handled
	elapsed := time.Since(start).Seconds()
	p := peerInfo(t, s, r.id, func(whisper.PeerInfo) bool { return true })
	if p.Received+p.Dropped != n || float64(p.Received) > 5+5*elapsed+1 {
		t.Fatalf("received %d, dropped %d of %d in %.2f s (limit 5/s, burst 5)", p.Received, p.Dropped, n, elapsed)
	}
}

// lookalike returns a topic that is neither a nor b and whose bloom filter is within
// theirs: its three bloom indices taken from a's and b's.
func lookalike(t *testing.T, a, b whisper.Topic) whisper.Topic {
	t.Helper()
	both := whisper.BloomOf(a, b)
	src := [2]whisper.Topic{a, b}
	for mask := range 8 {
		var c whisper.Topic
		for i := range 3 {
			from := src[mask>>i&1]
			c[i] = from[i]
			c[3] |= from[3] & (1 << i)
		}
		for high := range 32 { // bits 3-7 of the last byte are free
			c[3] = c[3]&7 | byte(high<<3)
			if sample := c.Bloom(); c != a && c != b && both.Matches(&sample) {
				return c
			}
		}
	}
	t.Fatal("no lookalike topic")
	return whisper.Topic{}
}
