package whisper

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// MessageParams says how Wrap turns a payload into a sealed envelope.
type MessageParams struct {
	Topic   Topic
	Payload []byte
	// Padding is used verbatim when non-empty; otherwise random padding brings the
	// plaintext to a multiple of 256 bytes (a full 256 when already aligned).
	Padding []byte

	// Exactly one of KeySym and Dst: AES-256-GCM with KeySym, or ECIES to Dst.
	KeySym *SymKey
	Dst    *ecdsa.PublicKey
	// Src signs the message when set; receivers learn the signer's public key.
	Src *ecdsa.PrivateKey
	// Signers, when set, remembers Src's signature, so that opening the envelope
	// through the same Signers (this node's subscriptions: Service.Signers) recovers
	// nothing. node.Post sets it when a subscription of the node will open the post.
	Signers *Signers

	TTL      uint32        // seconds; 0 means DefaultTTL (50)
	PoW      float64       // see SealOptions.PoW
	WorkTime time.Duration // see SealOptions.WorkTime

	// MaxSize caps the envelope's Size; 0 means DefaultMaxMessageSize.
	MaxSize uint32
	// Clock and Rand default to time.Now and crypto/rand.
	Clock func() time.Time
	Rand  io.Reader
}

// ReceivedMessage is an opened envelope. Its slices alias one decrypted buffer and must
// be treated as read-only: filters hand the same message to every subscription sharing a key.
type ReceivedMessage struct {
	Payload   []byte
	Padding   []byte
	Signature []byte // 65 bytes, nil when unsigned
	// Src is the signer, nil when unsigned. A filter with LazySigner leaves it nil
	// too: its subscriber calls Signer when it needs the signer.
	Src *ecdsa.PublicKey

	Topic        Topic
	TTL          uint32
	Sent         uint32  // Expiry − TTL, Unix seconds
	PoW          float64 // the envelope's PoW
	EnvelopeHash common.Hash

	SymKeyHash common.Hash      // keccak256 of the key, when opened symmetrically
	Dst        *ecdsa.PublicKey // our public key, when opened asymmetrically

	// lazy is the signer not recovered yet (opened for a LazySigner filter), nil
	// otherwise. A pointer, so that a copy of the message (core/ratchet keeps trimmed
	// copies) shares one answer and copies no lock.
	lazy *lazySigner
}

// lazySigner recovers a message's signer on first use: signed is what the signature
// covers, signers the cache it recovers through; once guards src and err, which only
// Signer writes (never Src, which subscribers read without a lock).
type lazySigner struct {
	signed  []byte
	signers *Signers
	once    sync.Once
	src     *ecdsa.PublicKey
	err     error
}

// Signed reports whether the message carried a signature: a valid one, recovered into
// Src, or, opened for a filter with LazySigner, one that Signer has yet to recover.
func (m *ReceivedMessage) Signed() bool { return m.Src != nil || m.Signature != nil }

// Signer returns the key that signed the message: Src when it was recovered at opening,
// else recovered now (once: every later call, from any goroutine, gets the same answer).
// It is nil, nil for an unsigned message, and an error wrapping ErrBadSignature when the
// signature does not recover: such a message must be dropped, as a filter without
// LazySigner drops it before delivery. The key is shared: treat it as read-only.
func (m *ReceivedMessage) Signer() (*ecdsa.PublicKey, error) {
	if m.Src != nil || m.Signature == nil {
		return m.Src, nil
	}
	l := m.lazy
	if l == nil { // a signature without its signed bytes: not one we opened
		return nil, fmt.Errorf("recover message signer: %w: signed bytes unknown", ErrBadSignature)
	}
	l.once.Do(func() {
		l.src, l.err = l.signers.Recover(crypto.Keccak256(l.signed), m.Signature)
		if l.err != nil {
			l.err = fmt.Errorf("recover message signer: %w: %w", ErrBadSignature, l.err)
		}
	})
	return l.src, l.err
}

// sizeFieldLen is the number of bytes of the little-endian payload length: the fewest that
// hold len(payload), at least 1.
func sizeFieldLen(n int) int {
	s := 1
	for i := n; i >= 256; i /= 256 {
		s++
	}
	return s
}

