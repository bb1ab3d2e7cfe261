package identity

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"math/big"
	"runtime"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/mr-tron/base58"
)

func mustParse(t testing.TB, s string) *ecdsa.PublicKey {
	t.Helper()
	pub, err := ParseChatKey(s)
	if err != nil {
		t.Fatalf("ParseChatKey(%q): %v", s, err)
	}
	return pub
}

func sameKey(a, b *ecdsa.PublicKey) bool {
	return a.X.Cmp(b.X) == 0 && a.Y.Cmp(b.Y) == 0
}

func TestFormat_vectors(t *testing.T) {
	for _, v := range loadVectors(t).Keys {
		pub := mustParse(t, v.ChatKey)
		for _, tc := range []struct {
			name, got, want string
		}{
			{"ChatKey", ChatKey(pub), v.ChatKey},
			{"CompressedHex", CompressedHex(pub), "0x" + v.Compressed},
			{"DisplayKey", DisplayKey(pub), v.DisplayKey},
			{"ShortKey", ShortKey(pub), v.ShortKey},
		} {
			if tc.got != tc.want {
				t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
			}
		}
		if got := hex.EncodeToString(crypto.CompressPubkey(pub)); got != v.Compressed {
			t.Errorf("compressed bytes = %s, want %s", got, v.Compressed)
		}
		if len(ChatKey(pub)) != ChatKeyLen {
			t.Errorf("len(ChatKey) = %d, want %d", len(ChatKey(pub)), ChatKeyLen)
		}
	}
}

func TestParseChatKey_acceptsAllForms(t *testing.T) {
	v := loadVectors(t).Keys[0]
	want := mustParse(t, v.ChatKey)
	cases := []struct{ name, in string }{
		{"chat key", v.ChatKey},
		{"chat key without 0x", strings.TrimPrefix(v.ChatKey, "0x")},
		{"chat key upper case", "0X" + strings.ToUpper(v.ChatKey[2:])},
		{"compressed", v.Compressed},
		{"compressed with 0x", "0x" + v.Compressed},
		{"multibase", v.DisplayKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChatKey(tc.in)
			if err != nil {
				t.Fatalf("ParseChatKey: %v", err)
			}
			if !sameKey(got, want) {
				t.Fatalf("ParseChatKey gave %s, want %s", ChatKey(got), ChatKey(want))
			}
			if got.Curve != crypto.S256() {
				t.Errorf("curve is %v, want crypto.S256()", got.Curve.Params().Name)
			}
		})
	}
}

// offCurveCompressedX returns a 32-byte X for which x³+7 has no square root mod p, so no
// point has that X.
func offCurveCompressedX(t *testing.T) []byte {
	t.Helper()
	p := crypto.S256().Params().P
	for x := int64(1); x < 1000; x++ {
		bx := big.NewInt(x)
		rhs := new(big.Int).Exp(bx, big.NewInt(3), p)
		rhs.Add(rhs, big.NewInt(7)).Mod(rhs, p)
		if new(big.Int).ModSqrt(rhs, p) == nil {
			return bx.FillBytes(make([]byte, 32))
		}
	}
	t.Fatal("no off-curve x below 1000")
	return nil
}

