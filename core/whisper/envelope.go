package whisper

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// Envelope is the Whisper v6 wire unit: RLP [Expiry, TTL, Topic, Data, Nonce].
//
// An Envelope is immutable once built (DecodeEnvelope, NewEnvelope, Wrap, Seal) and safe
// to share between goroutines. It keeps the RLP bytes it was decoded from or encoded to:
// Hash is keccak256 of those bytes, re-encoding returns them unchanged, and Data aliases
// them (callers must not modify the slice Data returns).
//
// It is what the pool holds per envelope beside its bytes, so it is kept small (96 bytes):
// Data is an offset into raw rather than a second slice header, and the cached PoW is one
// atomic word rather than a sync.Once and a float.
type Envelope struct {
	expiry  uint32
	ttl     uint32
	topic   Topic
	dataOff uint32 // Data is raw[dataOff : dataOff+dataLen]
	dataLen uint32
	nonce   uint64
	raw     []byte // full RLP as received or encoded
	hash    common.Hash
	pow     atomic.Uint64 // math.Float64bits of PoW once computed; 0 before (PoW is never 0)
}

// NewEnvelope builds an envelope from its fields (nonce included, nothing sealed or
// checked beyond the size cap). data is copied.
func NewEnvelope(expiry, ttl uint32, topic Topic, data []byte, nonce uint64) (*Envelope, error) {
	if uint64(len(data))+EnvelopeHeaderLength > uint64(MaxMessageSize) {
		return nil, fmt.Errorf("build envelope of %d data bytes: %w", len(data), ErrEnvelopeTooLarge)
	}
	return newEnvelope(expiry, ttl, topic, data, nonce), nil
}

func newEnvelope(expiry, ttl uint32, topic Topic, data []byte, nonce uint64) *Envelope {
	var hdr [prefixMax]byte
	p := appendPrefix(hdr[:0], expiry, ttl, &topic, data, uintLen(nonce))
	raw := make([]byte, 0, len(p)+len(data)+uintLen(nonce))
	raw = append(raw, p...)
	raw = append(raw, data...)
	raw = appendUint(raw, nonce)
	e := &Envelope{expiry: expiry, ttl: ttl, topic: topic, nonce: nonce, raw: raw,
		dataOff: uint32(len(p)), dataLen: uint32(len(data))}
	e.hash = crypto.Keccak256Hash(raw)
	return e
}