// PaddingLength is the random padding Wrap adds to a payload of n bytes: the plaintext
// (flags, size field, payload, padding and, if signed, the signature) becomes a multiple
// of 256, and an already aligned message gets a full block.
func PaddingLength(n int, signed bool) int {
	raw := flagsLength + sizeFieldLen(n) + n
	if signed {
		raw += signatureLength
	}
	return padSizeLimit - raw%padSizeLimit
}

// Wrap frames, signs, encrypts and seals a message, as geth's NewSentMessage + Wrap do.
func Wrap(p *MessageParams) (*Envelope, error) {
	if (p.KeySym == nil) == (p.Dst == nil) {
		return nil, fmt.Errorf("wrap message: %w", ErrNoKey)
	}
	if p.Src != nil {
		if err := validatePrivateKey(p.Src); err != nil {
			return nil, fmt.Errorf("wrap message: signing %w", err)
		}
	}
	rnd, clock := p.Rand, p.Clock
	if rnd == nil {
		rnd = rand.Reader
	}
	if clock == nil {
		clock = time.Now
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	maxSize := p.MaxSize
	if maxSize == 0 {
		maxSize = DefaultMaxMessageSize
	}

	pt, err := frame(p, rnd)
	if err != nil {
		return nil, err
	}
	var data []byte
	if p.Dst != nil {
		data, err = encryptAsymmetric(rnd, p.Dst, pt)
	} else {
		data, err = p.KeySym.encrypt(rnd, pt)
	}
	if err != nil {
		return nil, fmt.Errorf("wrap message: %w", err)
	}
	if uint64(len(data))+EnvelopeHeaderLength > uint64(maxSize) {
		return nil, fmt.Errorf("wrap message of %d payload bytes: %d > %d: %w",
			len(p.Payload), len(data)+EnvelopeHeaderLength, maxSize, ErrEnvelopeTooLarge)
	}

	expiry := uint32(clock().Add(time.Duration(ttl) * time.Second).Unix())
	// Unsealed: raw holds only the data (Seal builds the envelope's RLP from its fields).
	unsealed := &Envelope{expiry: expiry, ttl: ttl, topic: p.Topic, raw: data, dataLen: uint32(len(data))}
	env, err := unsealed.Seal(SealOptions{PoW: p.PoW, WorkTime: p.WorkTime, Clock: clock})
	if err != nil {
		return nil, fmt.Errorf("wrap message: %w", err)
	}
	return env, nil
}

// frame builds flags ‖ size ‖ payload ‖ padding ‖ [signature] with spare capacity for the
// symmetric cipher's tag and nonce, so encryption does not reallocate.
func frame(p *MessageParams, rnd io.Reader) ([]byte, error) {
	n := len(p.Payload)
	sf := sizeFieldLen(n)
	if sf > 3 {
		return nil, fmt.Errorf("wrap message of %d payload bytes: %w", n, ErrEnvelopeTooLarge)
	}
	padLen := len(p.Padding)
	if padLen == 0 {
		padLen = PaddingLength(n, p.Src != nil)
	}
	size := flagsLength + sf + n + padLen
	if p.Src != nil {
		size += signatureLength
	}
	pt := make([]byte, flagsLength+sf, size+aesTagLength+aesNonceLength)
	pt[0] = byte(sf)
	var sizeBuf [4]byte
	binary.LittleEndian.PutUint32(sizeBuf[:], uint32(n))
	copy(pt[1:], sizeBuf[:sf])
	pt = append(pt, p.Payload...)
	if len(p.Padding) != 0 {
		pt = append(pt, p.Padding...)
	} else {
		start := len(pt)
		pt = pt[:start+padLen]
		if err := readRandom(rnd, pt[start:]); err != nil {
			return nil, fmt.Errorf("wrap message: padding: %w", err)
		}
	}
	if p.Src != nil {
		pt[0] |= signatureFlag // the flag is part of what is signed
		sig, err := p.Signers.Sign(crypto.Keccak256(pt), p.Src)
		if err != nil {
			return nil, fmt.Errorf("wrap message: sign: %w", err)
		}
		pt = append(pt, sig...)
	}
	return pt, nil
}

// OpenSymmetric decrypts the envelope with key and parses the message.
func (e *Envelope) OpenSymmetric(key *SymKey) (*ReceivedMessage, error) {
	return e.openSymmetric(key, nil, false)
}

// openSymmetric is OpenSymmetric with recoveries through signers; lazy leaves the
// signer to ReceivedMessage.Signer.
func (e *Envelope) openSymmetric(key *SymKey, signers *Signers, lazy bool) (*ReceivedMessage, error) {
	pt, err := key.decrypt(e.Data())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", e, err)
	}
	m, err := e.parse(pt, signers, lazy)
	if err != nil {
		return nil, err
	}
	m.SymKeyHash = key.hash
	return m, nil
}

