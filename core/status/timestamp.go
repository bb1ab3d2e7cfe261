package status

import "time"

// MaxTimestampDrift bounds how far a message's Timestamp, the sender's claim, may be
// from the creation time of the envelope that carried it (Whisper's expiry minus TTL,
// which the network bounds: a live envelope is at most its TTL old, and we accept TTLs
// up to whisper.Config.MaxTTL). A claim further away, either way, is replaced by the
// envelope's time and counted (Stats.TimestampReplaced): otherwise a sender could date
// a message anywhere, and the Matrix connector, which sends catch-up events with their
// original time, would backdate it in the room (issue 15 finding 14). 2 minutes is
// status-go's own drift allowance between a message's clock and its envelope
// (maxWhisperFutureDriftMs).
const MaxTimestampDrift = 2 * time.Minute

// boundedTimestamp returns the sender's claimed time (Unix milliseconds), or sent when
// the claim is further than MaxTimestampDrift from it; replaced says which.
func boundedTimestamp(claimedMs uint64, sent time.Time) (t time.Time, replaced bool) {
	claimed := time.UnixMilli(int64(min(claimedMs, 1<<62)))
	if d := claimed.Sub(sent); d > MaxTimestampDrift || d < -MaxTimestampDrift {
		return sent, true
	}
	return claimed, false
}
