package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ethereum/go-ethereum/crypto"
)

// The fixed puppet-key vector: secret 01 02 … 20, id {matrix, @bridge:example.org,
// @alice:example.org}. The digest was computed by refPuppetDigest below and, separately,
// by Python's hmac module; the chat key is go-ethereum's public key of that scalar.
const (
	vectorPrivHex = "697eedc33f5905a037f777cab272d1d44a6e3d4b52b48f7f4e8c2114ff4b17f1"
	vectorMsgHex  = "737461747573676174652d7075707065742d7631" + // "statusgate-puppet-v1"
		"06" + "6d6174726978" + // "matrix"
		"13" + "406272696467653a6578616d706c652e6f7267" + // "@bridge:example.org"
		"12" + "40616c6963653a6578616d706c652e6f7267" + // "@alice:example.org"
		"00000000" // counter 0
)

var vectorID = PuppetID{Network: "matrix", Account: "@bridge:example.org", User: "@alice:example.org"}

func vectorSecretBytes() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func testSecret(t testing.TB, fill byte) *Secret {
	t.Helper()
	s, err := NewSecret(bytes.Repeat([]byte{fill}, SecretLen))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPuppetKey(t testing.TB, s *Secret, id PuppetID) *ecdsa.PrivateKey {
	t.Helper()
	k, err := s.PuppetKey(id)
	if err != nil {
		t.Fatalf("PuppetKey(%+v): %v", id, err)
	}
	return k
}

func privHex(k *ecdsa.PrivateKey) string { return hex.EncodeToString(crypto.FromECDSA(k)) }

// refPuppetMsg and refPuppetDigest are an independent implementation of the encoding
// documented on PuppetKey, written from the doc comment with crypto/hmac and math/big
// only, so the vector test checks the documentation rather than the code against itself.
func refPuppetMsg(network, account, user string, counter uint32) []byte {
	msg := []byte("statusgate-puppet-v1")
	for _, f := range []string{network, account, user} {
		if len(f) >= 0x80 {
			panic("reference encoder handles single-byte lengths only")
		}
		msg = append(msg, byte(len(f)))
		msg = append(msg, f...)
	}
	return append(msg, byte(counter>>24), byte(counter>>16), byte(counter>>8), byte(counter))
}

func refPuppetScalar(secret []byte, network, account, user string) *big.Int {
	n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	for c := uint32(0); ; c++ {
		m := hmac.New(sha256.New, secret)
		m.Write(refPuppetMsg(network, account, user, c))
		d := new(big.Int).SetBytes(m.Sum(nil))
		if d.Sign() > 0 && d.Cmp(n) < 0 {
			return d
		}
	}
}

func TestPuppetKey_vector(t *testing.T) {
	if got := hex.EncodeToString(refPuppetMsg(vectorID.Network, vectorID.Account, vectorID.User, 0)); got != vectorMsgHex {
		t.Fatalf("reference msg = %s, want %s", got, vectorMsgHex)
	}
	ref := refPuppetScalar(vectorSecretBytes(), vectorID.Network, vectorID.Account, vectorID.User)
	if got := fmt.Sprintf("%064x", ref); got != vectorPrivHex {
		t.Fatalf("reference scalar = %s, want %s", got, vectorPrivHex)
	}

	s, err := NewSecret(vectorSecretBytes())
	if err != nil {
		t.Fatal(err)
	}
	k := mustPuppetKey(t, s, vectorID)
	if got := privHex(k); got != vectorPrivHex {
		t.Errorf("PuppetKey = %s, want %s", got, vectorPrivHex)
	}
	if k.D.Cmp(ref) != 0 {
		t.Errorf("PuppetKey D = %x, want reference %x", k.D, ref)
	}
	// The public half must be the scalar's, not left over from somewhere else.
	x, y := crypto.S256().ScalarBaseMult(crypto.FromECDSA(k))
	if k.X.Cmp(x) != 0 || k.Y.Cmp(y) != 0 {
		t.Errorf("public key does not match D")
	}
	t.Logf("vector chat key %s", ChatKey(&k.PublicKey))
}

// TestPuppetKey_reference compares PuppetKey with the reference over ids that exercise
// multi-byte UTF-8 and lengths near the single-byte uvarint limit.
func TestPuppetKey_reference(t *testing.T) {
	s := testSecret(t, 0x5a)
	for _, id := range []PuppetID{
		{"slack", "T0123", "U0456"},
		{"irc", "irc.libera.chat", "ñick"},
		{"x", strings.Repeat("a", 127), "日本語"},
	} {
		want := refPuppetScalar(bytes.Repeat([]byte{0x5a}, SecretLen), id.Network, id.Account, id.User)
		if got := mustPuppetKey(t, s, id); got.D.Cmp(want) != 0 {
			t.Errorf("PuppetKey(%+v) = %x, want %x", id, got.D, want)
		}
	}
}

// TestPuppetKey_longFields pins the two-byte uvarint prefix used for lengths ≥ 128.
func TestPuppetKey_longFields(t *testing.T) {
	s := testSecret(t, 0x33)
	id := PuppetID{"n", "a", strings.Repeat("u", 200)}
	msg := []byte("statusgate-puppet-v1\x01n\x01a\xc8\x01" + id.User + "\x00\x00\x00\x00")
	m := hmac.New(sha256.New, bytes.Repeat([]byte{0x33}, SecretLen))
	m.Write(msg)
	want := new(big.Int).SetBytes(m.Sum(nil))
	if got := mustPuppetKey(t, s, id); got.D.Cmp(want) != 0 {
		t.Errorf("PuppetKey = %x, want %x", got.D, want)
	}
}

func TestPuppetKey_deterministic(t *testing.T) {
	s := testSecret(t, 7)
	k1 := mustPuppetKey(t, s, vectorID)
	k2 := mustPuppetKey(t, s, vectorID)
	// A secret rebuilt from its hex, as after a restart.
	s2, err := ParseSecret(s.Hex())
	if err != nil {
		t.Fatal(err)
	}
	k3 := mustPuppetKey(t, s2, vectorID)
	if privHex(k1) != privHex(k2) || privHex(k1) != privHex(k3) {
		t.Errorf("keys differ: %s %s %s", privHex(k1), privHex(k2), privHex(k3))
	}
	if k1 == k2 {
		t.Errorf("PuppetKey returned a shared *PrivateKey")
	}
}

func TestPuppetKey_distinct(t *testing.T) {
	s := testSecret(t, 7)
	base := privHex(mustPuppetKey(t, s, vectorID))
	other := func(mod func(*PuppetID)) PuppetID { id := vectorID; mod(&id); return id }
	cases := map[string]struct {
		s  *Secret
		id PuppetID
	}{
		"user":    {s, other(func(id *PuppetID) { id.User = "@bob:example.org" })},
		"account": {s, other(func(id *PuppetID) { id.Account = "@bridge2:example.org" })},
		"network": {s, other(func(id *PuppetID) { id.Network = "slack" })},
		"secret":  {testSecret(t, 8), vectorID},
		"swapped": {s, PuppetID{vectorID.Network, vectorID.User, vectorID.Account}},
	}
	seen := map[string]string{base: "base"}
	for name, tc := range cases {
		got := privHex(mustPuppetKey(t, tc.s, tc.id))
		if prev, ok := seen[got]; ok {
			t.Errorf("%s: same key as %s", name, prev)
		}
		seen[got] = name
	}
}

// TestPuppetKey_lengthPrefixed: without length prefixes these ids would all encode the
// same concatenation.
func TestPuppetKey_lengthPrefixed(t *testing.T) {
	s := testSecret(t, 9)
	seen := map[string]PuppetID{}
	for _, id := range []PuppetID{
		{"n", "ab", "c"},
		{"n", "a", "bc"},
		{"na", "b", "c"},
		{"nab", "c", "\x00"},
	} {
		got := privHex(mustPuppetKey(t, s, id))
		if prev, ok := seen[got]; ok {
			t.Errorf("%+v and %+v give the same key", id, prev)
		}
		seen[got] = id
	}
}

func TestScalarOf(t *testing.T) {
	n := crypto.S256().Params().N
	digestOf := func(x *big.Int) (d [32]byte) { x.FillBytes(d[:]); return d }
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	for _, tc := range []struct {
		name string
		x    *big.Int
		ok   bool
	}{
		{"zero", big.NewInt(0), false},
		{"one", big.NewInt(1), true},
		{"n-1", new(big.Int).Sub(n, big.NewInt(1)), true},
		{"n", n, false},
		{"n+1", new(big.Int).Add(n, big.NewInt(1)), false},
		{"2^256-1", max, false},
	} {
		d, ok := scalarOf(digestOf(tc.x))
		if ok != tc.ok {
			t.Errorf("scalarOf(%s) ok = %v, want %v", tc.name, ok, tc.ok)
		}
		if d.Cmp(tc.x) != 0 {
			t.Errorf("scalarOf(%s) = %x, want %x", tc.name, d, tc.x)
		}
		// What scalarOf accepts, crypto.ToECDSA must accept too, and vice versa.
		dig := digestOf(tc.x)
		if _, err := crypto.ToECDSA(dig[:]); (err == nil) != tc.ok {
			t.Errorf("ToECDSA(%s) err = %v, scalarOf ok = %v", tc.name, err, tc.ok)
		}
	}
}

func TestPuppetKey_badInputs(t *testing.T) {
	s := testSecret(t, 1)
	long := strings.Repeat("x", MaxPuppetIDField+1)
	for _, id := range []PuppetID{
		{},
		{"", "a", "u"},
		{"n", "", "u"},
		{"n", "a", ""},
		{long, "a", "u"},
		{"n", long, "u"},
		{"n", "a", long},
		{"n", "a", "\xff"},
		{"\xc3", "a", "u"},
	} {
		if _, err := s.PuppetKey(id); !errors.Is(err, ErrInvalidPuppetID) {
			t.Errorf("PuppetKey(%q) err = %v, want ErrInvalidPuppetID", id, err)
		}
	}
	if _, err := s.PuppetKey(PuppetID{"n", "a", strings.Repeat("x", MaxPuppetIDField)}); err != nil {
		t.Errorf("PuppetKey at max length: %v", err)
	}
	var nilSecret *Secret
	if _, err := nilSecret.PuppetKey(vectorID); !errors.Is(err, ErrInvalidSecret) {
		t.Errorf("nil secret err = %v, want ErrInvalidSecret", err)
	}
	if _, err := (&Secret{}).PuppetKey(vectorID); !errors.Is(err, ErrInvalidSecret) {
		t.Errorf("zero secret err = %v, want ErrInvalidSecret", err)
	}
}

func TestNewSecret(t *testing.T) {
	for _, n := range []int{0, 1, SecretLen - 1, MaxSecretLen + 1} {
		if _, err := NewSecret(make([]byte, n)); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("NewSecret(%d bytes) err = %v, want ErrInvalidSecret", n, err)
		}
	}
	for _, n := range []int{SecretLen, 64, MaxSecretLen} {
		if _, err := NewSecret(make([]byte, n)); err != nil {
			t.Errorf("NewSecret(%d bytes): %v", n, err)
		}
	}
	// NewSecret copies: changing the input afterwards does not change the secret.
	b := vectorSecretBytes()
	s, err := NewSecret(b)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if s.Hex() != hex.EncodeToString(vectorSecretBytes()) {
		t.Errorf("NewSecret aliases its input")
	}
}

