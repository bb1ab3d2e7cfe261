package whisper

import (
	"errors"
	"fmt"
	"time"
)

// Acceptance is what a node checks an incoming envelope against (PROTOCOL.md §2.10). The
// previous PoW and bloom stay in force for DefaultSyncAllowance seconds after a change, so
// that peers who have not yet heard of the change are not punished; callers pass the
// current values in both fields once that window has passed.
type Acceptance struct {
	MaxSize    uint32  // 0 means DefaultMaxMessageSize
	MinPoW     float64 // current requirement
	PrevMinPoW float64 // requirement before the last change
	Bloom      Bloom   // current filter
	PrevBloom  Bloom   // filter before the last change
	MaxTTL     uint32  // seconds; 0 means no maximum (geth's rules)
}

// Check applies geth v1.9.20's receive rules in geth's order:
//  1. created more than 10 s in the future: ErrFromFuture; within 10 s the PoW is
//     recomputed with the time adjustment (PoWAt);
//  2. expired: dropped silently (ok false, nil error), or ErrVeryOld when expired more
//     than 20 s ago;
//  3. larger than MaxSize: ErrEnvelopeTooLarge;
//  4. PoW below both the current and the previous requirement: ErrPoWTooLow (a TTL of 0,
//     whose PoW would be infinite, counts as no work);
//  5. bloom outside both the current and the previous filter: ErrBloomMismatch;
//
// then our own rule, last so that whatever geth rejects keeps geth's error:
//  6. TTL above MaxTTL (when set): ErrTTLTooLong.
//
// geth disconnects the sender on errors 1–5; status-go reports the two time errors
// (IsTimeError) without disconnecting. ErrTTLTooLong is our policy, never a reason to
// disconnect.
func (a *Acceptance) Check(e *Envelope, now time.Time) (ok bool, err error) {
	_, ok, err = a.accept(e, now)
	return ok, err
}

// accept is Check that also returns the envelope's PoW as of now (PoWAt: time-adjusted
// for an envelope from the near future), so that the pool forwards by it without hashing
// the envelope a second time.
func (a *Acceptance) accept(e *Envelope, now time.Time) (pow float64, ok bool, err error) {
	n := now.Unix()
	sent := int64(e.Sent())
	if sent > n+DefaultSyncAllowance {
		return 0, false, fmt.Errorf("%s: %w by %d s", e, ErrFromFuture, sent-n)
	}
	if int64(e.Expiry()) < n {
		if int64(e.Expiry())+2*DefaultSyncAllowance < n {
			return 0, false, fmt.Errorf("%s: %w: expired %d s ago", e, ErrVeryOld, n-int64(e.Expiry()))
		}
		return 0, false, nil
	}
	maxSize := a.MaxSize
	if maxSize == 0 {
		maxSize = DefaultMaxMessageSize
	}
	if err := e.CheckSize(maxSize); err != nil {
		return 0, false, err
	}
	pow = e.PoWAt(now)
	judged := pow
	if e.TTL() == 0 {
		judged = 0
	}
	if judged < a.MinPoW && judged < a.PrevMinPoW {
		return 0, false, fmt.Errorf("%s: %w: %g < %g", e, ErrPoWTooLow, judged, a.MinPoW)
	}
	sample := e.Bloom()
	if !a.Bloom.Matches(&sample) && !a.PrevBloom.Matches(&sample) {
		return 0, false, fmt.Errorf("%s: %w", e, ErrBloomMismatch)
	}
	if a.MaxTTL > 0 && e.TTL() > a.MaxTTL {
		return 0, false, fmt.Errorf("%s: %w: %d s > %d s", e, ErrTTLTooLong, e.TTL(), a.MaxTTL)
	}
	return pow, true, nil
}

// IsTimeError reports whether err is one of the clock errors that status-go answers with a
// time-sync error instead of disconnecting.
func IsTimeError(err error) bool {
	return errors.Is(err, ErrFromFuture) || errors.Is(err, ErrVeryOld)
}
