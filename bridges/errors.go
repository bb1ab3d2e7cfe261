package bridges

import "errors"

// Sentinel errors. The ones a connector returns tell the gateway whether to retry:
//
//   - an error for which IsPermanent is true (it wraps ErrPermanent, usually through
//     Permanent, or is ErrUnsupported) will never succeed: the gateway marks that outbox
//     entry failed (a visible state, never a silent drop) and moves on;
//   - every other error, including ctx errors and errors wrapping ErrTransient, is
//     retried with backoff, in order, until it succeeds or the gateway's retry budget
//     for the entry runs out (which is then reported like a permanent failure).
//
// Wrapping ErrTransient is optional (unclassified errors are retried anyway) but says
// so to the reader: fmt.Errorf("send to %s: %w: %w", ch, bridges.ErrTransient, err).
var (
	// ErrPermanent marks a failure that retrying cannot fix: the channel is gone, the
	// bridge user was banned, the remote rejected the content. Wrap with Permanent.
	ErrPermanent = errors.New("permanent failure")
	// ErrTransient marks a failure that a later retry may fix: not connected yet, rate
	// limited, timed out, server error.
	ErrTransient = errors.New("transient failure")
	// ErrUnsupported is returned (possibly wrapped) by a connector asked for something
	// its network or its current server cannot do, such as a reaction on an IRC server
	// without message tags. It is permanent for that event; the gateway degrades (for
	// example sends an edit as a new message) rather than retry.
	ErrUnsupported = Permanent(errors.New("unsupported by this network"))
	// ErrBadCredentials marks a session that ended because the network rejected the
	// connector's credentials (a token, a password, SASL). Connector.Run returns an
	// error wrapping it; the gateway shows StateBadCredentials and retries slowly.
	ErrBadCredentials = errors.New("credentials rejected")
	// ErrInvalidID: an ID or network name breaks the rules in ids.go.
	ErrInvalidID = errors.New("invalid ID")
	// ErrInvalidEvent: an Event or Outbound breaks the rules of Event.Validate. Host
	// returns it (wrapped in a PermanentError) for an event it will never accept.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrInvalidText: a string is not canonical text (see ValidText).
	ErrInvalidText = errors.New("invalid canonical text")
)

// PermanentError wraps an error that retrying cannot fix. errors.Is(err, ErrPermanent)
// is true for it and for anything wrapping it; errors.As finds it and Unwrap reaches the
// cause.
type PermanentError struct {
	Err error // the cause; may be nil
}

// Permanent wraps err so that IsPermanent reports true. Permanent(nil) returns nil, so
// `return bridges.Permanent(err)` is safe on the success path too.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Error returns "permanent failure: " and the cause.
func (e *PermanentError) Error() string {
	if e.Err == nil {
		return ErrPermanent.Error()
	}
	return ErrPermanent.Error() + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// Is makes errors.Is(e, ErrPermanent) true.
func (e *PermanentError) Is(target error) bool { return target == ErrPermanent }

// IsPermanent reports whether err, or anything it wraps, is a permanent failure: the
// gateway must not retry it. IsPermanent(nil) is false. An error wrapping both
// ErrPermanent and ErrTransient is permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// IsTransient reports whether err is a failure worth retrying: non-nil and not
// permanent. Unclassified errors count as transient.
func IsTransient(err error) bool { return err != nil && !IsPermanent(err) }
