package waku

import (
	"fmt"
	"math"
	"strconv"

	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

// Options is a Waku option list: the handshake (status, code 0) or a Status Update
// (code 22). Nil fields are absent. TopicInterest is present when HasTopics, and then
// takes precedence over BloomFilter (an empty list wants nothing).
type Options struct {
	PoW           *float64
	BloomFilter   *whisper.Bloom
	LightNode     *bool
	Confirmations *bool
	PacketLimits  *whisper.RateLimits
	TopicInterest []whisper.Topic
	HasTopics     bool
	ByteLimits    *whisper.RateLimits // waku/1 only
}

// EncodeStatus returns the body of a handshake of version v: waku/1 the bare option
// list, waku/0 the list [0, options].
func EncodeStatus(o Options, v uint) ([]byte, error) {
	pairs, err := o.pairs(v)
	if err != nil {
		return nil, err
	}
	var body any = pairs
	if v == V0 {
		body = []any{uint64(V0), pairs}
	}
	b, err := rlp.EncodeToBytes(body)
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return b, nil
}

// EncodeOptions returns the RLP of o as version v sends it in a Status Update: the list
// of [key, value] pairs, with integer keys in waku/1 and decimal-string keys, and no
// option 6, in waku/0. Options go in key order, as status-go sends them.
func EncodeOptions(o Options, v uint) ([]byte, error) {
	pairs, err := o.pairs(v)
	if err != nil {
		return nil, err
	}
	b, err := rlp.EncodeToBytes(pairs)
	if err != nil {
		return nil, fmt.Errorf("encode options: %w", err)
	}
	return b, nil
}

func (o Options) pairs(v uint) ([]any, error) {
	var pairs []any
	add := func(key uint64, value any) {
		var k any = key
		if v == V0 {
			k = strconv.FormatUint(key, 10)
		}
		pairs = append(pairs, []any{k, value})
	}
	if o.PoW != nil {
		if p := *o.PoW; math.IsNaN(p) || math.IsInf(p, 0) || p < 0 {
			return nil, fmt.Errorf("encode options: %w: %v", ErrInvalidPoW, p)
		}
		add(keyPoW, math.Float64bits(*o.PoW))
	}
	if o.BloomFilter != nil && !o.HasTopics {
		add(keyBloom, o.BloomFilter[:])
	}
	if o.LightNode != nil {
		add(keyLightNode, *o.LightNode)
	}
	if o.Confirmations != nil {
		add(keyConfirmations, *o.Confirmations)
	}
	if o.PacketLimits != nil {
		add(keyPacketLimits, limitsList(*o.PacketLimits))
	}
	if o.HasTopics {
		if len(o.TopicInterest) > whisper.MaxTopicInterest {
			return nil, fmt.Errorf("encode options: %w: %d topics", ErrTooManyTopics, len(o.TopicInterest))
		}
		topics := make([][]byte, len(o.TopicInterest))
		for i := range o.TopicInterest {
			topics[i] = o.TopicInterest[i][:]
		}
		add(keyTopicInterest, topics)
	}
	if o.ByteLimits != nil && v != V0 {
		add(keyByteLimits, limitsList(*o.ByteLimits))
	}
	if pairs == nil {
		pairs = []any{}
	}
	return pairs, nil
}

func limitsList(r whisper.RateLimits) []uint64 { return []uint64{r.IP, r.PeerID, r.Topic} }

// DecodeStatus parses a handshake body of version v: waku/1 the option list, waku/0
// [version, option list] with version 0. See DecodeOptions for the rules.
func DecodeStatus(body []byte, v uint) (Options, error) {
	list := body
	if v == V0 {
		content, rest, err := rlp.SplitList(body)
		if err != nil {
			return Options{}, fmt.Errorf("%w: %w", ErrOptionList, err)
		}
		if len(rest) != 0 {
			return Options{}, fmt.Errorf("%w: %d bytes after the status", ErrOptionList, len(rest))
		}
		version, content, err := rlp.SplitUint64(content)
		if err != nil {
			return Options{}, fmt.Errorf("%w: version: %w", ErrOptionType, err)
		}
		if version != uint64(V0) {
			return Options{}, fmt.Errorf("%w: peer speaks %d, we speak %d", ErrVersion, version, V0)
		}
		_, _, after, err := rlp.Split(content)
		if err != nil {
			return Options{}, fmt.Errorf("%w: %w", ErrOptionList, err)
		}
		if len(after) != 0 {
			return Options{}, fmt.Errorf("%w: items after the option list", ErrOptionList)
		}
		list = content
	}
	return DecodeOptions(list, v)
}

// DecodeOptions parses an option list of version v (the body of a Status Update, or of
// a waku/1 handshake). It is status-go's StatusOptions.DecodeRLP made strict where that
// is lenient or wrong: every option must be a pair [key, value] (ErrOptionList); keys
// may come in any order, but each once (ErrDuplicateOption); keys we do not know are
// skipped whatever their value (status-go stops reading the list at the first one,
// ignoring the options after it); each known value must have its type exactly
// (ErrOptionType: a canonical integer, a bool 0 or 1, a bloom of 0 or 64 bytes, topics
// of 4 bytes, limits of three integers); the PoW must be finite and non-negative
// (ErrInvalidPoW); a topic interest holds at most whisper.MaxTopicInterest topics
// (ErrTooManyTopics), counted before any is decoded.
func DecodeOptions(list []byte, v uint) (Options, error) {
	var o Options
	content, rest, err := rlp.SplitList(list)
	if err != nil {
		return o, fmt.Errorf("%w: %w", ErrOptionList, err)
	}
	if len(rest) != 0 {
		return o, fmt.Errorf("%w: %d bytes after the list", ErrOptionList, len(rest))
	}
	seen := map[string]bool{}
	for len(content) > 0 {
		kind, pair, next, err := rlp.Split(content)
		if err != nil {
			return o, fmt.Errorf("%w: %w", ErrOptionList, err)
		}
		content = next
		if kind != rlp.List {
			return o, fmt.Errorf("%w: an option that is not a [key, value] pair", ErrOptionList)
		}
		if n, err := rlp.CountValues(pair); err != nil {
			return o, fmt.Errorf("%w: %w", ErrOptionList, err)
		} else if n != 2 {
			return o, fmt.Errorf("%w: an option of %d items, not a [key, value] pair", ErrOptionList, n)
		}
		key, value, err := splitKey(pair, v)
		if err != nil {
			return o, err
		}
		if seen[key] {
			return o, fmt.Errorf("%w: key %s", ErrDuplicateOption, key)
		}
		seen[key] = true
		if err := o.set(key, value, v); err != nil {
			return o, err
		}
	}
	return o, nil
}

// splitKey reads a pair's key, in the canonical form of its version (a waku/1 integer
// as its decimal string, a waku/0 string as it is), and returns the value's RLP.
func splitKey(pair []byte, v uint) (key string, value []byte, err error) {
	if v == V0 {
		k, rest, err := rlp.SplitString(pair)
		if err != nil {
			return "", nil, fmt.Errorf("%w: key: %w", ErrOptionType, err)
		}
		return string(k), rest, nil
	}
	k, rest, err := rlp.SplitUint64(pair)
	if err != nil {
		return "", nil, fmt.Errorf("%w: key: %w", ErrOptionType, err)
	}
	return strconv.FormatUint(k, 10), rest, nil
}

func (o *Options) set(key string, value []byte, v uint) error {
	switch key {
	case "0":
		bits, err := uintValue(value)
		if err != nil {
			return fmt.Errorf("%w: PoW: %w", ErrOptionType, err)
		}
		pow := math.Float64frombits(bits)
		if math.IsNaN(pow) || math.IsInf(pow, 0) || pow < 0 {
			return fmt.Errorf("%w: %v", ErrInvalidPoW, pow)
		}
		o.PoW = &pow
	case "1":
		b, _, err := rlp.SplitString(value)
		if err != nil {
			return fmt.Errorf("%w: bloom filter: %w", ErrOptionType, err)
		}
		bloom, err := whisper.BloomFromBytes(b)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrOptionType, err)
		}
		o.BloomFilter = &bloom
	case "2", "3":
		n, err := uintValue(value)
		if err != nil || n > 1 {
			return fmt.Errorf("%w: option %s is not a bool", ErrOptionType, key)
		}
		b := n == 1
		if key == "2" {
			o.LightNode = &b
		} else {
			o.Confirmations = &b
		}
	case "4":
		rl, err := limitsValue(value)
		if err != nil {
			return err
		}
		o.PacketLimits = &rl
	case "5":
		topics, err := topicsValue(value)
		if err != nil {
			return err
		}
		o.TopicInterest, o.HasTopics = topics, true
	case "6":
		if v == V0 {
			return nil // not a waku/0 option: unknown there
		}
		rl, err := limitsValue(value)
		if err != nil {
			return err
		}
		o.ByteLimits = &rl
	}
	return nil // unknown keys are ignored
}