func TestGenerateSecret(t *testing.T) {
	r := bytes.NewReader(bytes.Repeat([]byte{0xab}, 100))
	s, err := GenerateSecret(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("ab", SecretLen); s.Hex() != want {
		t.Errorf("Hex = %s, want %s", s.Hex(), want)
	}
	if _, err := GenerateSecret(bytes.NewReader(make([]byte, SecretLen-1))); err == nil {
		t.Errorf("GenerateSecret on a short reader: no error")
	}
	if _, err := GenerateSecret(iotest.ErrReader(errors.New("boom"))); err == nil {
		t.Errorf("GenerateSecret on a failing reader: no error")
	}
	if _, err := GenerateSecret(nil); !errors.Is(err, ErrInvalidSecret) {
		t.Errorf("GenerateSecret(nil) err = %v, want ErrInvalidSecret", err)
	}
}

func TestParseSecret(t *testing.T) {
	h := hex.EncodeToString(vectorSecretBytes())
	for _, in := range []string{h, strings.ToUpper(h), "0x" + h, "  " + h + "\n"} {
		s, err := ParseSecret(in)
		if err != nil {
			t.Errorf("ParseSecret(%q): %v", in, err)
			continue
		}
		if s.Hex() != h {
			t.Errorf("ParseSecret(%q).Hex() = %s, want %s", in, s.Hex(), h)
		}
	}
	secretish := "zz" + h[2:]
	for _, in := range []string{"", h[:62], h + "0", secretish, "0x"} {
		_, err := ParseSecret(in)
		if !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("ParseSecret(%q) err = %v, want ErrInvalidSecret", in, err)
			continue
		}
		if len(in) >= 10 && strings.Contains(err.Error(), in[2:10]) {
			t.Errorf("ParseSecret error %q quotes its input", err)
		}
	}
}

