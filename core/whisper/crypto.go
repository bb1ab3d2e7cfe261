package whisper

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/crypto/ecies"
)

// SymKey is a 32-byte AES-256-GCM key with its cipher prepared once, so that filters open
// envelopes without a key schedule per message. It is safe for concurrent use.
type SymKey struct {
	key  [aesKeyLength]byte
	aead cipher.AEAD
	hash common.Hash // keccak256(key): identifies the key without revealing it
}

// NewSymKey wraps a raw key. It must be 32 bytes and not all zeros (geth's integrity check).
func NewSymKey(key []byte) (*SymKey, error) {
	if len(key) != aesKeyLength {
		return nil, fmt.Errorf("symmetric key of %d bytes: %w", len(key), ErrInvalidKey)
	}
	if allZero(key) {
		return nil, fmt.Errorf("symmetric key of zeros: %w", ErrInvalidKey)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("symmetric key: %w: %w", ErrInvalidKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("symmetric key: %w: %w", ErrInvalidKey, err)
	}
	k := &SymKey{aead: aead, hash: crypto.Keccak256Hash(key)}
	copy(k.key[:], key)
	return k, nil
}

// SymKeyFromPassword derives the key Status and geth derive from a password (a public chat
// name, "status-offline-inbox", …): PBKDF2-HMAC-SHA256, empty salt, 65356 rounds, 32 bytes.
// It costs tens of milliseconds: derive once per chat, not per message.
func SymKeyFromPassword(password string) (*SymKey, error) {
	raw, err := DeriveKeyFromPassword(password)
	if err != nil {
		return nil, err
	}
	return NewSymKey(raw)
}

// DeriveKeyFromPassword returns the raw 32-byte PBKDF2 key of SymKeyFromPassword.
func DeriveKeyFromPassword(password string) ([]byte, error) {
	raw, err := pbkdf2.Key(sha256.New, password, nil, KeyDerivationIterations, aesKeyLength)
	if err != nil {
		return nil, fmt.Errorf("derive key from password: %w", err)
	}
	return raw, nil
}

// Bytes returns a copy of the raw key.
func (k *SymKey) Bytes() []byte { return append([]byte(nil), k.key[:]...) }

// Hash is keccak256 of the key, the way geth identifies symmetric keys.
func (k *SymKey) Hash() common.Hash { return k.hash }

// Equal reports whether two keys are the same, in constant time.
func (k *SymKey) Equal(o *SymKey) bool {
	return o != nil && subtle.ConstantTimeCompare(k.key[:], o.key[:]) == 1
}

// String never reveals the key.
func (k *SymKey) String() string { return fmt.Sprintf("symkey(%x…)", k.hash[:4]) }

// encryptSymmetric seals plaintext in place (pt must have spare capacity for the tag and
// nonce to avoid a copy) and returns ciphertext ‖ tag ‖ nonce.
func (k *SymKey) encrypt(rnd io.Reader, pt []byte) ([]byte, error) {
	var nonce [aesNonceLength]byte
	if err := readRandom(rnd, nonce[:]); err != nil {
		return nil, fmt.Errorf("encrypt symmetric: %w", err)
	}
	out := k.aead.Seal(pt[:0], nonce[:], pt, nil)
	return append(out, nonce[:]...), nil
}

// decrypt opens ciphertext ‖ tag ‖ nonce into a new buffer.
func (k *SymKey) decrypt(data []byte) ([]byte, error) {
	if len(data) < aesNonceLength+aesTagLength {
		return nil, fmt.Errorf("decrypt symmetric %d bytes: %w", len(data), ErrDataTooShort)
	}
	split := len(data) - aesNonceLength
	pt, err := k.aead.Open(nil, data[split:], data[:split], nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt symmetric: %w", ErrDecrypt)
	}
	return pt, nil
}

// encryptAsymmetric is go-ethereum's ECIES (secp256k1, AES-128-CTR, HMAC-SHA-256, no shared
// info), the exact construction Whisper uses.
func encryptAsymmetric(rnd io.Reader, dst *ecdsa.PublicKey, pt []byte) ([]byte, error) {
	if err := validatePublicKey(dst); err != nil {
		return nil, fmt.Errorf("encrypt asymmetric: %w", err)
	}
	out, err := ecies.Encrypt(rnd, ecies.ImportECDSAPublic(dst), pt, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("encrypt asymmetric: %w", err)
	}
	return out, nil
}

func decryptAsymmetric(key *ecdsa.PrivateKey, data []byte) ([]byte, error) {
	if len(data) < eciesOverhead {
		return nil, fmt.Errorf("decrypt asymmetric %d bytes: %w", len(data), ErrDataTooShort)
	}
	pt, err := ecies.ImportECDSA(key).Decrypt(data, nil, nil)
	switch {
	case err == nil:
		return pt, nil
	case errors.Is(err, ecies.ErrInvalidPublicKey):
		return nil, fmt.Errorf("decrypt asymmetric: %w", ErrNotForUs)
	default:
		return nil, fmt.Errorf("decrypt asymmetric: %w", ErrDecrypt)
	}
}

// validatePublicKey accepts only points on secp256k1.
func validatePublicKey(k *ecdsa.PublicKey) error {
	if k == nil || k.X == nil || k.Y == nil || k.X.Sign() == 0 || k.Y.Sign() == 0 {
		return fmt.Errorf("public key: %w", ErrInvalidKey)
	}
	if k.Curve != crypto.S256() || !crypto.S256().IsOnCurve(k.X, k.Y) {
		return fmt.Errorf("public key not on secp256k1: %w", ErrInvalidKey)
	}
	return nil
}

func validatePrivateKey(k *ecdsa.PrivateKey) error {
	if k == nil || k.D == nil || k.D.Sign() == 0 {
		return fmt.Errorf("private key: %w", ErrInvalidKey)
	}
	return validatePublicKey(&k.PublicKey)
}

// readRandom fills b and rejects an all-zero result, the failure geth guards against.
func readRandom(rnd io.Reader, b []byte) error {
	if _, err := io.ReadFull(rnd, b); err != nil {
		return fmt.Errorf("%w: %w", ErrRandom, err)
	}
	if len(b) > 3 && allZero(b) {
		return fmt.Errorf("%w: %d zero bytes", ErrRandom, len(b))
	}
	return nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}
