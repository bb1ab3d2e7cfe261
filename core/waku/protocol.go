package waku

// Wire constants of status-go v0.70.1's waku/v1 and waku/v0 (const.go there).
const (
	// Name is the devp2p capability name of both versions.
	Name = "waku"
	// V1 and V0 are the versions; a peer offering both speaks waku/1 with us (devp2p
	// picks the highest common version).
	V1 = uint(1)
	V0 = uint(0)

	// statusUpdateCode carries changed options after the handshake (decimal 22; the
	// specification's "0x22" is a typo).
	statusUpdateCode = 22

	// status-go v0.70.1's waku/common envelope error codes: the position of the
	// constants in its const block (PROTOCOL.md §2.2), which its peers compare against.
	envelopeTimeErrorCode  = 21
	envelopeOtherErrorCode = 22

	// maxStatusSize bounds the handshake: 10,000 topics take 50,003 bytes, every other
	// option under 200; the rest is room for options we do not know.
	maxStatusSize = 64 << 10

	// DefaultMinPoW is the PoW requirement a peer that leaves option 0 out has, as
	// status-go's StatusOptions.WithDefaults says.
	DefaultMinPoW = 0.001
)

// Option keys of the handshake and the Status Update (waku/1: RLP integers; waku/0: the
// same numbers as decimal strings).
const (
	keyPoW           = 0
	keyBloom         = 1
	keyLightNode     = 2
	keyConfirmations = 3
	keyPacketLimits  = 4 // waku/0: its only rate limits
	keyTopicInterest = 5
	keyByteLimits    = 6 // waku/1 only
)