func TestSecret_Equal(t *testing.T) {
	a, b, c := testSecret(t, 1), testSecret(t, 1), testSecret(t, 2)
	var nilSecret *Secret
	for _, tc := range []struct {
		x, y *Secret
		want bool
	}{
		{a, b, true}, {a, c, false}, {a, nilSecret, false}, {nilSecret, a, false},
		{nilSecret, nilSecret, true},
	} {
		if got := tc.x.Equal(tc.y); got != tc.want {
			t.Errorf("Equal = %v, want %v", got, tc.want)
		}
	}
}

func TestSecret_redacted(t *testing.T) {
	s, err := NewSecret(vectorSecretBytes())
	if err != nil {
		t.Fatal(err)
	}
	h := s.Hex()
	type config struct {
		Name   string
		Secret *Secret
		Value  Secret
	}
	cfg := config{"gw", s, *s}
	var out bytes.Buffer
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		fmt.Fprintf(&out, f+"\n", s)
		fmt.Fprintf(&out, f+"\n", *s)
		fmt.Fprintf(&out, f+"\n", cfg)
	}
	fmt.Fprintln(&out, fmt.Sprint(s), s.String(), s.GoString())
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		l := slog.New(h)
		l.Info("start", "secret", s, "value", *s)
		l.Info("start", slog.Any("secret", s))
	}
	got := strings.ToLower(out.String())
	if !strings.Contains(got, redacted) {
		t.Errorf("output lacks %q:\n%s", redacted, got)
	}
	// Also look for a fragment, and for the raw bytes.
	if strings.Contains(got, h) || strings.Contains(got, h[:16]) || strings.Contains(got, "[1 2 3 4") ||
		bytes.Contains(out.Bytes(), vectorSecretBytes()[:8]) {
		t.Errorf("output reveals the secret:\n%s", got)
	}
	if v := s.LogValue(); v.Kind() != slog.KindString || v.String() != redacted {
		t.Errorf("LogValue = %v", v)
	}
}

func BenchmarkPuppetKey(b *testing.B) {
	s := testSecret(b, 7)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.PuppetKey(vectorID); err != nil {
			b.Fatal(err)
		}
	}
}
