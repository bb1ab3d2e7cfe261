package ratchet

import (
	"crypto/ecdsa"
	"sync"

	"github.com/statusgate/statusgate/core/whisper"
)

// Secret is the negotiated secret with one peer (PROTOCOL.md §3.5): the x-coordinate of
// our identity key times theirs, the same on both sides. Once agreed, 1:1 traffic with
// the peer moves to the symmetric topic named by its hex; both sides listen there from
// their first exchange on.
type Secret struct {
	Peer *ecdsa.PublicKey
	// Key is the 32-byte secret. It is key material: never log it.
	Key []byte
	// TopicName is hex(Key); Topic its Whisper topic.
	TopicName string
	Topic     whisper.Topic

	// keys derives and caches topic keys: the Ratchet's bounded LRU (work.go), or
	// this Secret's own when nil.
	keys *symKeys

	symOnce sync.Once
	sym     *whisper.SymKey
	symErr  error
}

func newSecret(peer *ecdsa.PublicKey, key []byte, keys *symKeys) *Secret {
	name := NegotiatedTopicName(key)
	return &Secret{Peer: peer, Key: key, TopicName: name, Topic: whisper.TopicFromName(name), keys: keys}
}

// SymKey returns the topic's Whisper key, PBKDF2 of TopicName (milliseconds of CPU),
// derived on first use and cached (in the Ratchet's LRU of derived keys, counted in
// Stats.TopicKeysDerived).
func (s *Secret) SymKey() (*whisper.SymKey, error) {
	if s.keys != nil {
		return s.keys.get(s.TopicName)
	}
	s.symOnce.Do(func() { s.sym, s.symErr = whisper.SymKeyFromPassword(s.TopicName) })
	return s.sym, s.symErr
}

// useKey makes a kept key (SetSecretTopicKey) the key of a Secret made with no
// symKeys and not used yet, and reports whether it was usable. The Secret then derives
// nothing.
func (s *Secret) useKey(raw []byte) bool {
	k, err := whisper.NewSymKey(raw)
	if err != nil {
		return false
	}
	s.symOnce.Do(func() { s.sym = k })
	return s.sym == k
}

// Filter is the symmetric filter for the negotiated topic.
func (s *Secret) Filter() (Filter, error) {
	k, err := s.SymKey()
	if err != nil {
		return Filter{}, err
	}
	return Filter{TopicName: s.TopicName, Topic: s.Topic, SymKey: k}, nil
}

// String keeps the secret out of logs: only the topic is shown.
func (s *Secret) String() string { return "secret(" + s.Topic.String() + ")" }
