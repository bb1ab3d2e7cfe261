package ratchet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"math/big"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/crypto/ecies"
	dr "github.com/status-im/doubleratchet"
)

// Sizes on the wire.
const (
	compressedKeyLen = 33 // compressed secp256k1 public key
	privateKeyLen    = 32
	signatureLen     = 65 // [R || S || V]
	sharedKeyLen     = 32 // DH output: the x-coordinate
	gcmNonceLen      = 12
	gcmTagLen        = 16
)

// The KDF constants of status-go's EthereumCrypto (PROTOCOL.md §5.5). They are part of the
// wire contract: changing one breaks every session.
var (
	kdfRootInfo    = "rsZUpEuXUqqwXBvSy3EcievAh4cMj6QL"
	kdfMessageInfo = "pcwSByyx2CRdryCffXJwy7xgVZWtW5Sh"
)

const (
	kdfChainInput   = 0x0f
	kdfMessageInput = 0x10
)

var secp256k1N = crypto.S256().Params().N

// generateKey draws a secp256k1 private key from rnd: 32 bytes, retried until the scalar is
// in [1, n-1]. It reads rnd directly (not through ecdsa.GenerateKey, which ignores its
// reader since Go 1.26) so that tests and vectors can fix every key.
func generateKey(rnd io.Reader) (*ecdsa.PrivateKey, error) {
	var b [privateKeyLen]byte
	for range 16 {
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return nil, fmt.Errorf("generate key: %w: %w", ErrRandom, err)
		}
		d := new(big.Int).SetBytes(b[:])
		if d.Sign() == 0 || d.Cmp(secp256k1N) >= 0 {
			continue
		}
		k, err := crypto.ToECDSA(b[:])
		if err != nil {
			return nil, fmt.Errorf("generate key: %w: %w", ErrRandom, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("generate key: %w: 16 draws out of range", ErrRandom)
}

// scalarKey wraps a 32-byte private scalar for dh without deriving its public key (a
// scalar multiplication dh does not need).
func scalarKey(b []byte) (*ecdsa.PrivateKey, error) {
	d := new(big.Int).SetBytes(b)
	if len(b) != privateKeyLen || d.Sign() == 0 || d.Cmp(secp256k1N) >= 0 {
		return nil, fmt.Errorf("private key: %w", ErrMalformed)
	}
	return &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: crypto.S256()}, D: d}, nil
}

// decompress parses a 33-byte compressed public key, rejecting anything else.
func decompress(b []byte) (*ecdsa.PublicKey, error) {
	if len(b) != compressedKeyLen {
		return nil, fmt.Errorf("public key of %d bytes: %w", len(b), ErrMalformed)
	}
	k, err := crypto.DecompressPubkey(b)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", ErrMalformed)
	}
	return k, nil
}

// validPublic accepts only points on secp256k1.
func validPublic(k *ecdsa.PublicKey) bool {
	return k != nil && k.X != nil && k.Y != nil && k.X.Sign() != 0 && k.Y.Sign() != 0 &&
		k.Curve == crypto.S256() && crypto.S256().IsOnCurve(k.X, k.Y)
}

// dh is the Diffie-Hellman of status-go's PerformDH: the 32-byte x-coordinate of prv·pub,
// left-padded (geth ecies.GenerateShared with 16+16 bytes).
func dh(prv *ecdsa.PrivateKey, pub *ecdsa.PublicKey) ([]byte, error) {
	k, err := ecies.ImportECDSA(prv).GenerateShared(ecies.ImportECDSAPublic(pub), sharedKeyLen/2, sharedKeyLen/2)
	if err != nil {
		return nil, fmt.Errorf("diffie-hellman: %w: %w", ErrMalformed, err)
	}
	return k, nil
}

// sameKey reports whether two public keys are the same point.
func sameKey(a, b *ecdsa.PublicKey) bool {
	return a != nil && b != nil && a.X.Cmp(b.X) == 0 && a.Y.Cmp(b.Y) == 0
}

// sealGCM is status-go's EncryptSymmetric (the DH mode cipher, also Whisper's symmetric
// format): AES-256-GCM, random 12-byte nonce appended after ciphertext ‖ tag.
func sealGCM(rnd io.Reader, key, pt []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	var nonce [gcmNonceLen]byte
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return nil, fmt.Errorf("seal: %w: %w", ErrRandom, err)
	}
	out := aead.Seal(make([]byte, 0, len(pt)+gcmTagLen+gcmNonceLen), nonce[:], pt, nil)
	return append(out, nonce[:]...), nil
}