// OpenAsymmetric decrypts the envelope with our private key and parses the message.
func (e *Envelope) OpenAsymmetric(key *ecdsa.PrivateKey) (*ReceivedMessage, error) {
	return e.openAsymmetric(key, nil, false)
}

func (e *Envelope) openAsymmetric(key *ecdsa.PrivateKey, signers *Signers, lazy bool) (*ReceivedMessage, error) {
	pt, err := decryptAsymmetric(key, e.Data())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", e, err)
	}
	m, err := e.parse(pt, signers, lazy)
	if err != nil {
		return nil, err
	}
	m.Dst = &key.PublicKey
	return m, nil
}

func (e *Envelope) parse(pt []byte, signers *Signers, lazy bool) (*ReceivedMessage, error) {
	m, err := parsePlaintext(pt, signers, lazy)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", e, err)
	}
	m.Topic, m.TTL, m.Sent, m.PoW, m.EnvelopeHash = e.topic, e.ttl, e.Sent(), e.PoW(), e.hash
	return m, nil
}

// ParsePlaintext parses a decrypted message: flags, size field, payload, padding and, when
// flag 0x04 is set, a trailing signature whose signer is recovered. It accepts exactly the
// plaintexts geth v1.9.20 accepts without faulting, and rejects the rest with an error
// wrapping ErrMalformedMessage or ErrBadSignature.
func ParsePlaintext(pt []byte) (*ReceivedMessage, error) { return parsePlaintext(pt, nil, false) }

// parsePlaintext is ParsePlaintext recovering through signers; lazy checks the framing
// only and leaves the signer to ReceivedMessage.Signer.
func parsePlaintext(pt []byte, signers *Signers, lazy bool) (*ReceivedMessage, error) {
	end := len(pt)
	if end < flagsLength {
		return nil, fmt.Errorf("parse message: %w: empty", ErrMalformedMessage)
	}
	m := &ReceivedMessage{}
	flags := pt[0]
	if flags&signatureFlag != 0 {
		end -= signatureLength
		if end <= flagsLength {
			return nil, fmt.Errorf("parse message: %w: %d bytes cannot hold a signature", ErrMalformedMessage, len(pt))
		}
		m.Signature = pt[end:]
		if lazy {
			m.lazy = &lazySigner{signed: pt[:end], signers: signers}
		} else {
			pub, err := signers.Recover(crypto.Keccak256(pt[:end]), m.Signature)
			if err != nil {
				return nil, fmt.Errorf("parse message: %w: %w", ErrBadSignature, err)
			}
			m.Src = pub
		}
	}
	beg := flagsLength
	if sf := int(flags & sizeMask); sf != 0 {
		if beg+sf > end {
			return nil, fmt.Errorf("parse message: %w: size field past end", ErrMalformedMessage)
		}
		var n int
		for i := sf - 1; i >= 0; i-- {
			n = n<<8 | int(pt[beg+i])
		}
		beg += sf
		if n > end-beg {
			return nil, fmt.Errorf("parse message: %w: payload of %d bytes past end", ErrMalformedMessage, n)
		}
		m.Payload = pt[beg : beg+n]
		beg += n
	}
	m.Padding = pt[beg:end]
	return m, nil
}
