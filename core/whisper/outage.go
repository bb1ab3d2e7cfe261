package whisper

import (
	"time"
)

// DefaultOutageThreshold is Config.OutageThreshold's default: shorter than the 15 s TTL
// of status-go's chat messages, so that any time alone long enough to lose one counts.
const DefaultOutageThreshold = 10 * time.Second

// maxOutages bounds the outages a Service remembers for OutageSince.
const maxOutages = 16

// Outage is a time in which the node may have missed envelopes: it had no peer for
// longer than Config.OutageThreshold (a network outage, the host's link down), or its
// clock jumped forward by more than that between two expiry cycles (the host slept:
// the monotonic clock the cycle runs on stands still in a suspend, the wall clock does
// not). Envelopes posted meanwhile are only in mailservers' archives.
type Outage struct {
	// Seq numbers the outages of a Service from 1 on.
	Seq uint64
	// From is when the node was last known to have peers (the clock before the jump);
	// To is when it had one again (the clock after the jump).
	From, To time.Time
}

// outages is the Service's record, guarded by peerMu.
type outages struct {
	aloneSince time.Time // when the last peer left; zero while peers are connected or none ever was
	list       []Outage  // the newest maxOutages
	seq        uint64
}

// OutageSince returns the outages recorded after seq as one: the earliest From, the
// latest To and the Seq of the newest (pass it next time); ok is false when there was
// none. Outages older than the last 16 are forgotten: a caller that far behind gets
// the oldest kept one's From. PeersChanged is closed when an outage is recorded.
func (s *Service) OutageSince(seq uint64) (o Outage, ok bool) {
	s.peerMu.RLock()
	defer s.peerMu.RUnlock()
	for _, x := range s.outages.list {
		if x.Seq <= seq {
			continue
		}
		if !ok || x.From.Before(o.From) {
			o.From = x.From
		}
		if !ok || x.To.After(o.To) {
			o.To = x.To
		}
		o.Seq, ok = x.Seq, true
	}
	return o, ok
}

// recordOutageLocked notes an outage [from, to] and wakes PeersChanged's waiters;
// peerMu is held.
func (s *Service) recordOutageLocked(from, to time.Time) {
	s.outages.seq++
	o := Outage{Seq: s.outages.seq, From: from, To: to}
	if len(s.outages.list) == maxOutages {
		s.outages.list = append(s.outages.list[:0], s.outages.list[1:]...)
	}
	s.outages.list = append(s.outages.list, o)
	s.log.Warn("outage: envelopes posted meanwhile may be missing", "from", from, "to", to, "for", to.Sub(from).Round(time.Second))
	s.changedLocked()
}

// peerJoinedLocked records the time alone that a peer joining ends, if it was longer
// than the threshold; peerMu is held, the peer not yet in the map.
func (s *Service) peerJoinedLocked() {
	if len(s.peers) > 0 || s.outages.aloneSince.IsZero() {
		return
	}
	from := s.outages.aloneSince
	s.outages.aloneSince = time.Time{}
	if now := s.now().Round(0); now.Sub(from) > s.cfg.OutageThreshold {
		s.recordOutageLocked(from, now)
	}
}

// peerLeftLocked starts the time alone when the last peer left; peerMu is held.
func (s *Service) peerLeftLocked() {
	if len(s.peers) == 0 && s.outages.aloneSince.IsZero() {
		s.outages.aloneSince = s.now().Round(0)
	}
}

// clockJump is the expiry cycle's check for a sleeping host: the clock advanced by
// more than the threshold beyond the monotonic time elapsed between two ticks. Wall
// times are compared with their monotonic readings stripped (Round(0)), or time.Sub
// would use those and see no jump.
type clockJump struct {
	clock, tick time.Time // the clock and the monotonic tick time at the last tick
}

// check takes the clock and tick time of a tick and returns the jump's span, if any.
func (j *clockJump) check(clock, tick time.Time, threshold time.Duration) (from time.Time, jumped bool) {
	clock = clock.Round(0)
	prev, prevTick := j.clock, j.tick
	j.clock, j.tick = clock, tick
	if prev.IsZero() {
		return time.Time{}, false
	}
	return prev, clock.Sub(prev)-tick.Sub(prevTick) > threshold
}

// checkClockJump records an outage when the clock jumped (clockJump) while the
// service ran; called by the expiry loop at each tick. A jump while the node has no
// peer joins that time alone instead, so that one outage is one record.
func (s *Service) checkClockJump(j *clockJump, tick time.Time) {
	now := s.now()
	from, jumped := j.check(now, tick, s.cfg.OutageThreshold)
	if !jumped {
		return
	}
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if len(s.peers) == 0 && !s.outages.aloneSince.IsZero() {
		// Alone already: the time alone, which the next peer ends, covers the jump.
		if from.Before(s.outages.aloneSince) {
			s.outages.aloneSince = from
		}
		return
	}
	if n := len(s.outages.list); n > 0 && s.outages.list[n-1].To.After(from) {
		// A peer came back since the clock was read, ending a time alone that covers
		// the jump: recorded already.
		return
	}
	s.recordOutageLocked(from, now.Round(0))
}
