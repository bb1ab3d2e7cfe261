package whisper

import (
	"fmt"
	"math"

	"github.com/ethereum/go-ethereum/rlp"
)

// Status is the shh/6 handshake packet (code 0): [version, PoW, bloom, isLight,
// confirmations, rateLimits]. geth sends the first four items, late-2019 status-go five,
// status-go ≥ v0.39 six; every item after the version is optional.
type Status struct {
	// PoW is the minimum PoW the peer accepts; 0 when absent.
	PoW float64
	// Bloom is the peer's topic filter; FullBloom when absent or sent empty.
	Bloom Bloom
	// LightNode: the peer does not forward. Two light nodes may refuse each other.
	LightNode bool
	// Confirmations: the peer sends codes 11/12 after every code-1 packet it receives.
	Confirmations bool
	// RateLimits is status-go's sixth item; nil when absent (and then not sent).
	RateLimits *RateLimits
}

// RateLimits are status-go's packet-rate limits, packets per second.
type RateLimits struct {
	IP, PeerID, Topic uint64
}

// EncodeStatus returns the RLP body of our handshake: five items, as late-2019 Status
// nodes send, or six when s.RateLimits is set.
func EncodeStatus(s Status) ([]byte, error) {
	if math.IsNaN(s.PoW) || math.IsInf(s.PoW, 0) || s.PoW < 0 {
		return nil, fmt.Errorf("encode status: %w: %v", ErrHandshake, s.PoW)
	}
	items := []any{ProtocolVersion, math.Float64bits(s.PoW), s.Bloom[:], s.LightNode, s.Confirmations}
	if s.RateLimits != nil {
		items = append(items, []uint64{s.RateLimits.IP, s.RateLimits.PeerID, s.RateLimits.Topic})
	}
	b, err := rlp.EncodeToBytes(items)
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return b, nil
}

// DecodeStatus parses a peer's handshake body the way geth v1.9.20 and status-go do: the
// version is mandatory and must be 6; each later item is optional and parsing stops at
// the first one that is missing or not of its type (that item and the rest count as
// absent); items after the sixth are ignored. A PoW that is NaN, infinite or negative and
// a bloom that is neither empty nor 64 bytes are errors, for which geth disconnects.
// Every error wraps ErrHandshake, and a wrong version also ErrVersion.
func DecodeStatus(body []byte) (Status, error) {
	st := Status{Bloom: FullBloom()}
	list, rest, err := rlp.SplitList(body)
	if err != nil {
		return st, fmt.Errorf("decode status: %w: %w", ErrHandshake, err)
	}
	if len(rest) != 0 {
		return st, fmt.Errorf("decode status: %w: %d trailing bytes", ErrHandshake, len(rest))
	}
	version, list, err := rlp.SplitUint64(list)
	if err != nil {
		return st, fmt.Errorf("decode status version: %w: %w", ErrHandshake, err)
	}
	if version != ProtocolVersion {
		return st, fmt.Errorf("decode status: %w: %w: peer speaks %d, we speak %d", ErrHandshake, ErrVersion, version, ProtocolVersion)
	}

	bits, list, err := rlp.SplitUint64(list)
	if err != nil {
		return st, nil
	}
	pow := math.Float64frombits(bits)
	if math.IsNaN(pow) || math.IsInf(pow, 0) || pow < 0 {
		return st, fmt.Errorf("decode status: %w: invalid PoW %v", ErrHandshake, pow)
	}
	st.PoW = pow

	bloom, list, err := rlp.SplitString(list)
	if err != nil {
		return st, nil
	}
	if st.Bloom, err = BloomFromBytes(bloom); err != nil {
		return st, fmt.Errorf("decode status: %w: %w", ErrHandshake, err)
	}

	var ok bool
	if st.LightNode, list, ok = splitBool(list); !ok {
		return st, nil
	}
	if st.Confirmations, list, ok = splitBool(list); !ok {
		return st, nil
	}
	limits, _, err := rlp.SplitList(list)
	if err != nil {
		return st, nil
	}
	var rl [3]uint64
	for i := range rl {
		if rl[i], limits, err = rlp.SplitUint64(limits); err != nil {
			return st, nil
		}
	}
	st.RateLimits = &RateLimits{IP: rl[0], PeerID: rl[1], Topic: rl[2]}
	return st, nil
}

// splitBool reads an RLP bool as rlp.Stream.Bool does: 0x80 false, 0x01 true, else not a bool.
func splitBool(b []byte) (bool, []byte, bool) {
	v, rest, err := rlp.SplitUint64(b)
	if err != nil || v > 1 {
		return false, b, false
	}
	return v == 1, rest, true
}
