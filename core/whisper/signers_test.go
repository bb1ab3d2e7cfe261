package whisper

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestSigners_recoverOnce(t *testing.T) {
	key := keyOf(t, "alice")
	digest := crypto.Keccak256([]byte("hello"))
	sig, err := crypto.Sign(digest, key)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSigners(4)
	for i := range 3 {
		pub, err := s.Recover(digest, sig)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(&key.PublicKey) {
			t.Fatalf("recovery %d: wrong key", i)
		}
	}
	if st := s.Stats(); st.Recovered != 1 || st.Reused != 2 {
		t.Fatalf("stats %+v, want 1 recovered, 2 reused", st)
	}
	// The same signature over other bytes is another question, answered by libsecp256k1.
	other := crypto.Keccak256([]byte("hellO"))
	pub, err := s.Recover(other, sig)
	if err == nil && pub.Equal(&key.PublicKey) {
		t.Fatal("a signature over other bytes recovered the signer")
	}
	if st := s.Stats(); st.Recovered != 2 {
		t.Fatalf("stats %+v, want 2 recovered", st)
	}
}

func TestSigners_badSignatureNotRemembered(t *testing.T) {
	digest := crypto.Keccak256([]byte("hello"))
	sig := make([]byte, signatureLength) // r = 0: recovers no key
	s := NewSigners(4)
	for range 2 {
		if _, err := s.Recover(digest, sig); err == nil {
			t.Fatal("a zero signature recovered")
		}
	}
	if st := s.Stats(); st.Recovered != 2 || st.Reused != 0 {
		t.Fatalf("stats %+v, want every attempt recovered", st)
	}
}

// Sign remembers exactly what recovery returns for the signature it makes.
func TestSigners_signRemembersTheSigner(t *testing.T) {
	key := keyOf(t, "bob")
	s := NewSigners(4)
	digest := crypto.Keccak256([]byte("post"))
	sig, err := s.Sign(digest, key)
	if err != nil {
		t.Fatal(err)
	}
	want, err := crypto.SigToPub(digest, sig)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Recover(digest, sig)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) || !got.Equal(&key.PublicKey) {
		t.Fatal("the remembered signer is not the recovered one")
	}
	if st := s.Stats(); st.Recovered != 0 || st.Reused != 1 || st.Signed != 1 {
		t.Fatalf("stats %+v, want 0 recovered, 1 reused, 1 signed", st)
	}
	var none *Signers
	if _, err := none.Sign(digest, key); err != nil {
		t.Fatal(err)
	}
	if pub, err := none.Recover(digest, sig); err != nil || !pub.Equal(want) {
		t.Fatalf("nil Signers: %v", err)
	}
}

