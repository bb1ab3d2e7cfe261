package whisper

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// prefixMax bounds the RLP bytes that precede Data's content in an envelope: list header
// ≤ 9, two uint32 ≤ 5 each, topic 5, data header ≤ 9.
const prefixMax = 9 + 5 + 5 + 5 + 9

// appendPrefix appends the RLP bytes of the list [Expiry, TTL, Topic, Data, …] that come
// before Data's content, where tailLen is the encoded size of the elements after Data (0
// for the short form used by PoW, the nonce's size for a full envelope). Writing the
// prefix, then Data, then the tail gives the exact RLP without copying Data.
func appendPrefix(b []byte, expiry, ttl uint32, topic *Topic, data []byte, tailLen int) []byte {
	dh := dataHeaderLen(data)
	content := uintLen(uint64(expiry)) + uintLen(uint64(ttl)) + 1 + TopicLength + dh + len(data) + tailLen
	b = appendHeader(b, 0xc0, 0xf7, content)
	b = appendUint(b, uint64(expiry))
	b = appendUint(b, uint64(ttl))
	b = append(b, 0x80+TopicLength)
	b = append(b, topic[:]...)
	if dh > 0 {
		b = appendHeader(b, 0x80, 0xb7, len(data))
	}
	return b
}

// dataHeaderLen is the size of the RLP string header of data: none for a single byte
// below 0x80, which is its own encoding.
func dataHeaderLen(data []byte) int {
	switch n := len(data); {
	case n == 1 && data[0] < 0x80:
		return 0
	case n < 56:
		return 1
	default:
		return 1 + (bits.Len64(uint64(n))+7)/8
	}
}

// uintLen is the RLP size of an unsigned integer.
func uintLen(x uint64) int {
	if x < 0x80 {
		return 1 // 0 is 0x80, 1..127 are themselves
	}
	return 1 + (bits.Len64(x)+7)/8
}

func appendUint(b []byte, x uint64) []byte {
	switch {
	case x == 0:
		return append(b, 0x80)
	case x < 0x80:
		return append(b, byte(x))
	}
	n := (bits.Len64(x) + 7) / 8
	b = append(b, 0x80+byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(x>>(8*uint(i))))
	}
	return b
}

// appendHeader appends an RLP string (short 0x80, long 0xb7) or list (0xc0, 0xf7) header
// for n content bytes.
func appendHeader(b []byte, short, long byte, n int) []byte {
	if n < 56 {
		return append(b, short+byte(n))
	}
	k := (bits.Len64(uint64(n)) + 7) / 8
	b = append(b, long+byte(k))
	for i := k - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*uint(i))))
	}
	return b
}

// shortRLP writes RLP([Expiry, TTL, Topic, Data]) into w without copying Data and returns
// its length.
func shortRLP(w interface{ Write([]byte) (int, error) }, expiry, ttl uint32, topic *Topic, data []byte) int {
	var hdr [prefixMax]byte
	p := appendPrefix(hdr[:0], expiry, ttl, topic, data, 0)
	w.Write(p)
	w.Write(data)
	return len(p) + len(data)
}

// leadingZeroBits counts the leading zero bits of a 256-bit big-endian number.
func leadingZeroBits(d *[32]byte) int {
	for i := 0; i < 32; i += 8 {
		if w := binary.BigEndian.Uint64(d[i:]); w != 0 {
			return i*8 + bits.LeadingZeros64(w)
		}
	}
	return 256
}

// PoW returns the envelope's proof of work,
// 2^leadingZeros(keccak256(shortRLP ‖ nonceBE64)) / len(shortRLP) / TTL,
// computed once and cached. A TTL of zero gives +Inf, as in geth; nodes reject TTL 0.
func (e *Envelope) PoW() float64 {
	if v := e.pow.Load(); v != 0 {
		return math.Float64frombits(v)
	}
	pow := e.powWithDiff(0) // two goroutines may both compute it: the same value
	e.pow.Store(math.Float64bits(pow))
	return pow
}

// PoWAt is the PoW a receiving node at time now credits the envelope with: for an envelope
// created in the future (within the sync allowance) geth divides by TTL + (sent − now + 1)
// instead of TTL, so that a sender cannot gain work by post-dating. Otherwise it equals PoW.
func (e *Envelope) PoWAt(now time.Time) float64 {
	sent := int64(e.Sent())
	n := now.Unix()
	if sent > n && sent-n <= DefaultSyncAllowance {
		return e.powWithDiff(uint32(sent-n) + 1)
	}
	return e.PoW()
}

