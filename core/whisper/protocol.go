package whisper

import "time"

// Wire constants of shh/6 (go-ethereum v1.9.20 whisperv6/doc.go).
const (
	ProtocolName         = "shh"
	ProtocolVersion      = uint64(6)
	ProtocolVersionStr   = "6.0"
	NumberOfMessageCodes = 128

	TopicLength     = 4   // bytes
	BloomFilterSize = 64  // bytes
	signatureLength = 65  // R ‖ S ‖ V, V ∈ {0, 1}
	aesKeyLength    = 32  // AES-256
	aesNonceLength  = 12  // GCM standard nonce, appended after the ciphertext
	aesTagLength    = 16  // GCM tag
	eciesOverhead   = 113 // 65-byte ephemeral key + 16-byte IV + 32-byte HMAC
	flagsLength     = 1
	padSizeLimit    = 256 // plaintext is padded to a multiple of this

	sizeMask      = byte(3) // flags bits holding the length of the payload size field
	signatureFlag = byte(4)

	// EnvelopeHeaderLength is what Size adds to len(Data): the fixed part of an envelope
	// as EIP-627 counts it.
	EnvelopeHeaderLength = 20

	// MaxMessageSize is the hard cap on Size for any envelope this package decodes or
	// builds; nodes configure a lower limit (DefaultMaxMessageSize).
	MaxMessageSize = uint32(10 * 1024 * 1024)
	// DefaultMaxMessageSize is the envelope size limit of geth and status-go nodes.
	DefaultMaxMessageSize = uint32(1024 * 1024)

	// DefaultTTL is used when MessageParams.TTL is zero, in seconds.
	DefaultTTL = 50
	// DefaultMaxTTL is the longest TTL a node accepts by default (Config.MaxTTL), in
	// seconds: above every TTL Status and geth clients use (10, 15, 50, 120).
	DefaultMaxTTL = 300
	// DefaultSyncAllowance is the clock skew, in seconds, tolerated for envelopes from the
	// future; envelopes expired by less than twice this are dropped without error.
	DefaultSyncAllowance = 10

	// KeyDerivationIterations is the PBKDF2 round count for symmetric keys from passwords.
	// 65356 is a typo of 65536 in the original code that every client copied.
	KeyDerivationIterations = 65356

	// sealCheckEvery is how many nonces Seal tries between looks at the clock.
	sealCheckEvery = 1024
)

// Timing constants of a Whisper node (used by the protocol handler).
const (
	ExpirationCycle   = time.Second
	TransmissionCycle = 300 * time.Millisecond
	// DefaultCoalesceWindow is how long eager forwarding waits for more envelopes to
	// share a packet (Config.CoalesceWindow).
	DefaultCoalesceWindow = time.Millisecond
)

// Packet codes of shh/6 (PROTOCOL.md §2.2), named as in the geth and status-go sources.
const (
	statusCode             = 0   // handshake, exactly once and first
	messagesCode           = 1   // list of envelopes
	powRequirementCode     = 2   // float64 bits as uint64
	bloomFilterExCode      = 3   // 64-byte bloom
	batchAcknowledgedCode  = 11  // status-go: keccak256 of a received code-1 body
	messageResponseCode    = 12  // status-go: per-envelope errors of a batch
	rateLimitingCode       = 20  // status-go ≥ v0.39: [ip, peer, topic] packets/s
	p2pSyncRequestCode     = 123 // mailserver ⇄ mailserver: sync request (status-go)
	p2pSyncResponseCode    = 124 // mailserver ⇄ mailserver: sync response (trusted peers)
	p2pRequestCompleteCode = 125 // mailserver: request complete
	p2pRequestCode         = 126 // mailserver: history request (trusted peers)
	p2pMessageCode         = 127 // mailserver: direct delivery (trusted peers)
)