func TestSigners_bounded(t *testing.T) {
	key := keyOf(t, "alice")
	s := NewSigners(2)
	var digests, sigs [][]byte
	for i := range 3 {
		d := crypto.Keccak256([]byte{byte(i)})
		sig, err := crypto.Sign(d, key)
		if err != nil {
			t.Fatal(err)
		}
		digests, sigs = append(digests, d), append(sigs, sig)
		if _, err := s.Recover(d, sig); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.cache.Len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	if _, err := s.Recover(digests[0], sigs[0]); err != nil { // evicted: recovered again
		t.Fatal(err)
	}
	if st := s.Stats(); st.Recovered != 4 || st.Reused != 0 {
		t.Fatalf("stats %+v, want 4 recovered", st)
	}
}

// forgedEnvelope is a symmetric envelope for topic name whose framing is valid and whose
// signature (all zeros) recovers no key.
func forgedEnvelope(t testing.TB, name, payload string, now time.Time) *Envelope {
	t.Helper()
	pt := []byte{1 | signatureFlag, byte(len(payload))}
	pt = append(pt, payload...)
	pt = append(pt, bytes.Repeat([]byte{7}, 64)...)
	pt = append(pt, make([]byte, signatureLength)...)
	data, err := symKeyOf(t, name).encrypt(fixedRand(3), pt)
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnvelope(uint32(now.Unix())+50, 50, TopicFromName(name), data, 0)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// marker sends one envelope on the "status" topic through r and waits for sub to get
// it: with one worker, everything r sent before it was dispatched.
func marker(t *testing.T, r *rawPeer, sub *Subscription, text string) {
	t.Helper()
	r.sendEnvelopes(testEnvelope(t, "status", text, 0, 50, time.Now()))
	for {
		if m := receive(t, sub); string(m.Payload) == text {
			return
		}
	}
}

// TestService_recoveriesSaved counts the signer recoveries of a node's subscriptions
// (Service.Signers) for each way an envelope reaches it.
func TestService_recoveriesSaved(t *testing.T) {
	s := startService(t, Config{MinPoW: 0, Workers: 1})
	sub, err := s.Subscribe(Filter{Topics: []Topic{TopicFromName("status")}, SymKey: symKeyOf(t, "status"), AllowP2P: true})
	if err != nil {
		t.Fatal(err)
	}
	// Another key on the same topic: it cannot open the envelopes below, so it must
	// cause no recovery either.
	if _, err := s.Subscribe(Filter{Topics: []Topic{TopicFromName("status")}, SymKey: symKeyOf(t, "other")}); err != nil {
		t.Fatal(err)
	}
	// One at a time: RunPeer registers the wire again for each peer.
	r1 := dialRaw(t, s, nil)
	waitFor(t, "first peer", func() bool { return len(s.Peers()) == 1 })
	r2 := dialRaw(t, s, nil)
	s.MarkTrusted(r2.id)
	waitFor(t, "peers", func() bool { return len(s.Peers()) == 2 })
	recovered := func() uint64 { return s.Signers().Stats().Recovered }

	// Only relayed: no subscription has its topic, so nothing opens it (geth v1.9.20
	// tries only the filters of an envelope's topic too).
	relayed := testEnvelope(t, "elsewhere", "relayed", 0, 50, time.Now())
	r1.sendEnvelopes(relayed)
	marker(t, r1, sub, "m0")
	if !s.Pooled(relayed.Hash()) {
		t.Fatal("relayed envelope not pooled")
	}
	if n := recovered(); n != 1 { // the marker's
		t.Fatalf("%d recoveries after a relayed envelope and a marker, want 1 (the marker's)", n)
	}

	// Twice by gossip, from two peers: pooled once, opened once.
	env := testEnvelope(t, "status", "twice", 0, 50, time.Now())
	r1.sendEnvelopes(env)
	r2.sendEnvelopes(env)
	if m := receive(t, sub); string(m.Payload) != "twice" || !m.Src.Equal(&keyOf(t, "alice").PublicKey) {
		t.Fatalf("got %q from another signer", m.Payload)
	}
	marker(t, r1, sub, "m1")
	if n := recovered(); n != 3 {
		t.Fatalf("%d recoveries, want 3 (the first marker, the envelope once, the second marker)", n)
	}

	// Again by direct delivery (a mailserver replaying what came live): opened again
	// for the subscription, its signer remembered.
	r2.send(p2pMessageCode, env.Bytes())
	if m := receive(t, sub); string(m.Payload) != "twice" || !m.Src.Equal(&keyOf(t, "alice").PublicKey) {
		t.Fatalf("direct copy: got %q from another signer", m.Payload)
	}
	if st := s.Signers().Stats(); st.Recovered != 3 || st.Reused != 1 {
		t.Fatalf("stats %+v after the direct copy, want 3 recovered, 1 reused", st)
	}

	// Forged: its signature recovers no key; the subscription never sees it.
	r1.sendEnvelopes(forgedEnvelope(t, "status", "forged", time.Now()))
	marker(t, r1, sub, "m2")
	select {
	case m := <-sub.C():
		t.Fatalf("extra message %q", m.Payload)
	default:
	}
}

// Our own post, signed through the node's Signers (node.Post does when a subscription
// of the node opens its topic), is opened by that subscription without a recovery.
func TestService_ownPostNotRecovered(t *testing.T) {
	s := startService(t, Config{MinPoW: 0, Workers: 1})
	if s.OpensLocal(TopicFromName("status")) {
		t.Fatal("OpensLocal without a subscription")
	}
	sub, err := s.Subscribe(Filter{Topics: []Topic{TopicFromName("status")}, SymKey: symKeyOf(t, "status")})
	if err != nil {
		t.Fatal(err)
	}
	if !s.OpensLocal(TopicFromName("status")) {
		t.Fatal("OpensLocal false with a subscription")
	}
	omit, err := s.Subscribe(Filter{Topics: []Topic{TopicFromName("quiet")}, SymKey: symKeyOf(t, "quiet"), OmitLocal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer omit.Unsubscribe()
	if s.OpensLocal(TopicFromName("quiet")) {
		t.Fatal("OpensLocal true where every filter omits our posts")
	}
	key := keyOf(t, "bob")
	env, err := Wrap(&MessageParams{Topic: TopicFromName("status"), KeySym: symKeyOf(t, "status"), Src: key,
		Signers: s.Signers(), Payload: []byte("mine"), TTL: 50})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(env); err != nil {
		t.Fatal(err)
	}
	m := receive(t, sub)
	if !m.Src.Equal(&key.PublicKey) {
		t.Fatal("own post opened with another signer")
	}
	if st := s.Signers().Stats(); st.Recovered != 0 || st.Reused != 1 || st.Signed != 1 {
		t.Fatalf("stats %+v, want 0 recovered, 1 reused, 1 signed", st)
	}
	// The same bytes from a stranger's envelope would have given the same answer.
	again, err := env.OpenSymmetric(symKeyOf(t, "status"))
	if err != nil || !again.Src.Equal(&key.PublicKey) {
		t.Fatalf("plain open: %v", err)
	}
}

// A LazySigner filter gets the message without its signer recovered; Signer recovers
// it once, and refuses a forged signature (which an eager filter never delivers).
func TestFilters_lazySigner(t *testing.T) {
	fs := NewFilters()
	fs.signers = NewSigners(16)
	key := symKeyOf(t, "status")
	lazyID, err := fs.Install(Filter{Topics: []Topic{TopicFromName("status")}, SymKey: key, LazySigner: true})
	if err != nil {
		t.Fatal(err)
	}
	env := testEnvelope(t, "status", "hi", 0, 50, time.Now())
	ms := fs.Match(env, false)
	if len(ms) != 1 || ms[0].FilterID != lazyID {
		t.Fatalf("matches %+v", ms)
	}
	m := ms[0].Message
	if m.Src != nil || !m.Signed() {
		t.Fatal("lazy message: Src set, or not signed")
	}
	if fs.signers.Stats().Recovered != 0 {
		t.Fatal("recovered before anyone asked")
	}
	for range 2 {
		src, err := m.Signer()
		if err != nil || !src.Equal(&keyOf(t, "alice").PublicKey) {
			t.Fatalf("Signer: %v", err)
		}
	}
	if n := fs.signers.Stats().Recovered; n != 1 {
		t.Fatalf("%d recoveries, want 1", n)
	}

	forged := forgedEnvelope(t, "status", "forged", time.Now())
	ms = fs.Match(forged, false)
	if len(ms) != 1 {
		t.Fatalf("forged envelope: %d matches for the lazy filter, want 1", len(ms))
	}
	if _, err := ms[0].Message.Signer(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Signer of a forged signature: %v, want ErrBadSignature", err)
	}
	// An eager filter on the same key: it never gets the forged one (refused before
	// delivery); the lazy one, which opened it first, still does, for Signer to refuse.
	eagerID, err := fs.Install(Filter{Topics: []Topic{TopicFromName("status")}, SymKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range fs.Match(forged, false) {
		if mt.FilterID == eagerID {
			t.Fatal("eager filter got a forged signature")
		}
	}
	ms = fs.Match(env, false)
	if len(ms) != 2 {
		t.Fatalf("%d matches, want 2", len(ms))
	}
	for _, mt := range ms {
		if !mt.Message.Src.Equal(&keyOf(t, "alice").PublicKey) {
			t.Fatal("eager match without its signer")
		}
	}
	if fs.signers.Stats().Reused == 0 {
		t.Fatal("the second opening recovered again")
	}
	// ParsePlaintext (no cache, eager) still refuses the forged plaintext.
	pt, err := key.decrypt(forged.Data())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePlaintext(pt); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("ParsePlaintext of a forged signature: %v", err)
	}
}