// DecodeEnvelope parses one RLP-encoded envelope. It keeps raw (no copy): the caller must
// not modify raw afterwards. Trailing bytes, non-canonical integers, a Topic that is not
// 4 bytes, extra list elements and envelopes larger than MaxMessageSize are errors that
// wrap ErrMalformedEnvelope, ErrTopicLength or ErrEnvelopeTooLarge.
func DecodeEnvelope(raw []byte) (*Envelope, error) {
	if uint64(len(raw)) > uint64(MaxMessageSize)+EnvelopeHeaderLength+16 {
		return nil, fmt.Errorf("decode envelope of %d bytes: %w", len(raw), ErrEnvelopeTooLarge)
	}
	content, rest, err := rlp.SplitList(raw)
	if err != nil {
		return nil, fmt.Errorf("decode envelope: %w: %w", ErrMalformedEnvelope, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("decode envelope: %w: %d trailing bytes", ErrMalformedEnvelope, len(rest))
	}
	var e Envelope
	if e.expiry, content, err = splitUint32(content, "expiry"); err != nil {
		return nil, err
	}
	if e.ttl, content, err = splitUint32(content, "ttl"); err != nil {
		return nil, err
	}
	topic, content, err := rlp.SplitString(content)
	if err != nil {
		return nil, fmt.Errorf("decode envelope topic: %w: %w", ErrMalformedEnvelope, err)
	}
	if len(topic) != TopicLength {
		return nil, fmt.Errorf("decode envelope topic of %d bytes: %w", len(topic), ErrTopicLength)
	}
	copy(e.topic[:], topic)
	data, content, err := rlp.SplitString(content)
	if err != nil {
		return nil, fmt.Errorf("decode envelope data: %w: %w", ErrMalformedEnvelope, err)
	}
	if uint64(len(data))+EnvelopeHeaderLength > uint64(MaxMessageSize) {
		return nil, fmt.Errorf("decode envelope of %d data bytes: %w", len(data), ErrEnvelopeTooLarge)
	}
	// The list ends raw (no trailing bytes), so what follows data is a suffix of raw.
	e.dataOff, e.dataLen = uint32(len(raw)-len(content)-len(data)), uint32(len(data))
	if e.nonce, content, err = rlp.SplitUint64(content); err != nil {
		return nil, fmt.Errorf("decode envelope nonce: %w: %w", ErrMalformedEnvelope, err)
	}
	if len(content) != 0 {
		return nil, fmt.Errorf("decode envelope: %w: extra list elements", ErrMalformedEnvelope)
	}
	e.raw = raw
	e.hash = crypto.Keccak256Hash(raw)
	return &e, nil
}

// detached returns e backed by a buffer of exactly its own bytes. An envelope decoded
// from a packet aliases the packet's whole body (DecodeEnvelope keeps raw), which stays
// in memory as long as any envelope of it is: one pooled envelope of a 1 MiB packet of
// tiny envelopes would hold the whole MiB. The copy has the same fields and hash; its
// PoW is computed again when asked.
func (e *Envelope) detached() *Envelope {
	return &Envelope{expiry: e.expiry, ttl: e.ttl, topic: e.topic, dataOff: e.dataOff, dataLen: e.dataLen,
		nonce: e.nonce, raw: bytes.Clone(e.raw), hash: e.hash}
}

func splitUint32(b []byte, field string) (uint32, []byte, error) {
	v, rest, err := rlp.SplitUint64(b)
	if err != nil {
		return 0, b, fmt.Errorf("decode envelope %s: %w: %w", field, ErrMalformedEnvelope, err)
	}
	if v > math.MaxUint32 {
		return 0, b, fmt.Errorf("decode envelope %s: %w: %d overflows uint32", field, ErrMalformedEnvelope, v)
	}
	return uint32(v), rest, nil
}

// DecodeRLP implements rlp.Decoder so that packets carrying lists of envelopes decode
// with rlp.Decode. It must only be called on a zero Envelope.
func (e *Envelope) DecodeRLP(s *rlp.Stream) error {
	raw, err := s.Raw()
	if err == rlp.EOL {
		return err // the list decoder compares against EOL itself to find the end
	}
	if err != nil {
		return fmt.Errorf("decode envelope: %w: %w", ErrMalformedEnvelope, err)
	}
	d, err := DecodeEnvelope(raw)
	if err != nil {
		return err
	}
	e.expiry, e.ttl, e.topic, e.nonce, e.raw, e.hash = d.expiry, d.ttl, d.topic, d.nonce, d.raw, d.hash
	e.dataOff, e.dataLen = d.dataOff, d.dataLen
	return nil
}

// EncodeRLP implements rlp.Encoder: it writes the envelope's bytes unchanged.
func (e *Envelope) EncodeRLP(w io.Writer) error {
	_, err := w.Write(e.raw)
	return err
}

// Bytes returns the RLP encoding (the same bytes Hash is computed over). Do not modify it.
func (e *Envelope) Bytes() []byte { return e.raw }

// Expiry is the Unix time, in seconds, after which the envelope is dropped.
func (e *Envelope) Expiry() uint32 { return e.expiry }

// TTL is the envelope's time to live in seconds.
func (e *Envelope) TTL() uint32 { return e.ttl }

// Sent is the creation time Expiry − TTL, in Unix seconds.
func (e *Envelope) Sent() uint32 { return e.expiry - e.ttl }

// Topic is the envelope's routing tag.
func (e *Envelope) Topic() Topic { return e.topic }

// Data is the encrypted payload. Do not modify it.
func (e *Envelope) Data() []byte {
	end := e.dataOff + e.dataLen
	return e.raw[e.dataOff:end:end]
}

// Nonce is the proof-of-work nonce.
func (e *Envelope) Nonce() uint64 { return e.nonce }

// Hash is keccak256 of the envelope's RLP bytes as received: the envelope's identity for
// deduplication, confirmations and mailserver cursors.
func (e *Envelope) Hash() common.Hash { return e.hash }

// Size is 20 + len(Data), the size every limit and the seal target are computed on.
func (e *Envelope) Size() int { return EnvelopeHeaderLength + int(e.dataLen) }

// Bloom is the bloom filter of the envelope's topic.
func (e *Envelope) Bloom() Bloom { return TopicToBloom(e.topic) }

// Expired reports whether the envelope's expiry is before now.
func (e *Envelope) Expired(now time.Time) bool { return int64(e.expiry) < now.Unix() }

// CheckSize returns an error wrapping ErrEnvelopeTooLarge when Size exceeds max.
func (e *Envelope) CheckSize(max uint32) error {
	if uint64(e.Size()) > uint64(max) {
		return fmt.Errorf("envelope %x of %d bytes exceeds %d: %w", e.hash[:4], e.Size(), max, ErrEnvelopeTooLarge)
	}
	return nil
}

// String is a short description for logs; it never includes Data.
func (e *Envelope) String() string {
	return fmt.Sprintf("envelope %x topic=%s ttl=%d expiry=%d size=%d", e.hash[:4], e.topic, e.ttl, e.expiry, e.Size())
}