// uintValue reads a canonical RLP integer of at most 8 bytes.
func uintValue(value []byte) (uint64, error) {
	n, _, err := rlp.SplitUint64(value)
	return n, err
}

func limitsValue(value []byte) (whisper.RateLimits, error) {
	content, _, err := rlp.SplitList(value)
	if err != nil {
		return whisper.RateLimits{}, fmt.Errorf("%w: rate limits: %w", ErrOptionType, err)
	}
	var l [3]uint64
	for i := range l {
		if l[i], content, err = rlp.SplitUint64(content); err != nil {
			return whisper.RateLimits{}, fmt.Errorf("%w: rate limits: %w", ErrOptionType, err)
		}
	}
	if len(content) != 0 {
		return whisper.RateLimits{}, fmt.Errorf("%w: rate limits of more than three items", ErrOptionType)
	}
	return whisper.RateLimits{IP: l[0], PeerID: l[1], Topic: l[2]}, nil
}

func topicsValue(value []byte) ([]whisper.Topic, error) {
	content, _, err := rlp.SplitList(value)
	if err != nil {
		return nil, fmt.Errorf("%w: topic interest: %w", ErrOptionType, err)
	}
	n, err := rlp.CountValues(content)
	if err != nil {
		return nil, fmt.Errorf("%w: topic interest: %w", ErrOptionType, err)
	}
	if n > whisper.MaxTopicInterest {
		return nil, fmt.Errorf("%w: %d topics, at most %d", ErrTooManyTopics, n, whisper.MaxTopicInterest)
	}
	topics := make([]whisper.Topic, 0, n)
	for len(content) > 0 {
		t, rest, err := rlp.SplitString(content)
		if err != nil || len(t) != whisper.TopicLength {
			return nil, fmt.Errorf("%w: topic %d is not 4 bytes", ErrOptionType, len(topics))
		}
		topics = append(topics, whisper.Topic(t))
		content = rest
	}
	return topics, nil
}