func (e *Envelope) powWithDiff(diff uint32) float64 {
	h := crypto.NewKeccakState()
	n := shortRLP(h, e.expiry, e.ttl, &e.topic, e.Data())
	var nb [8]byte
	binary.BigEndian.PutUint64(nb[:], e.nonce)
	h.Write(nb[:])
	var d [32]byte
	h.Read(d[:])
	// The same float operations, in the same order, as geth's calculatePoW, so that both
	// sides compare bit-identical values against requirements.
	x := math.Pow(2, float64(leadingZeroBits(&d)))
	x /= float64(n)
	x /= float64(e.ttl + diff)
	return x
}

// PoWTargetBits is the number of leading zero bits Seal aims for to reach PoW p:
// ceil(log2(p × Size × TTL)), at least 1 (geth powToFirstBit). Note Size (20 + len(Data)),
// not the short RLP length the PoW itself divides by.
func PoWTargetBits(p float64, size int, ttl uint32) int {
	x := p
	x *= float64(size)
	x *= float64(ttl)
	b := math.Ceil(math.Log2(x))
	switch {
	case !(b >= 1): // also NaN and -Inf (TTL 0)
		return 1
	case b > 257:
		return 257 // unreachable: Seal runs out its work time
	}
	return int(b)
}

// SealOptions tell Seal how much work to do.
type SealOptions struct {
	// PoW is the target. 0: no work, the nonce stays 0. Positive: stop at the first nonce
	// whose leading zero bits reach PoWTargetBits. Negative: work for the whole WorkTime,
	// keep the best nonce, and add WorkTime (whole seconds, rounded up) to Expiry.
	PoW float64
	// WorkTime bounds the search; reaching it before a positive target fails the seal.
	WorkTime time.Duration
	// Clock is read every 1024 nonces; nil means time.Now.
	Clock func() time.Time
}

// Seal returns a copy of e with the nonce found by the proof-of-work search of geth's
// Envelope.Seal: nonces 0, 1, 2, … keeping the strictly best leading-zero count.
// The search hashes the fixed prefix once and restarts from that keccak state for every
// nonce, so its cost does not grow with len(Data).
func (e *Envelope) Seal(o SealOptions) (*Envelope, error) {
	if o.PoW == 0 {
		return newEnvelope(e.expiry, e.ttl, e.topic, e.Data(), 0), nil
	}
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	expiry, target := e.expiry, 0
	if o.PoW < 0 {
		expiry += uint32((o.WorkTime + time.Second - 1) / time.Second)
	} else {
		target = PoWTargetBits(o.PoW, e.Size(), e.ttl)
	}

	h := crypto.NewKeccakState()
	shortRLP(h, expiry, e.ttl, &e.topic, e.Data())
	restore, err := midstate(h)
	if err != nil {
		return nil, fmt.Errorf("seal envelope: %w", err)
	}

	var (
		nb        [8]byte
		d         [32]byte
		best      int
		bestNonce uint64
		nonce     uint64
		deadline  = clock().Add(o.WorkTime)
	)
	for clock().Before(deadline) {
		for i := 0; i < sealCheckEvery; i++ {
			restore()
			binary.BigEndian.PutUint64(nb[:], nonce)
			h.Write(nb[:])
			h.Read(d[:])
			if lz := leadingZeroBits(&d); lz > best {
				best, bestNonce = lz, nonce
				if target > 0 && best >= target {
					return newEnvelope(expiry, e.ttl, e.topic, e.Data(), bestNonce), nil
				}
			}
			nonce++
		}
	}
	if target > 0 {
		return nil, fmt.Errorf("seal envelope: %w: %d of %d bits in %s", ErrPoWTarget, best, target, o.WorkTime)
	}
	return newEnvelope(expiry, e.ttl, e.topic, e.Data(), bestNonce), nil
}

// midstate snapshots a keccak state and returns a function that rewinds it there.
// go-ethereum's keccak implements the binary (un)marshalers; the check guards an upgrade
// that drops them.
func midstate(h crypto.KeccakState) (func(), error) {
	m, ok1 := h.(encoding.BinaryMarshaler)
	u, ok2 := h.(encoding.BinaryUnmarshaler)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("keccak state %T cannot be snapshotted", h)
	}
	snap, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("snapshot keccak state: %w", err)
	}
	return func() { _ = u.UnmarshalBinary(snap) }, nil
}
