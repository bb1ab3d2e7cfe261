package identity

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"
)

const (
	// SecretLen is the length of a secret made by GenerateSecret and the minimum length
	// NewSecret and ParseSecret accept.
	SecretLen = 32
	// MaxSecretLen bounds the secret length; longer input is almost certainly not a secret.
	MaxSecretLen = 1024
	// MaxPuppetIDField is the largest length, in bytes, of each PuppetID field.
	MaxPuppetIDField = 255

	// puppetTag is the version tag that starts every derivation message. Changing it, or
	// anything else in the encoding PuppetKey documents, changes every puppet's identity.
	puppetTag = "statusgate-puppet-v1"

	// redacted is what a Secret prints as, in every format and in logs.
	redacted = "[redacted]"
)

// Secret is the gateway secret from which puppet keys are derived. Anyone holding it can
// sign as every puppet, so it never prints itself: String, GoString and LogValue all give
// "[redacted]"; only Hex reveals it, for writing the secret file. A Secret is immutable
// after construction and safe for concurrent use.
type Secret struct {
	b []byte
}

// NewSecret returns a Secret holding a copy of b. It fails, wrapping ErrInvalidSecret,
// when b is shorter than SecretLen or longer than MaxSecretLen bytes.
func NewSecret(b []byte) (*Secret, error) {
	if len(b) < SecretLen || len(b) > MaxSecretLen {
		return nil, fmt.Errorf("check secret length: %w: %d bytes, want %d to %d",
			ErrInvalidSecret, len(b), SecretLen, MaxSecretLen)
	}
	return &Secret{b: append([]byte(nil), b...)}, nil
}

// GenerateSecret returns a new SecretLen-byte secret read from rand (crypto/rand.Reader
// in production).
func GenerateSecret(rand io.Reader) (*Secret, error) {
	if rand == nil {
		return nil, fmt.Errorf("generate secret: %w: nil random source", ErrInvalidSecret)
	}
	b := make([]byte, SecretLen)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	return &Secret{b: b}, nil
}

// ParseSecret decodes a secret written by Hex. Surrounding white space (such as the
// trailing newline of a secret file) is ignored, and so is a "0x" prefix. It fails,
// wrapping ErrInvalidSecret, when s is not hex or decodes to a bad length. The error never
// quotes s.
func ParseSecret(s string) (*Secret, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil {
		// hex errors quote the offending byte; a secret may not be echoed, even in part.
		return nil, fmt.Errorf("parse secret: %w: not hex", ErrInvalidSecret)
	}
	sec, err := NewSecret(b)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("parse secret: %w", err)
	}
	return sec, nil
}

// Hex returns the secret as lower-case hex without prefix, the form ParseSecret reads.
// It is the only method that reveals the secret.
func (s *Secret) Hex() string {
	if s == nil {
		return ""
	}
	return hex.EncodeToString(s.b)
}

// Equal reports whether s and o hold the same secret, in time that depends only on the
// lengths. Two nil secrets are equal.
func (s *Secret) Equal(o *Secret) bool {
	if s == nil || o == nil {
		return s == o
	}
	return subtle.ConstantTimeCompare(s.b, o.b) == 1
}

// String returns "[redacted]", so that printing a Secret by accident reveals nothing.
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", for %#v.
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer: a Secret logs as "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// PuppetID names the remote user a puppet stands for: the bridged network ("matrix",
// "slack", "irc"), the gateway's account on it (the bot or appservice user, the workspace,
// the server) and the remote user's ID on that account. Each field must be non-empty,
// valid UTF-8 and at most MaxPuppetIDField bytes. Fields are compared byte for byte, so
// callers normalise IDs (case, Unicode form) before deriving.
type PuppetID struct {
	Network string
	Account string
	User    string
}

