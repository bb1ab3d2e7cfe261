package whisper

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// vectors mirrors testdata/protocol-vectors.json (PROTOCOL.md §13).
type vectors struct {
	Topics []struct{ S, Topic string }
	Blooms []struct {
		S, Topic, Hex string
		Bits          []int
		OrBits        []int `json:"or_bits"`
	}
	Pbkdf2 []struct{ Password, Key string }
	Float  []struct {
		Value float64
		Bits  string
	} `json:"float64_bits"`
	Handshake struct {
		PoW                  float64
		Light, Confirmations bool
		Len                  int
		Prefix, Suffix       string
	} `json:"status_handshake"`
	Envelope struct {
		Expiry, TTL uint32
		Topic       string
		DataByte    string `json:"data_byte"`
		DataLen     int    `json:"data_len"`
		ShortLen    int    `json:"short_rlp_len"`
		ShortPrefix string `json:"short_rlp_prefix"`
		FullLen     int    `json:"full_rlp_len"`
		FullPrefix  string `json:"full_rlp_prefix"`
		FullSuffix  string `json:"full_rlp_suffix"`
		Hash        string
		SealPoW     float64 `json:"seal_pow"`
		SealTarget  int     `json:"seal_target_bits"`
		SealNonce   uint64  `json:"seal_nonce"`
		SealZeros   int     `json:"seal_leading_zeros"`
		SealedHash  string  `json:"sealed_hash"`
	}
	Padding []struct {
		PayloadLen int `json:"payload_len"`
		Padding    int
		Plaintext  int
		SizeField  int `json:"size_field"`
	} `json:"padding_signed"`
	Hello struct {
		Payload, Flags string
		SizeField      string `json:"size_field"`
		Padding, Total int
	}
	Signature struct{ Priv, Pub, Message, Sig string }
}

