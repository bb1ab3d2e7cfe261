package whisper

import (
	"encoding/binary"
	"fmt"
)

// Bloom is a 512-bit Whisper bloom filter. A node advertises the OR of the blooms of the
// topics it wants; an envelope matches when its topic's bloom is a subset.
type Bloom [BloomFilterSize]byte

// FullBloom is the filter of a full node: every bit set, matches every envelope.
func FullBloom() Bloom {
	var b Bloom
	for i := range b {
		b[i] = 0xff
	}
	return b
}

// TopicToBloom maps a topic to a bloom with at most three bits set: for i in 0..2 the bit
// index is topic[i], plus 256 when bit i of topic[3] is set.
//
// It reproduces go-ethereum's byte assignment (b[n/8] = 1 << (n%8)) rather than OR: when
// two indices fall in the same byte only the last survives. Peers compare envelope blooms
// against this exact value, and a strict peer disconnects a sender whose envelope falls
// outside its filter, so the quirk is part of the wire format.
func TopicToBloom(t Topic) Bloom {
	var b Bloom
	for j := 0; j < 3; j++ {
		n := int(t[j])
		if t[3]&(1<<uint(j)) != 0 {
			n += 256
		}
		b[n/8] = 1 << uint(n%8)
	}
	return b
}

// BloomFromBytes parses a bloom as carried in the handshake and in bloom packets: 64 bytes,
// or empty meaning a full node. Any other length is an error.
func BloomFromBytes(p []byte) (Bloom, error) {
	switch len(p) {
	case 0:
		return FullBloom(), nil
	case BloomFilterSize:
		var b Bloom
		copy(b[:], p)
		return b, nil
	default:
		return Bloom{}, fmt.Errorf("parse bloom of %d bytes: %w", len(p), ErrBloomSize)
	}
}

// BloomOf returns the OR of the blooms of the given topics: the filter a node advertises
// for that topic set.
func BloomOf(topics ...Topic) Bloom {
	var b Bloom
	for _, t := range topics {
		b.Add(t)
	}
	return b
}

// Add ORs the topic's bloom into b.
func (b *Bloom) Add(t Topic) {
	tb := TopicToBloom(t)
	b.Or(&tb)
}

// Or sets b to b | o, byte-wise.
func (b *Bloom) Or(o *Bloom) {
	for i := range b {
		b[i] |= o[i]
	}
}

// Matches reports whether sample ⊆ b, i.e. an envelope with bloom sample passes filter b.
// It compares eight 64-bit words: this sits on the per-envelope, per-peer path.
func (b *Bloom) Matches(sample *Bloom) bool {
	for i := 0; i < BloomFilterSize; i += 8 {
		f := binary.LittleEndian.Uint64(b[i:])
		s := binary.LittleEndian.Uint64(sample[i:])
		if f|s != f {
			return false
		}
	}
	return true
}

// IsFull reports whether every bit is set (a full node).
func (b *Bloom) IsFull() bool {
	for i := 0; i < BloomFilterSize; i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != ^uint64(0) {
			return false
		}
	}
	return true
}
