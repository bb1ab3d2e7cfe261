package whisper

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these, so callers
// branch with errors.Is; the wrapping text says what failed and where.
var (
	// ErrMalformedEnvelope: the bytes are not a canonical RLP list
	// [Expiry uint32, TTL uint32, Topic, Data, Nonce uint64].
	ErrMalformedEnvelope = errors.New("malformed envelope")
	// ErrTopicLength: the Topic field is not exactly 4 bytes.
	ErrTopicLength = errors.New("topic must be 4 bytes")
	// ErrEnvelopeTooLarge: Size() exceeds the applicable limit.
	ErrEnvelopeTooLarge = errors.New("envelope too large")
	// ErrBloomSize: a bloom filter is neither empty nor 64 bytes.
	ErrBloomSize = errors.New("bloom filter must be 64 bytes")

	// ErrNoKey: a message needs exactly one of a symmetric key or a recipient public key.
	ErrNoKey = errors.New("need exactly one of symmetric key or recipient public key")
	// ErrInvalidKey: a key has the wrong size, is all zeros, or is not a secp256k1 point.
	ErrInvalidKey = errors.New("invalid key")
	// ErrRandom: the entropy source failed or returned all zeros.
	ErrRandom = errors.New("entropy source failed")
	// ErrPoWTarget: sealing did not reach the PoW target within the work time.
	ErrPoWTarget = errors.New("proof of work target not reached")

	// ErrDataTooShort: envelope Data is too short to hold the cipher overhead.
	ErrDataTooShort = errors.New("envelope data too short")
	// ErrDecrypt: authentication failed; the key is wrong or the data was tampered with.
	ErrDecrypt = errors.New("decrypt failed")
	// ErrNotForUs: ECIES data whose ephemeral key prefix is invalid, which geth reads as
	// "addressed to somebody else".
	ErrNotForUs = errors.New("not addressed to this key")
	// ErrMalformedMessage: the decrypted plaintext does not follow the framing rules.
	ErrMalformedMessage = errors.New("malformed message")
	// ErrBadSignature: the signature does not recover to a public key.
	ErrBadSignature = errors.New("bad signature")

	// ErrHandshake: the peer's status packet (code 0) is malformed or unacceptable; geth
	// disconnects the peer.
	ErrHandshake = errors.New("bad status handshake")
	// ErrVersion: the peer speaks another shh version.
	ErrVersion = errors.New("protocol version mismatch")

	// ErrFromFuture: the envelope was created more than the sync allowance ahead of our clock.
	ErrFromFuture = errors.New("envelope from the future")
	// ErrVeryOld: the envelope expired more than twice the sync allowance ago.
	ErrVeryOld = errors.New("very old envelope")
	// ErrPoWTooLow: the envelope's PoW is below the node's requirement.
	ErrPoWTooLow = errors.New("proof of work too low")
	// ErrBloomMismatch: the envelope's topic is outside the node's bloom filter.
	ErrBloomMismatch = errors.New("envelope outside bloom filter")
	// ErrTTLTooLong: the envelope's TTL exceeds the node's MaxTTL. Neither geth nor
	// status-go has this rule, so it is our policy, not the sender's fault: the envelope
	// is refused without disconnecting the peer.
	ErrTTLTooLong = errors.New("envelope TTL above the maximum")
	// ErrTopicMismatch: a peer that heard our topic interest (Waku) sent an envelope
	// outside it.
	ErrTopicMismatch = errors.New("envelope outside topic interest")

	// ErrNoTopics: a filter must name at least one topic, so that envelopes are only ever
	// tried against keys registered for their topic.
	ErrNoTopics = errors.New("filter has no topics")
	// ErrUnknownFilter: no filter with that ID is installed.
	ErrUnknownFilter = errors.New("unknown filter")
)
