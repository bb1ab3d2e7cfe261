package identity

import (
	"crypto/ecdsa"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/mr-tron/base58"
)

// Sizes of the binary key forms.
const (
	// UncompressedLen is the length of 04‖X‖Y.
	UncompressedLen = 65
	// CompressedLen is the length of (02|03)‖X.
	CompressedLen = 33
	// ChatKeyLen is the length of the chat key string "0x04…": "0x" + 130 hex characters.
	ChatKeyLen = 2 + 2*UncompressedLen
)

// multicodecSecp256k1Pub is the uvarint of multicodec 0xe7 (secp256k1-pub), the prefix of
// the multibase display key (PROTOCOL.md §8.3).
var multicodecSecp256k1Pub = [2]byte{0xe7, 0x01}

// multibaseBase58btc is the multibase prefix of base58btc.
const multibaseBase58btc = 'z'

// multibaseKeyChars is the length of a multibase display key after its 'z': base58 of
// the 35 bytes e7 01 ‖ compressed key, whose first byte 0xe7 fixes the digit count at
// 48. Longer text is rejected before decoding: base58 decoding is quadratic in its
// input, and ParseChatKey is reached from unauthenticated paths (GET /identicons/).
const multibaseKeyChars = 48

// ParseChatKey parses a secp256k1 public key in any of the forms Status uses:
//
//   - the 2019 chat key: 130 hex characters 04‖X‖Y, with or without "0x";
//   - the compressed key: 66 hex characters (02|03)‖X, with or without "0x";
//   - the multibase display key: 'z' + base58btc(e7 01 ‖ compressed), "zQ3…".
//
// Hex may be upper or lower case. Surrounding white space is not accepted. The point is
// checked to lie on secp256k1; every error wraps ErrInvalidKey and one of ErrKeyEncoding,
// ErrKeyLength, ErrMulticodec or ErrNotOnCurve.
func ParseChatKey(s string) (*ecdsa.PublicKey, error) {
	b, err := decodeKeyText(s)
	if err != nil {
		return nil, fmt.Errorf("parse chat key: %w", err)
	}
	pub, err := unmarshalKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse chat key: %w", err)
	}
	return pub, nil
}

// decodeKeyText turns the text form into key bytes (65 or 33 bytes when valid).
func decodeKeyText(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty string", ErrKeyEncoding)
	}
	if s[0] == multibaseBase58btc {
		if n := len(s) - 1; n > multibaseKeyChars {
			return nil, fmt.Errorf("%w: multibase key is %d characters, want %d", ErrKeyLength, n, multibaseKeyChars)
		}
		raw, err := base58.Decode(s[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: base58btc: %v", ErrKeyEncoding, err)
		}
		if len(raw) != len(multicodecSecp256k1Pub)+CompressedLen {
			return nil, fmt.Errorf("%w: multibase key is %d bytes, want %d",
				ErrKeyLength, len(raw), len(multicodecSecp256k1Pub)+CompressedLen)
		}
		if raw[0] != multicodecSecp256k1Pub[0] || raw[1] != multicodecSecp256k1Pub[1] {
			return nil, fmt.Errorf("%w: got %x", ErrMulticodec, raw[:2])
		}
		return raw[2:], nil
	}
	h := s
	if strings.HasPrefix(h, "0x") || strings.HasPrefix(h, "0X") {
		h = h[2:]
	} else if !isHex(h[:1]) {
		return nil, fmt.Errorf("%w: unsupported prefix %q, want hex (0x04…, 02…/03…) or multibase base58btc (z…)",
			ErrKeyEncoding, firstRune(s))
	}
	if n := len(h); n != 2*UncompressedLen && n != 2*CompressedLen {
		return nil, fmt.Errorf("%w: %d hex characters, want %d or %d",
			ErrKeyLength, n, 2*UncompressedLen, 2*CompressedLen)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: hex: %v", ErrKeyEncoding, err)
	}
	return b, nil
}

// unmarshalKey decodes 04‖X‖Y or (02|03)‖X and checks the point.
func unmarshalKey(b []byte) (*ecdsa.PublicKey, error) {
	switch {
	case len(b) == UncompressedLen && b[0] == 0x04:
		x := new(big.Int).SetBytes(b[1:33])
		y := new(big.Int).SetBytes(b[33:])
		if !onCurve(x, y) {
			return nil, ErrNotOnCurve
		}
		pub, err := crypto.UnmarshalPubkey(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotOnCurve, err)
		}
		return pub, nil
	case len(b) == CompressedLen && (b[0] == 0x02 || b[0] == 0x03):
		pub, err := crypto.DecompressPubkey(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotOnCurve, err)
		}
		if !onCurve(pub.X, pub.Y) {
			return nil, ErrNotOnCurve
		}
		return pub, nil
	case len(b) == UncompressedLen || len(b) == CompressedLen:
		return nil, fmt.Errorf("%w: prefix byte %#02x for a %d-byte key", ErrKeyLength, b[0], len(b))
	default:
		return nil, fmt.Errorf("%w: %d bytes, want %d or %d", ErrKeyLength, len(b), UncompressedLen, CompressedLen)
	}
}

// onCurve reports whether (x, y) is a point of secp256k1 with coordinates in [0, p).
func onCurve(x, y *big.Int) bool {
	p := crypto.S256().Params().P
	if x.Sign() < 0 || y.Sign() < 0 || x.Cmp(p) >= 0 || y.Cmp(p) >= 0 {
		return false
	}
	return crypto.S256().IsOnCurve(x, y)
}

// ChatKey formats pub as the 2019 chat key: "0x04" + X + Y in lower-case hex, 132
// characters in all. 1:1 chat ids and topic strings are derived from this string. It
// returns "" for a nil key.
func ChatKey(pub *ecdsa.PublicKey) string {
	if !usable(pub) {
		return ""
	}
	return "0x" + hex.EncodeToString(crypto.FromECDSAPub(pub))
}

// CompressedHex formats pub as "0x" + the 33-byte compressed key (02|03 ‖ X) in lower-case
// hex. It returns "" for a nil key.
func CompressedHex(pub *ecdsa.PublicKey) string {
	if !usable(pub) {
		return ""
	}
	return "0x" + hex.EncodeToString(crypto.CompressPubkey(pub))
}

// DisplayKey formats pub as the multibase display key of mid-2020 Status:
// "z" + base58btc(e7 01 ‖ compressed key), which always starts "zQ3s". It returns "" for a
// nil key.
func DisplayKey(pub *ecdsa.PublicKey) string {
	if !usable(pub) {
		return ""
	}
	raw := make([]byte, 0, len(multicodecSecp256k1Pub)+CompressedLen)
	raw = append(raw, multicodecSecp256k1Pub[:]...)
	raw = append(raw, crypto.CompressPubkey(pub)...)
	return string(multibaseBase58btc) + base58.Encode(raw)
}

// ShortKey formats pub as the short form shown beside an alias where the key matters:
// "0x" + the first 6 hex characters of the 130-character key + "…" + its last 5, for
// example "0x04261c…88bc6". It returns "" for a nil key.
func ShortKey(pub *ecdsa.PublicKey) string {
	k := ChatKey(pub)
	if k == "" {
		return ""
	}
	return k[:8] + "…" + k[len(k)-5:]
}

// usable reports whether pub has coordinates to format.
func usable(pub *ecdsa.PublicKey) bool {
	return pub != nil && pub.X != nil && pub.Y != nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// firstRune returns the first character of s for error messages.
func firstRune(s string) string {
	for _, r := range s {
		return string(r)
	}
	return ""
}
