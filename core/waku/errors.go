package waku

import "errors"

// Sentinel errors of the option list (handshake and Status Update). In a handshake they
// come wrapped with whisper.ErrHandshake, in a Status Update with
// whisper.ErrMalformedPacket; either disconnects the peer.
var (
	// ErrOptionList: the packet is not an option list, or an option is not a pair
	// [key, value] ("wrongly nested").
	ErrOptionList = errors.New("malformed option list")
	// ErrDuplicateOption: a key appears twice.
	ErrDuplicateOption = errors.New("duplicate option")
	// ErrOptionType: a key or a value is not of its type (a list where an integer
	// belongs, a bloom of the wrong size, a 5-byte topic, a bool that is 2, …).
	ErrOptionType = errors.New("option of the wrong type")
	// ErrInvalidPoW: the PoW requirement is NaN, infinite or negative.
	ErrInvalidPoW = errors.New("invalid PoW requirement")
	// ErrTooManyTopics: a topic interest longer than whisper.MaxTopicInterest.
	ErrTooManyTopics = errors.New("topic interest too long")
	// ErrVersion: a waku/0 handshake whose version is not 0.
	ErrVersion = errors.New("waku version mismatch")
	// ErrLightPeers: a light peer while we are light ourselves and refuse that.
	ErrLightPeers = errors.New("both sides are light nodes")
)
