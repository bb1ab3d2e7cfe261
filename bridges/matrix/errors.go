package matrix

import "errors"

// Sentinel errors of the matrix connector. Callers use errors.Is.
var (
	// ErrInvalidConfig: a Config field breaks its rule; the message names the key.
	ErrInvalidConfig = errors.New("invalid matrix config")
	// ErrUnknownChannel: an Outbound names a channel that is not a configured room.
	// Send wraps it in bridges.Permanent.
	ErrUnknownChannel = errors.New("unknown channel")
	// ErrNotReady: Send was called before the portal rooms were set up. Send wraps it
	// with bridges.ErrTransient.
	ErrNotReady = errors.New("portal rooms not ready")
	// ErrRateLimited: the homeserver answered 429 and its retry_after_ms does not fit
	// the attempt's deadline. Wrapped with bridges.ErrTransient.
	ErrRateLimited = errors.New("rate limited by the homeserver")
	// ErrGhostLimit: a new ghost would pass Config.NewGhostsPerMinute. Send, Edit and
	// Redact then act through the bot instead.
	ErrGhostLimit = errors.New("new ghost budget spent")
)