func loadVectors(t *testing.T) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/protocol-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func bloomBits(b Bloom) []int {
	var out []int
	for n := 0; n < 8*BloomFilterSize; n++ {
		if b[n/8]&(1<<uint(n%8)) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func TestTopicFromName_vectors(t *testing.T) {
	for _, tc := range loadVectors(t).Topics {
		got := TopicFromName(tc.S)
		if hex.EncodeToString(got[:]) != tc.Topic {
			t.Errorf("TopicFromName(%q) = %s, want 0x%s", tc.S, got, tc.Topic)
		}
		var back Topic
		if err := back.UnmarshalText([]byte(got.String())); err != nil || back != got {
			t.Errorf("topic text round trip %s: %v %s", got, err, back)
		}
	}
}

func TestTopicToBloom_vectors(t *testing.T) {
	for _, tc := range loadVectors(t).Blooms {
		topic := BytesToTopic(unhex(t, tc.Topic))
		if tc.S != "" && TopicFromName(tc.S) != topic {
			t.Errorf("TopicFromName(%q) = %s, want 0x%s", tc.S, TopicFromName(tc.S), tc.Topic)
		}
		b := TopicToBloom(topic)
		if got := fmt.Sprint(bloomBits(b)); got != fmt.Sprint(tc.Bits) {
			t.Errorf("bloom bits of %s = %s, want %v", topic, got, tc.Bits)
		}
		if tc.Hex != "" && hex.EncodeToString(b[:]) != tc.Hex {
			t.Errorf("bloom of %s = %x, want %s", topic, b, tc.Hex)
		}
		if tc.OrBits != nil {
			// The quirk: a plain OR of the three bits would differ.
			var or Bloom
			for _, n := range tc.OrBits {
				or[n/8] |= 1 << uint(n%8)
			}
			if or == b {
				t.Errorf("bloom of %s equals the OR construction; the assignment quirk is lost", topic)
			}
		}
	}
}

func TestBloom_matchAndAggregate(t *testing.T) {
	a, b, c := TopicFromName("status"), TopicFromName("test"), TopicFromName("contact-discovery")
	filter := BloomOf(a, b)
	sa, sb, sc := a.Bloom(), b.Bloom(), c.Bloom()
	if !filter.Matches(&sa) || !filter.Matches(&sb) {
		t.Error("aggregate filter must match its own topics")
	}
	if filter.Matches(&sc) {
		t.Error("aggregate filter of status+test must not match contact-discovery")
	}
	full := FullBloom()
	if !full.Matches(&sc) || !full.IsFull() || filter.IsFull() {
		t.Error("full bloom must match everything and report full")
	}
	var empty Bloom
	if empty.Matches(&sa) {
		t.Error("empty bloom must match nothing")
	}
	if fromEmpty, err := BloomFromBytes(nil); err != nil || !fromEmpty.IsFull() {
		t.Errorf("empty bloom bytes must mean full node: %v", err)
	}
	for _, n := range []int{1, 63, 65} {
		if _, err := BloomFromBytes(make([]byte, n)); !errorsIs(err, ErrBloomSize) {
			t.Errorf("BloomFromBytes(%d bytes) err = %v, want ErrBloomSize", n, err)
		}
	}
}

func TestSymKeyFromPassword_vectors(t *testing.T) {
	for _, tc := range loadVectors(t).Pbkdf2 {
		k, err := SymKeyFromPassword(tc.Password)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(k.Bytes()) != tc.Key {
			t.Errorf("key(%q) = %x, want %s", tc.Password, k.Bytes(), tc.Key)
		}
	}
}

func TestFloat64Bits_vectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Float {
		if got := fmt.Sprintf("%016x", math.Float64bits(tc.Value)); got != tc.Bits {
			t.Errorf("bits(%v) = %s, want %s", tc.Value, got, tc.Bits)
		}
	}
	// The status handshake carries PoW as those bits in an RLP uint.
	h := v.Handshake
	full := FullBloom()
	enc, err := rlp.EncodeToBytes([]any{ProtocolVersion, math.Float64bits(h.PoW), full[:], h.Light, h.Confirmations})
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != h.Len || !bytes.HasPrefix(enc, unhex(t, h.Prefix)) || !bytes.HasSuffix(enc, unhex(t, h.Suffix)) {
		t.Errorf("status handshake = %x (%d bytes)", enc, len(enc))
	}
}

func vectorEnvelope(t *testing.T, v *vectors) *Envelope {
	t.Helper()
	ev := v.Envelope
	data := bytes.Repeat(unhex(t, ev.DataByte), ev.DataLen)
	e, err := NewEnvelope(ev.Expiry, ev.TTL, BytesToTopic(unhex(t, ev.Topic)), data, 0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnvelope_vectors(t *testing.T) {
	v := loadVectors(t)
	ev := v.Envelope
	e := vectorEnvelope(t, v)

	var short bytes.Buffer
	n := shortRLP(&short, e.expiry, e.ttl, &e.topic, e.Data())
	if n != ev.ShortLen || short.Len() != ev.ShortLen || !bytes.HasPrefix(short.Bytes(), unhex(t, ev.ShortPrefix)) {
		t.Errorf("short RLP: %d bytes, starts %x", short.Len(), short.Bytes()[:20])
	}
	raw := e.Bytes()
	if len(raw) != ev.FullLen || !bytes.HasPrefix(raw, unhex(t, ev.FullPrefix)) || !bytes.HasSuffix(raw, unhex(t, ev.FullSuffix)) {
		t.Errorf("full RLP: %d bytes, %x…%x", len(raw), raw[:3], raw[len(raw)-2:])
	}
	if got := hex.EncodeToString(e.Hash().Bytes()); got != ev.Hash {
		t.Errorf("hash = %s, want %s", got, ev.Hash)
	}

	if got := PoWTargetBits(ev.SealPoW, e.Size(), e.TTL()); got != ev.SealTarget {
		t.Errorf("target bits = %d, want %d", got, ev.SealTarget)
	}
	sealed, err := e.Seal(SealOptions{PoW: ev.SealPoW, WorkTime: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	if sealed.Nonce() != ev.SealNonce {
		t.Errorf("sealed nonce = %d, want %d", sealed.Nonce(), ev.SealNonce)
	}
	wantPoW := math.Pow(2, float64(ev.SealZeros)) / float64(ev.ShortLen) / float64(ev.TTL)
	if sealed.PoW() != wantPoW {
		t.Errorf("sealed PoW = %v, want %v", sealed.PoW(), wantPoW)
	}
	if got := hex.EncodeToString(sealed.Hash().Bytes()); got != ev.SealedHash {
		t.Errorf("sealed hash = %s, want %s", got, ev.SealedHash)
	}
	// Our hand-built RLP must equal go-ethereum's generic encoder's, and decode back.
	want, _ := rlp.EncodeToBytes([]any{sealed.Expiry(), sealed.TTL(), sealed.Topic(), sealed.Data(), sealed.Nonce()})
	if !bytes.Equal(want, sealed.Bytes()) {
		t.Error("sealed RLP differs from rlp.EncodeToBytes")
	}
	back, err := DecodeEnvelope(append([]byte(nil), sealed.Bytes()...))
	if err != nil || back.Hash() != sealed.Hash() || back.PoW() != sealed.PoW() {
		t.Errorf("decode sealed: %v", err)
	}
}

func TestPaddingLength_vectors(t *testing.T) {
	v := loadVectors(t)
	src, _ := crypto.ToECDSA(unhex(t, v.Signature.Priv))
	key, _ := NewSymKey(bytes.Repeat([]byte{7}, 32))
	for _, tc := range v.Padding {
		if got := PaddingLength(tc.PayloadLen, true); got != tc.Padding {
			t.Errorf("padding(%d) = %d, want %d", tc.PayloadLen, got, tc.Padding)
		}
		if got := sizeFieldLen(tc.PayloadLen); got != tc.SizeField {
			t.Errorf("size field(%d) = %d, want %d", tc.PayloadLen, got, tc.SizeField)
		}
		pt, err := frame(&MessageParams{Payload: make([]byte, tc.PayloadLen), Src: src, KeySym: key}, fixedRand(1))
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) != tc.Plaintext || int(pt[0]&sizeMask) != tc.SizeField {
			t.Errorf("plaintext(%d) = %d bytes, flags %02x; want %d", tc.PayloadLen, len(pt), pt[0], tc.Plaintext)
		}
	}
	h := v.Hello
	pt, err := frame(&MessageParams{Payload: []byte(h.Payload), Src: src, KeySym: key}, fixedRand(1))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(pt[:2]) != h.Flags+h.SizeField || len(pt) != h.Total || len(pt)-2-len(h.Payload)-65 != h.Padding {
		t.Errorf("hello plaintext %x… (%d bytes)", pt[:8], len(pt))
	}
}

func TestSignature_vector(t *testing.T) {
	sv := loadVectors(t).Signature
	priv, _ := crypto.ToECDSA(unhex(t, sv.Priv))
	if got := hex.EncodeToString(crypto.FromECDSAPub(&priv.PublicKey)); got != sv.Pub {
		t.Fatalf("pub = %s", got)
	}
	sig, err := crypto.Sign(crypto.Keccak256([]byte(sv.Message)), priv)
	if err != nil || hex.EncodeToString(sig) != sv.Sig {
		t.Fatalf("sig = %x, %v; want %s (V must be 0, not 27)", sig, err, sv.Sig)
	}
}