func TestParseChatKey_rejects(t *testing.T) {
	v := loadVectors(t).Keys[0]
	full := strings.TrimPrefix(v.ChatKey, "0x")
	raw, _ := hex.DecodeString(full)
	comp, _ := hex.DecodeString(v.Compressed)

	offCurve := append([]byte(nil), raw...)
	offCurve[64] ^= 1 // Y changed: not on the curve
	bigX := append([]byte{0x04}, []byte(strings.Repeat("\xff", 64))...)
	offX := append([]byte{0x02}, offCurveCompressedX(t)...)
	hybrid := append([]byte{0x06}, raw[1:]...)
	wrongPrefix65 := append([]byte{0x02}, raw[1:]...)
	wrongPrefix33 := append([]byte{0x04}, comp[1:]...)
	z := func(b ...[]byte) string {
		var all []byte
		for _, p := range b {
			all = append(all, p...)
		}
		return "z" + base58.Encode(all)
	}

	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrKeyEncoding},
		{"only 0x", "0x", ErrKeyLength},
		{"chat key one char short", v.ChatKey[:len(v.ChatKey)-1], ErrKeyLength},
		{"chat key one char long", v.ChatKey + "0", ErrKeyLength},
		{"chat key one byte short", v.ChatKey[:len(v.ChatKey)-2], ErrKeyLength},
		{"compressed one byte short", v.Compressed[:64], ErrKeyLength},
		{"bad hex", "0x04" + strings.Repeat("zz", 64), ErrKeyEncoding},
		{"bad hex in the middle", v.ChatKey[:70] + "g" + v.ChatKey[71:], ErrKeyEncoding},
		{"leading space", " " + v.ChatKey, ErrKeyEncoding},
		{"trailing newline", v.ChatKey + "\n", ErrKeyLength},
		{"off-curve point", "0x" + hex.EncodeToString(offCurve), ErrNotOnCurve},
		{"coordinates not below p", "0x" + hex.EncodeToString(bigX), ErrNotOnCurve},
		{"all-zero point", "0x04" + strings.Repeat("00", 64), ErrNotOnCurve},
		{"compressed x not on curve", hex.EncodeToString(offX), ErrNotOnCurve},
		{"compressed x not below p", "02" + strings.Repeat("ff", 32), ErrNotOnCurve},
		{"hybrid 06 prefix", hex.EncodeToString(hybrid), ErrKeyLength},
		{"65 bytes with 02 prefix", hex.EncodeToString(wrongPrefix65), ErrKeyLength},
		{"33 bytes with 04 prefix", hex.EncodeToString(wrongPrefix33), ErrKeyLength},
		{"multibase wrong multicodec ea01", z([]byte{0xea, 0x01}, comp), ErrMulticodec},
		{"multibase without multicodec", z(comp), ErrKeyLength},
		{"multibase uncompressed inside", z([]byte{0xe7, 0x01}, raw), ErrKeyLength},
		{"multibase off-curve", z([]byte{0xe7, 0x01}, offX), ErrNotOnCurve},
		{"multibase bad base58", "zQ3sh0OIl", ErrKeyEncoding},
		{"multibase empty", "z", ErrKeyEncoding},
		{"multibase truncated", v.DisplayKey[:len(v.DisplayKey)-3], ErrKeyLength},
		{"multibase base64 prefix", "m5wECJhxVZ15V/yXttQs0XPs6PzX2BxLSUcuqq5e9UAVMbrw", ErrKeyEncoding},
		{"multibase prefix missing", strings.TrimPrefix(v.DisplayKey, "z"), ErrKeyEncoding},
		{"Z upper case", "Z" + v.DisplayKey[1:], ErrKeyEncoding},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ParseChatKey(tc.in)
			if err == nil {
				t.Fatalf("ParseChatKey(%q) = %s, want error", tc.in, ChatKey(pub))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("error %q does not wrap ErrInvalidKey", err)
			}
			if !strings.HasPrefix(err.Error(), "parse chat key: ") {
				t.Errorf("error %q does not start with \"parse chat key: \"", err)
			}
		})
	}
}

func TestFormat_nilKey(t *testing.T) {
	for _, pub := range []*ecdsa.PublicKey{nil, {Curve: crypto.S256()}} {
		for name, got := range map[string]string{
			"ChatKey":       ChatKey(pub),
			"CompressedHex": CompressedHex(pub),
			"DisplayKey":    DisplayKey(pub),
			"ShortKey":      ShortKey(pub),
		} {
			if got != "" {
				t.Errorf("%s(%v) = %q, want \"\"", name, pub, got)
			}
		}
	}
}

