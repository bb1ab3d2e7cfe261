package whisper

import (
	"encoding/hex"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"
)

// Topic is the 4-byte routing tag of an envelope. Status derives it from a string (a
// public chat name, "contact-discovery", …) with TopicFromName.
type Topic [TopicLength]byte

// TopicFromName returns the first 4 bytes of keccak256(name), as Status does for every
// topic string.
func TopicFromName(name string) Topic {
	var t Topic
	copy(t[:], crypto.Keccak256([]byte(name)))
	return t
}

// BytesToTopic copies up to 4 bytes of b into a Topic, left-aligned, as geth does.
func BytesToTopic(b []byte) Topic {
	var t Topic
	copy(t[:], b)
	return t
}

// String returns the topic as 0x-prefixed lowercase hex.
func (t Topic) String() string { return "0x" + hex.EncodeToString(t[:]) }

// MarshalText encodes the topic as 0x-prefixed hex.
func (t Topic) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes 8 hex digits, with or without 0x.
func (t *Topic) UnmarshalText(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if len(s) != 2*TopicLength {
		return fmt.Errorf("parse topic %q: %w", b, ErrTopicLength)
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return fmt.Errorf("parse topic %q: %w", b, err)
	}
	return nil
}

// Bloom returns the 64-byte bloom filter of this single topic (see TopicToBloom).
func (t Topic) Bloom() Bloom { return TopicToBloom(t) }