// openGCM opens what sealGCM produced.
func openGCM(key, data []byte) ([]byte, error) {
	if len(data) < gcmNonceLen+gcmTagLen {
		return nil, fmt.Errorf("dh payload of %d bytes: %w", len(data), ErrDecrypt)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	split := len(data) - gcmNonceLen
	pt, err := aead.Open(nil, data[split:], data[:split], nil)
	if err != nil {
		return nil, fmt.Errorf("dh payload: %w", ErrDecrypt)
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes key: %w", ErrDecrypt)
	}
	return cipher.NewGCM(block)
}

// drCrypto is the doubleratchet Crypto of status-go's EthereumCrypto (PROTOCOL.md §5.5):
// secp256k1 ratchet keys (33-byte compressed), x-coordinate DH, HKDF-SHA256 root KDF,
// HMAC-SHA256 chain KDF, AES-256-CTR + HMAC-SHA256 message encryption. Unlike status-go it
// never panics on short input (Decrypt checks lengths) and compares tags in constant time.
type drCrypto struct {
	rand io.Reader
}

var _ dr.Crypto = drCrypto{}

// dhPair is a ratchet key pair: 32-byte private scalar, 33-byte compressed public key.
type dhPair struct {
	prv, pub dr.Key
}

func (p dhPair) PrivateKey() dr.Key { return p.prv }
func (p dhPair) PublicKey() dr.Key  { return p.pub }

// GenerateDH draws a fresh ratchet key pair from the injected entropy source.
func (c drCrypto) GenerateDH() (dr.DHPair, error) {
	k, err := generateKey(c.rand)
	if err != nil {
		return nil, err
	}
	return dhPair{prv: crypto.FromECDSA(k), pub: crypto.CompressPubkey(&k.PublicKey)}, nil
}

// DH returns the x-coordinate of the pair's private key times the remote ratchet key.
func (c drCrypto) DH(pair dr.DHPair, pub dr.Key) (dr.Key, error) {
	prv, err := scalarKey(pair.PrivateKey())
	if err != nil {
		return nil, err
	}
	remote, err := decompress(pub)
	if err != nil {
		return nil, fmt.Errorf("ratchet key: %w", err)
	}
	return dh(prv, remote)
}

// KdfRK: HKDF-SHA256(IKM = dhOut, salt = rk, info = kdfRootInfo) → root key ‖ chain key ‖
// header key, 32 bytes each.
func (c drCrypto) KdfRK(rk, dhOut dr.Key) (dr.Key, dr.Key, dr.Key) {
	buf, err := hkdf.Key(sha256.New, dhOut, rk, kdfRootInfo, 96)
	if err != nil { // only for lengths over 255·32 bytes
		panic("ratchet: hkdf of 96 bytes: " + err.Error())
	}
	return dr.Key(buf[:32:32]), dr.Key(buf[32:64:64]), dr.Key(buf[64:96:96])
}

// KdfCK: next chain key = HMAC-SHA256(ck, 0x0f), message key = HMAC-SHA256(ck, 0x10).
func (c drCrypto) KdfCK(ck dr.Key) (dr.Key, dr.Key) {
	h := hmac.New(sha256.New, ck)
	h.Write([]byte{kdfChainInput})
	chain := h.Sum(make([]byte, 0, 32))
	h.Reset()
	h.Write([]byte{kdfMessageInput})
	mk := h.Sum(make([]byte, 0, 32))
	return chain, mk
}

// messageKeys derives encryption key, authentication key and IV from a message key:
// HKDF-SHA256(IKM = mk, salt = 32 zero bytes, info = kdfMessageInfo) → 32 ‖ 32 ‖ 16.
func messageKeys(mk []byte) (enc, auth, iv []byte) {
	buf, err := hkdf.Key(sha256.New, mk, make([]byte, 32), kdfMessageInfo, 80)
	if err != nil {
		panic("ratchet: hkdf of 80 bytes: " + err.Error())
	}
	return buf[:32:32], buf[32:64:64], buf[64:80:80]
}

// Encrypt: IV ‖ AES-256-CTR(encKey, IV, pt) ‖ HMAC-SHA256(authKey, ad ‖ IV ‖ ct).
func (c drCrypto) Encrypt(mk dr.Key, pt, ad []byte) ([]byte, error) {
	enc, auth, iv := messageKeys(mk)
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("message key: %w", err)
	}
	out := make([]byte, aes.BlockSize+len(pt), aes.BlockSize+len(pt)+sha256.Size)
	copy(out, iv)
	cipher.NewCTR(block, iv).XORKeyStream(out[aes.BlockSize:], pt)
	return append(out, tag(auth, out, ad)...), nil
}

// Decrypt checks the tag in constant time, then decrypts.
func (c drCrypto) Decrypt(mk dr.Key, data, ad []byte) ([]byte, error) {
	if len(data) < aes.BlockSize+sha256.Size {
		return nil, fmt.Errorf("ciphertext of %d bytes: %w", len(data), ErrDecrypt)
	}
	ct, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	enc, auth, _ := messageKeys(mk)
	if !hmac.Equal(tag(auth, ct, ad), sum) {
		return nil, fmt.Errorf("message tag: %w", ErrDecrypt)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("message key: %w", err)
	}
	pt := make([]byte, len(ct)-aes.BlockSize)
	cipher.NewCTR(block, ct[:aes.BlockSize]).XORKeyStream(pt, ct[aes.BlockSize:])
	return pt, nil
}

func tag(auth, ct, ad []byte) []byte {
	h := hmac.New(sha256.New, auth)
	h.Write(ad)
	h.Write(ct)
	return h.Sum(nil)
}