func TestFormat_roundTripsGeneratedKeys(t *testing.T) {
	for i := range 50 {
		// Deterministic keys: keccak256 of a counter as the private scalar.
		priv, err := crypto.ToECDSA(crypto.Keccak256([]byte{byte(i)}))
		if err != nil {
			t.Fatal(err)
		}
		pub := &priv.PublicKey
		for _, s := range []string{ChatKey(pub), CompressedHex(pub), DisplayKey(pub)} {
			if got := mustParse(t, s); !sameKey(got, pub) {
				t.Fatalf("round trip of %q gave %s", s, ChatKey(got))
			}
		}
		if d := DisplayKey(pub); !strings.HasPrefix(d, "zQ3s") {
			t.Errorf("DisplayKey = %q, want prefix zQ3s", d)
		}
		if s := ShortKey(pub); !strings.HasPrefix(s, "0x04") || len([]rune(s)) != 14 {
			t.Errorf("ShortKey = %q, want 0x04xxxx…xxxxx", s)
		}
	}
}

func FuzzParseChatKey(f *testing.F) {
	v := loadVectors(f).Keys[0]
	for _, s := range []string{
		v.ChatKey, strings.TrimPrefix(v.ChatKey, "0x"), v.Compressed, "0x" + v.Compressed,
		v.DisplayKey, "", "0x", "z", "zQ3", "0x04", "02" + strings.Repeat("ff", 32),
		"0x04" + strings.Repeat("00", 64), "m5wE", v.ChatKey[:131],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParseChatKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %q does not wrap ErrInvalidKey", err)
			}
			return
		}
		if !crypto.S256().IsOnCurve(pub.X, pub.Y) {
			t.Fatalf("accepted %q as an off-curve point", s)
		}
		forms := []string{ChatKey(pub), CompressedHex(pub), DisplayKey(pub)}
		for _, form := range forms {
			again, err := ParseChatKey(form)
			if err != nil {
				t.Fatalf("accepted %q but not its re-encoding %q: %v", s, form, err)
			}
			if !sameKey(again, pub) {
				t.Fatalf("%q re-encoded as %q parses to another key", s, form)
			}
		}
		// The input is one of the canonical forms, modulo "0x" and hex case.
		norm := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
		if s[0] == 'z' {
			norm = s
		}
		switch norm {
		case strings.TrimPrefix(forms[0], "0x"), strings.TrimPrefix(forms[1], "0x"), forms[2]:
		default:
			t.Fatalf("accepted %q, which is no canonical form of %s", s, forms[0])
		}
	})
}

// TestParseChatKey_longInputBoundedWork: ParseChatKey is reached from unauthenticated
// paths (GET /identicons/{id}) and base58 decoding is quadratic in the input (issue 15
// finding 3: 400,000 characters took 24.7 s of CPU), so over-long text must be rejected
// before any decoding. The bytes allocated per call witness the work done without
// timing it: mr-tron/base58 allocates about 2.5 bytes per input character before it
// starts, the length check nothing but the error.
func TestParseChatKey_longInputBoundedWork(t *testing.T) {
	const n = 64 << 10
	for _, tc := range []struct{ name, in string }{
		{"multibase", "z" + strings.Repeat("Q3sh", n/4)},
		{"hex", "0x04" + strings.Repeat("ab", n/2)},
		{"bad prefix", strings.Repeat("x", n)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			allocated := allocatedBy(func() { _, err = ParseChatKey(tc.in) })
			if !errors.Is(err, ErrKeyLength) && !errors.Is(err, ErrKeyEncoding) {
				t.Fatalf("error %v, want ErrKeyLength or ErrKeyEncoding", err)
			}
			if allocated > 32<<10 {
				t.Errorf("rejecting %d characters allocated %d bytes: the input was decoded before its length was checked",
					len(tc.in), allocated)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error quotes the input: %d bytes", len(err.Error()))
			}
		})
	}
}

// allocatedBy returns the bytes the heap grew by while f ran (the test runs alone).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// BenchmarkParseChatKey_long is the CPU figure of finding 3: a 400,000-character
// multibase "key", as sent in GET /identicons/z….
func BenchmarkParseChatKey_long(b *testing.B) {
	in := "z" + strings.Repeat("Q3sh", 100_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChatKey(in); err == nil {
			b.Fatal("accepted")
		}
	}
}
