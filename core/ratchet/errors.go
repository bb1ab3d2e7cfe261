package ratchet

import "errors"

// Sentinel errors. Every error Receive returns for bad input wraps one of these (callers
// branch with errors.Is) and is counted under the same name in Stats; storage failures
// wrap ErrStore.
var (
	// ErrNotProtocolMessage: the Whisper payload does not decode as a ProtocolMessage, or
	// decodes to one that carries nothing (no bundle, no public or direct message).
	ErrNotProtocolMessage = errors.New("not a protocol message")
	// ErrMalformed: a field has the wrong size or is not a valid secp256k1 point.
	ErrMalformed = errors.New("malformed protocol message")
	// ErrBundleSignature: a bundle's signature does not recover to its identity key.
	ErrBundleSignature = errors.New("bundle signature does not match its identity")
	// ErrBundleSigner: a bundle's identity is not the key that signed the envelope.
	ErrBundleSigner = errors.New("bundle identity is not the envelope signer")
	// ErrTooManyInstallations: a bundle lists more installations than the limit (3).
	ErrTooManyInstallations = errors.New("too many installations")
	// ErrTooManyBundles: a ProtocolMessage carries more bundles than the limit.
	ErrTooManyBundles = errors.New("too many bundles")
	// ErrUnknownPrekey: an X3DH header names a signed prekey that is not ours.
	ErrUnknownPrekey = errors.New("x3dh header names an unknown signed prekey")
	// ErrUnknownInstallation: an X3DH header from an installation that is not among the
	// sender's known ones (at most MaxInstallations, learned from bundles); refusing it
	// bounds the sessions one identity can make us store.
	ErrUnknownInstallation = errors.New("x3dh from an installation not in the sender's bundle")
	// ErrSessionNotFound: a Double Ratchet message for a session we never started.
	ErrSessionNotFound = errors.New("no session for double ratchet message")
	// ErrReplay: a message whose key was already used and deleted (of the current chain
	// or of one of the 16 + Config.OldChains previous chains of its session), or an X3DH
	// header of a session that has since been replaced. A replay of a chain older than
	// that cannot be told from a forged ratchet key: it counts as ErrDecrypt.
	ErrReplay = errors.New("replayed message")
	// ErrTooManySkipped: the message would skip more than MaxSkip message keys.
	ErrTooManySkipped = errors.New("too many skipped messages")
	// ErrDecrypt: authentication failed: a tampered ciphertext or header, or a wrong key.
	ErrDecrypt = errors.New("decrypt failed")
	// ErrNoKeyHeader: a direct message with neither X3DH, DR nor DH header.
	ErrNoKeyHeader = errors.New("direct message without key header")
	// ErrWorkRefused: the message would make us start an X3DH session beyond the
	// sender's or the global work budget (work.go); alone, the message was dropped (too
	// large to keep); with ErrDeferred, it was kept.
	ErrWorkRefused = errors.New("work budget spent")
	// ErrDeferred: a message refused by the work budgets (the error wraps
	// ErrWorkRefused too) was kept, and a later Retry processes it (defer.go). Not a
	// drop: nothing is counted under a drop reason.
	ErrDeferred = errors.New("deferred until the work budget allows")

	// ErrNoInstallations: a message to ourselves with no other enabled installation.
	ErrNoInstallations = errors.New("no paired installation to send to")

	// ErrStore: the Store failed; the message is not lost on our side (nothing was
	// committed) and may be retried.
	ErrStore = errors.New("ratchet store")
	// ErrConfig: the Config is unusable.
	ErrConfig = errors.New("invalid ratchet config")
	// ErrRandom: the entropy source failed.
	ErrRandom = errors.New("entropy source failed")
	// ErrInvalidKey: a caller-supplied key is not a usable secp256k1 key.
	ErrInvalidKey = errors.New("invalid key")
)
