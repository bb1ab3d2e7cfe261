package whisper

import (
	"bytes"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestWrap_roundTrip(t *testing.T) {
	alice, bob := keyOf(t, "alice"), keyOf(t, "bob")
	sym := symKeyOf(t, "status")
	topic := TopicFromName("status")
	for _, size := range []int{0, 1, 255, 256, 70 * 1024} {
		payload := make([]byte, size)
		fixedRand(byte(size)).Read(payload)
		for _, signed := range []bool{false, true} {
			for _, asym := range []bool{false, true} {
				p := &MessageParams{Topic: topic, Payload: payload, TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second}
				if signed {
					p.Src = alice
				}
				if asym {
					p.Dst = &bob.PublicKey
				} else {
					p.KeySym = sym
				}
				env, err := Wrap(p)
				if err != nil {
					t.Fatalf("wrap %d signed=%v asym=%v: %v", size, signed, asym, err)
				}
				if env.PoW() < 0.002 {
					t.Errorf("PoW %v below target", env.PoW())
				}
				if env.TTL() != 15 || env.Topic() != topic {
					t.Errorf("envelope fields: %s", env)
				}
				var msg *ReceivedMessage
				if asym {
					msg, err = env.OpenAsymmetric(bob)
				} else {
					msg, err = env.OpenSymmetric(sym)
				}
				if err != nil {
					t.Fatalf("open %d signed=%v asym=%v: %v", size, signed, asym, err)
				}
				if !bytes.Equal(msg.Payload, payload) {
					t.Errorf("payload mismatch for %d bytes", size)
				}
				if signed != msg.Signed() || (signed && !samePublicKey(msg.Src, &alice.PublicKey)) {
					t.Errorf("signer: signed=%v got %v", signed, msg.Src)
				}
				if msg.EnvelopeHash != env.Hash() || msg.PoW != env.PoW() || msg.Sent != env.Expiry()-15 {
					t.Error("message metadata does not match its envelope")
				}
				plain := flagsLength + sizeFieldLen(size) + size + len(msg.Padding)
				if signed {
					plain += signatureLength
				}
				if plain%padSizeLimit != 0 {
					t.Errorf("plaintext of %d bytes is not padded to 256", plain)
				}
			}
		}
	}
}

func TestWrap_deterministicWithInjectedClockAndRand(t *testing.T) {
	p := func() *MessageParams {
		return &MessageParams{Topic: TopicFromName("status"), Payload: []byte("hi"), KeySym: symKeyOf(t, "status"),
			Src: keyOf(t, "alice"), TTL: 15, PoW: 0.002, WorkTime: time.Second, Clock: frozen(1575000000), Rand: fixedRand(9)}
	}
	a, err := Wrap(p())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Wrap(p())
	if a.Hash() != b.Hash() || a.Expiry() != 1575000015 {
		t.Errorf("same inputs gave %s and %s", a, b)
	}
}

func TestWrap_userPaddingAndDefaults(t *testing.T) {
	sym := symKeyOf(t, "status")
	pad := []byte("exact padding")
	env, err := Wrap(&MessageParams{Payload: []byte("x"), Padding: pad, KeySym: sym})
	if err != nil {
		t.Fatal(err)
	}
	if env.TTL() != DefaultTTL || env.Nonce() != 0 {
		t.Errorf("TTL %d nonce %d; want default TTL and no work at PoW 0", env.TTL(), env.Nonce())
	}
	msg, err := env.OpenSymmetric(sym)
	if err != nil || !bytes.Equal(msg.Padding, pad) {
		t.Fatalf("padding = %q, %v", msg.Padding, err)
	}
}

func TestWrap_negativePoWWorksForTheWholeTime(t *testing.T) {
	now := time.Unix(1575000000, 0)
	calls := 0
	clock := func() time.Time { calls++; return now.Add(time.Duration(calls) * 100 * time.Millisecond) }
	env, err := Wrap(&MessageParams{Payload: []byte("x"), KeySym: symKeyOf(t, "status"), TTL: 10, PoW: -1,
		WorkTime: 1500 * time.Millisecond, Clock: clock, Rand: fixedRand(3)})
	if err != nil {
		t.Fatal(err)
	}
	// Expiry = now(first read)+TTL, plus the work time rounded up to whole seconds.
	if want := uint32(now.Unix()) + 10 + 2; env.Expiry() != want {
		t.Errorf("expiry = %d, want %d", env.Expiry(), want)
	}
	if calls < 10 {
		t.Errorf("clock read %d times; the search must run until the work time is spent", calls)
	}
}

func TestWrap_errors(t *testing.T) {
	sym := symKeyOf(t, "status")
	bob := keyOf(t, "bob")
	cases := []struct {
		name string
		p    MessageParams
		want error
	}{
		{"no key", MessageParams{Payload: []byte("x")}, ErrNoKey},
		{"two keys", MessageParams{KeySym: sym, Dst: &bob.PublicKey}, ErrNoKey},
		{"bad recipient", MessageParams{Dst: &bob.PublicKey, Src: nil, Payload: nil, Rand: fixedRand(0)}, nil},
		{"broken entropy", MessageParams{KeySym: sym, Payload: []byte("x"), Rand: zeroRand{}}, ErrRandom},
		{"too large", MessageParams{KeySym: sym, Payload: make([]byte, 2000), MaxSize: 1000}, ErrEnvelopeTooLarge},
		{"unreachable PoW", MessageParams{KeySym: sym, PoW: 1e9, TTL: 10, WorkTime: time.Millisecond}, ErrPoWTarget},
	}
	for _, tc := range cases {
		_, err := Wrap(&tc.p)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errorsIs(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	off := *bob
	off.PublicKey.X = off.PublicKey.X.Add(off.PublicKey.X, off.PublicKey.X) // not on the curve
	if _, err := Wrap(&MessageParams{Dst: &off.PublicKey}); !errorsIs(err, ErrInvalidKey) {
		t.Errorf("off-curve recipient: %v", err)
	}
	if _, err := NewSymKey(make([]byte, 32)); !errorsIs(err, ErrInvalidKey) {
		t.Errorf("zero key: %v", err)
	}
	if _, err := NewSymKey(make([]byte, 16)); !errorsIs(err, ErrInvalidKey) {
		t.Errorf("short key: %v", err)
	}
}

func TestOpen_badInput(t *testing.T) {
	sym := symKeyOf(t, "status")
	alice, bob := keyOf(t, "alice"), keyOf(t, "bob")
	topic := TopicFromName("status")
	signed, err := Wrap(&MessageParams{Topic: topic, Payload: []byte("hello"), KeySym: sym, Src: alice, Rand: fixedRand(2)})
	if err != nil {
		t.Fatal(err)
	}
	asym, err := Wrap(&MessageParams{Topic: topic, Payload: []byte("hello"), Dst: &bob.PublicKey, Rand: fixedRand(2)})
	if err != nil {
		t.Fatal(err)
	}
	withData := func(d []byte) *Envelope {
		e, err := NewEnvelope(signed.Expiry(), 15, topic, d, 0)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tamper := func(d []byte, i int) []byte { d = append([]byte(nil), d...); d[i] ^= 1; return d }

	if _, err := withData(make([]byte, 27)).OpenSymmetric(sym); !errorsIs(err, ErrDataTooShort) {
		t.Errorf("data shorter than GCM tag+nonce: %v", err)
	}
	if _, err := signed.OpenSymmetric(symKeyOf(t, "other")); !errorsIs(err, ErrDecrypt) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := withData(tamper(signed.Data(), 3)).OpenSymmetric(sym); !errorsIs(err, ErrDecrypt) {
		t.Errorf("tampered ciphertext: %v", err)
	}
	if _, err := asym.OpenAsymmetric(alice); !errorsIs(err, ErrDecrypt) {
		t.Errorf("asym with wrong key: %v", err)
	}
	notForUs := tamper(asym.Data(), 0) // 0x04 → 0x05: not an ephemeral key prefix
	if _, err := withData(notForUs).OpenAsymmetric(bob); !errorsIs(err, ErrNotForUs) {
		t.Errorf("asym with bad prefix: %v", err)
	}
	if _, err := withData(make([]byte, 50)).OpenAsymmetric(bob); !errorsIs(err, ErrDataTooShort) {
		t.Errorf("asym too short: %v", err)
	}

	// Tampered signature: re-encrypt a plaintext whose signature bytes were changed. The
	// signature either fails to recover or recovers somebody else; never alice.
	pt, _ := frame(&MessageParams{Payload: []byte("hello"), Src: alice}, fixedRand(4))
	for _, i := range []int{len(pt) - 1, len(pt) - 40} {
		bad := tamper(pt, i)
		ct, _ := sym.encrypt(fixedRand(5), append(bad, make([]byte, 28)...)[:len(bad)])
		msg, err := withData(ct).OpenSymmetric(sym)
		if err == nil && samePublicKey(msg.Src, &alice.PublicKey) {
			t.Errorf("tampered signature byte %d still verifies as alice", i)
		}
		if err != nil && !errorsIs(err, ErrBadSignature) {
			t.Errorf("tampered signature byte %d: %v", i, err)
		}
	}
	bad := append([]byte(nil), pt...)
	bad[len(bad)-1] = 27 // EIP-627's V; geth accepts only 0/1
	ct, _ := sym.encrypt(fixedRand(5), bad)
	if _, err := withData(ct).OpenSymmetric(sym); !errorsIs(err, ErrBadSignature) {
		t.Errorf("V=27: %v", err)
	}
}

func TestParsePlaintext_framing(t *testing.T) {
	cases := []struct {
		name string
		pt   []byte
		ok   bool
		pay  string
	}{
		{"empty", nil, false, ""},
		{"flags only", []byte{0}, true, ""},
		{"no size field", []byte{0, 'a', 'b'}, true, ""},
		{"one byte size", []byte{1, 2, 'h', 'i', 'p'}, true, "hi"},
		{"payload to the end", []byte{1, 2, 'h', 'i'}, true, "hi"},
		{"payload past end", []byte{1, 3, 'h', 'i'}, false, ""},
		{"size field past end", []byte{3, 1}, false, ""},
		{"two byte size LE", append([]byte{2, 3, 0}, "abc"...), true, "abc"},
		{"signed but too short", append([]byte{4}, make([]byte, 65)...), false, ""},
	}
	for _, tc := range cases {
		m, err := ParsePlaintext(tc.pt)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		if err != nil && !errorsIs(err, ErrMalformedMessage) {
			t.Errorf("%s: error %v does not wrap ErrMalformedMessage", tc.name, err)
		}
		if err == nil && string(m.Payload) != tc.pay {
			t.Errorf("%s: payload %q, want %q", tc.name, m.Payload, tc.pay)
		}
	}
	// A signature over the bytes must recover the signer, and flipping the flag breaks it.
	alice := keyOf(t, "alice")
	pt := []byte{1 | signatureFlag, 2, 'h', 'i'}
	sig, _ := crypto.Sign(crypto.Keccak256(pt), alice)
	m, err := ParsePlaintext(append(pt, sig...))
	if err != nil || !samePublicKey(m.Src, &alice.PublicKey) || string(m.Payload) != "hi" {
		t.Fatalf("signed parse: %v", err)
	}
}