// Validate checks each field, wrapping ErrInvalidPuppetID and naming the field.
func (id PuppetID) Validate() error {
	for _, f := range [...]struct{ name, v string }{
		{"network", id.Network}, {"account", id.Account}, {"user", id.User},
	} {
		switch {
		case f.v == "":
			return fmt.Errorf("check puppet %s: %w: empty", f.name, ErrInvalidPuppetID)
		case len(f.v) > MaxPuppetIDField:
			return fmt.Errorf("check puppet %s: %w: %d bytes, max %d",
				f.name, ErrInvalidPuppetID, len(f.v), MaxPuppetIDField)
		case !utf8.ValidString(f.v):
			return fmt.Errorf("check puppet %s: %w: not valid UTF-8", f.name, ErrInvalidPuppetID)
		}
	}
	return nil
}

// PuppetKey derives the secp256k1 private key of the puppet for id. The same secret and
// id always give the same key; without the secret, keys can be neither predicted nor
// linked to each other or to id.
//
// The derivation is a compatibility promise: changing any part of it changes the
// identity of every puppet. With uvarint the unsigned LEB128 of encoding/binary
// (PutUvarint) and ‖ concatenation:
//
//	msg(c) = "statusgate-puppet-v1"                  (20 ASCII bytes, no length prefix)
//	       ‖ uvarint(len(Network)) ‖ Network
//	       ‖ uvarint(len(Account)) ‖ Account
//	       ‖ uvarint(len(User))    ‖ User
//	       ‖ uint32 big-endian c                     (4 bytes)
//	d(c)   = HMAC-SHA256(key = secret bytes, msg(c)), read as a 256-bit big-endian integer
//
// for c = 0, 1, 2, …, the first d(c) with 1 ≤ d(c) ≤ n−1 (n the order of secp256k1) is
// the private key. A retry has probability about 2⁻¹²⁸, so c is 0 in practice. Lengths
// are in bytes of the UTF-8 strings as given.
//
// It fails, wrapping ErrInvalidPuppetID, when id is invalid, and wrapping
// ErrInvalidSecret when s is nil or empty.
func (s *Secret) PuppetKey(id PuppetID) (*ecdsa.PrivateKey, error) {
	if s == nil || len(s.b) == 0 {
		return nil, fmt.Errorf("derive puppet key: %w: no secret", ErrInvalidSecret)
	}
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("derive puppet key: %w", err)
	}
	// Tag, three fields of at most 255 bytes with 2-byte uvarint prefixes, counter.
	var buf [len(puppetTag) + 3*(binary.MaxVarintLen16+MaxPuppetIDField) + 4]byte
	msg := append(buf[:0], puppetTag...)
	for _, f := range [...]string{id.Network, id.Account, id.User} {
		msg = binary.AppendUvarint(msg, uint64(len(f)))
		msg = append(msg, f...)
	}
	prefix := len(msg)
	mac := hmac.New(sha256.New, s.b)
	var digest [sha256.Size]byte
	for c := uint64(0); c <= math.MaxUint32; c++ {
		msg = binary.BigEndian.AppendUint32(msg[:prefix], uint32(c))
		mac.Reset()
		mac.Write(msg)
		mac.Sum(digest[:0])
		if _, ok := scalarOf(digest); !ok {
			continue
		}
		key, err := crypto.ToECDSA(digest[:])
		clear(digest[:])
		if err != nil {
			return nil, fmt.Errorf("derive puppet key: %w", err)
		}
		return key, nil
	}
	// Unreachable: 2³² consecutive rejections have probability about 2^(−128·2³²).
	return nil, fmt.Errorf("derive puppet key: %w: no scalar in 2^32 tries", ErrInvalidSecret)
}

// scalarOf reads digest as a big-endian integer d and reports whether it is a valid
// secp256k1 private key, 1 ≤ d ≤ n−1.
func scalarOf(digest [32]byte) (*big.Int, bool) {
	d := new(big.Int).SetBytes(digest[:])
	return d, d.Sign() > 0 && d.Cmp(crypto.S256().Params().N) < 0
}
