package whisper

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"golang.org/x/time/rate"
)

// maxStatusSize bounds the handshake packet: six items fit in under 200 bytes, so a peer
// sending more is not speaking shh/6.
const maxStatusSize = 1024

// DefaultHandshakeTimeout bounds the wait for a peer's status (Config.HandshakeTimeout).
// Every implementation sends its status as soon as the protocol starts; the packet is
// under 200 bytes.
const DefaultHandshakeTimeout = 10 * time.Second

// HandshakePolicy holds what our side decides about a peer's handshake.
type HandshakePolicy struct {
	// LightNode is our own light flag, sent in our status.
	LightNode bool
	// RestrictLightPeers refuses a light peer when we are light too (geth's default true,
	// status-go's false).
	RestrictLightPeers bool
	// Timeout bounds the wait for the peer's status; 0 waits as long as the connection
	// lives. Without it, a peer that completes the devp2p handshake and then stays
	// silent holds one of the node's peer slots for ever (p2p's pings keep the
	// connection up). Geth v1.9.20 and status-go have no such bound.
	Timeout time.Duration
	// Abort, called when Timeout passes, must make the pending read of rw return
	// (RunPeer disconnects the peer); Handshake waits for that read before it returns.
	// Required with Timeout.
	Abort func()
}

// Handshake sends ours and reads the peer's shh/6 status concurrently, as geth does,
// and waits for its own send before returning (p2p bounds a write with its frame
// deadline). The peer's first packet must be the status; anything else, an oversize or
// malformed status, no status within policy.Timeout, or a light peer we refuse is an
// error wrapping ErrHandshake, after which the caller disconnects.
func Handshake(rw p2p.MsgReadWriter, ours Status, policy HandshakePolicy) (Status, error) {
	ours.LightNode = policy.LightNode
	body, err := EncodeStatus(ours)
	if err != nil {
		return Status{}, err
	}
	var theirs Status
	decode := func(b []byte) (PeerSettings, error) {
		st, err := DecodeStatus(b)
		theirs = st
		return st.settings(), err
	}
	if _, err := exchangeStatus(rw, body, maxStatusSize, decode, policy); err != nil {
		return Status{}, err
	}
	return theirs, nil
}

// PeerLimits bound what one peer can make us do, and how fast we send to it. Inbound
// packets over a limit are read and discarded without processing (overflow policy:
// drop, counted in PeerInfo.Dropped); trusted peers are exempt, because a mailserver
// answering a history request legitimately sends in bursts.
type PeerLimits struct {
	// PacketsPerSecond is the sustained inbound packet rate. Default 100 (a geth peer
	// gossiping every 300 ms sends about 4 per second, an eagerly forwarding one up to
	// SendPacketsPerSecond, 50).
	PacketsPerSecond float64
	// PacketBurst is how many packets may arrive at once. Default 200.
	PacketBurst int
	// BytesPerSecond is the sustained inbound byte rate. Default 4 MiB/s.
	BytesPerSecond float64
	// ByteBurst is how many bytes may arrive at once; at least the max message size.
	// Default 16 MiB.
	ByteBurst int
	// MaxBatchBytes bounds each code-1 packet we send, so a large pool reaches a new peer
	// in several packets instead of one that the peer's size limit rejects. Default: the
	// max message size.
	MaxBatchBytes int
	// SendPacketsPerSecond and SendPacketBurst bound the code-1 packets eager forwarding
	// sends one peer (a token bucket): past them, new envelopes wait for the next token,
	// gathering into fewer, larger packets. Defaults 50 and 20. For a peer that
	// advertises no limit the periodic cycle sends what is pending whatever the budget,
	// as geth does, so no envelope waits longer than a cycle. A peer that advertises
	// status-go rate limits (shh/6: handshake or code 20; Waku: options 4 and 6) is
	// never sent more than three quarters of its lower limit (peer ID or IP), packets
	// and bytes, with bursts of half of it, every packet to it counted: status-go's
	// limiter refills only every 100 ms, and packets bunch up in transit.
	SendPacketsPerSecond float64
	SendPacketBurst      int
}

func (l PeerLimits) withDefaults(maxMsg uint32) PeerLimits {
	if l.PacketsPerSecond == 0 {
		l.PacketsPerSecond = 100
	}
	if l.PacketBurst == 0 {
		l.PacketBurst = 200
	}
	if l.BytesPerSecond == 0 {
		l.BytesPerSecond = 4 << 20
	}
	if l.ByteBurst == 0 {
		l.ByteBurst = 16 << 20
	}
	l.ByteBurst = max(l.ByteBurst, int(maxMsg))
	if l.MaxBatchBytes == 0 {
		l.MaxBatchBytes = int(maxMsg)
	}
	if l.SendPacketsPerSecond == 0 {
		l.SendPacketsPerSecond = 50
	}
	if l.SendPacketBurst == 0 {
		l.SendPacketBurst = 20
	}
	return l
}

// Validate reports a negative limit.
func (l PeerLimits) Validate() error {
	if l.PacketsPerSecond < 0 || l.PacketBurst < 0 || l.BytesPerSecond < 0 || l.ByteBurst < 0 || l.MaxBatchBytes < 0 ||
		l.SendPacketsPerSecond < 0 || l.SendPacketBurst < 0 {
		return fmt.Errorf("limits: values must not be negative")
	}
	return nil
}

// Peer is one connected peer on one wire (shh/6, waku/1, …). Its state is written by
// its own read loop (what the peer tells us) and read by its broadcast loop (what we
// send it). A node that speaks several wires with us on one connection has a Peer per
// wire; only the preferred one gossips envelopes (the others are its secondaries: they
// mark what they receive as known to it, and carry settings, confirmations and
// mailserver packets).
type Peer struct {
	s       *Service
	p       *p2p.Peer
	id      enode.ID
	rw      p2p.MsgReadWriter
	wire    Wire
	wireIdx int // index of the wire in the service's statistics
	pref    int
	limits  PeerLimits

	trusted atomic.Bool
	// primary is the Peer of the same node that gossips, when it is not this one.
	primary atomic.Pointer[Peer]

	mu            sync.Mutex // guards the fields below; never held while writing to rw
	pow           float64
	bloom         Bloom
	fullNode      bool
	topics        map[Topic]struct{} // the peer's topic interest; nil: its bloom decides
	light         bool
	confirmations bool
	rescan        bool // requirements changed: the next cycle looks at the whole pool again
	// known holds the envelopes the peer has (it sent them, or we did), by knownKey of
	// their hash, and their expiry, so that none is sent to it (again). At most maxKnown:
	// eviction policy oldest first (knownRing, a FIFO of insertions), since forgetting
	// costs at most a duplicate send; expired entries go at each expiry cycle, and both
	// shrink once a burst has expired (expireKnown).
	known      map[uint64]uint32
	knownRing  []uint64
	knownNext  int
	rateLimits *RateLimits // packets per second the peer accepts (status-go's limits)
	byteLimits *RateLimits // bytes per second the peer accepts (Waku option 6)

	notify        chan struct{} // cap 1: our settings changed (coalescing)
	heard         Advert        // broadcast loop only: what the peer last heard from us
	cursor        uint64        // broadcast loop only: last pool seq examined
	batch         []byte        // broadcast loop only: reused packet buffer
	budget        packetBudget  // eager forwarding's packet budget; control packets spend it too
	packetLimiter *rate.Limiter
	byteLimiter   *rate.Limiter

	received, sent, packets, dropped, direct, rejected atomic.Uint64

	done chan struct{} // closed when the peer is removed from the service
}

func newPeer(s *Service, pp *p2p.Peer, rw p2p.MsgReadWriter, w *wireEntry, remote PeerSettings, ours Advert) *Peer {
	l := w.limits
	p := &Peer{
		s: s, p: pp, id: pp.ID(), rw: rw, wire: w.wire, wireIdx: w.idx, pref: w.cfg.Preference, limits: l,
		known:         make(map[uint64]uint32),
		notify:        make(chan struct{}, 1),
		done:          make(chan struct{}),
		heard:         ours,
		bloom:         FullBloom(),
		fullNode:      true,
		packetLimiter: rate.NewLimiter(rate.Limit(l.PacketsPerSecond), l.PacketBurst),
		byteLimiter:   rate.NewLimiter(rate.Limit(l.BytesPerSecond), l.ByteBurst),
	}
	p.apply(remote)
	return p
}

// ID is the peer's node ID.
func (p *Peer) ID() enode.ID { return p.id }

// Protocol is the peer's wire as "name/version" ("shh/6", "waku/1").
func (p *Peer) Protocol() string { return fmt.Sprintf("%s/%d", p.wire.Name(), p.wire.Version()) }

// Done is closed once the peer has disconnected (and left the service's peer set): a
// request waiting for this peer's answer can stop waiting.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Trusted reports whether the peer may send direct messages (code 127).
func (p *Peer) Trusted() bool { return p.trusted.Load() }

// Service is the service the peer belongs to.
func (p *Peer) Service() *Service { return p.s }

// Apply takes what the peer told us about itself in a settings packet (a wire's own
// code; Waku's status update): nil fields are unchanged, a topic interest replaces the
// bloom filter and a bloom filter the topic interest. Values must have been validated
// by the wire's decoder.
func (p *Peer) Apply(ps PeerSettings) {
	p.apply(ps)
	p.s.peersChanged()
}

func (p *Peer) apply(ps PeerSettings) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ps.PoW != nil && *ps.PoW != p.pow {
		p.pow, p.rescan = *ps.PoW, true
	}
	switch {
	case ps.HasTopics:
		p.topics = make(map[Topic]struct{}, len(ps.Topics))
		for _, t := range ps.Topics {
			p.topics[t] = struct{}{}
		}
		p.fullNode, p.rescan = false, true
	case ps.Bloom != nil:
		p.topics, p.bloom, p.fullNode, p.rescan = nil, *ps.Bloom, ps.Bloom.IsFull(), true
	}
	if ps.LightNode != nil {
		p.light = *ps.LightNode
	}
	if ps.Confirmations != nil {
		p.confirmations = *ps.Confirmations
	}
	if ps.PacketLimits != nil {
		rl := *ps.PacketLimits
		p.rateLimits = &rl
	}
	if ps.ByteLimits != nil {
		rl := *ps.ByteLimits
		p.byteLimits = &rl
	}
}

// PeerInfo describes a connected peer.
type PeerInfo struct {
	ID         enode.ID
	Name       string
	RemoteAddr string
	// Protocol is the wire the peer gossips on ("shh/6", "waku/1"); Also lists the
	// other wires the same node speaks with us on the connection.
	Protocol      string
	Also          []string
	Trusted       bool
	PoW           float64 // the peer's requirement
	FullNode      bool    // the peer's bloom is all ones
	Topics        int     // the size of the peer's topic interest; -1: none (its bloom decides)
	LightNode     bool
	Confirmations bool
	RateLimits    *RateLimits // packets per second the peer accepts
	ByteLimits    *RateLimits // bytes per second the peer accepts
	Received      uint64      // envelopes the peer sent that we pooled (new or duplicate)
	Rejected      uint64      // envelopes the peer sent that broke an acceptance rule
	Sent          uint64      // envelopes we sent the peer
	Packets       uint64      // code-1 packets we sent the peer (Sent/Packets: envelopes per packet)
	Dropped       uint64      // packets discarded for exceeding PeerLimits
	Direct        uint64      // envelopes delivered directly (code 127) by this trusted peer
}

// Info returns the peer's description.
func (p *Peer) Info() PeerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	topics := -1
	if p.topics != nil {
		topics = len(p.topics)
	}
	return PeerInfo{ID: p.id, Name: p.p.Fullname(), RemoteAddr: p.p.RemoteAddr().String(), Protocol: p.Protocol(),
		Trusted: p.trusted.Load(), PoW: p.pow, FullNode: p.fullNode, Topics: topics, LightNode: p.light,
		Confirmations: p.confirmations, RateLimits: p.rateLimits, ByteLimits: p.byteLimits,
		Received: p.received.Load(), Rejected: p.rejected.Load(), Sent: p.sent.Load(), Packets: p.packets.Load(),
		Dropped: p.dropped.Load(), Direct: p.direct.Load()}
}

func (p *Peer) setPoW(pow float64) { p.Apply(PeerSettings{PoW: &pow}) }

func (p *Peer) setBloom(b Bloom) { p.Apply(PeerSettings{Bloom: &b}) }

// mark records env as known to the node behind p (on the wire that gossips with it).
func (p *Peer) mark(env *Envelope) {
	if q := p.primary.Load(); q != nil {
		p = q
	}
	p.mu.Lock()
	p.addKnownLocked(env.hash, env.expiry)
	p.mu.Unlock()
}

// wants reports whether the peer asks for an envelope of this PoW: its requirement,
// then its topic interest or bloom filter. p.mu must be held.
func (p *Peer) wants(c *pooled) bool {
	if c.pow < p.pow {
		return false
	}
	if p.topics != nil {
		_, ok := p.topics[c.env.topic]
		return ok
	}
	if p.fullNode {
		return true
	}
	sample := c.env.Bloom()
	return p.bloom.Matches(&sample)
}

// settingsChanged wakes the broadcast loop to send our new settings.
func (p *Peer) settingsChanged() {
	select {
	case p.notify <- struct{}{}:
	default: // a notification is pending; it will send the latest values
	}
}

// allow applies the inbound limits to one packet. A settings packet (a wire's own code:
// shh/6's PoW, bloom and rate limits, Waku's Status Update) counts against the byte
// limit only: dropping it would leave us forwarding what the peer no longer wants.
func (p *Peer) allow(size uint32, settings bool) bool {
	if p.trusted.Load() {
		return true
	}
	now := time.Now()
	if settings {
		return p.byteLimiter.AllowN(now, int(size))
	}
	return p.packetLimiter.AllowN(now, 1) && p.byteLimiter.AllowN(now, int(size))
}

// broadcastLoop sends the peer the pooled envelopes it has not seen and asks for, passes
// on changes of our settings, and forgets expired marks every ExpirationCycle. Envelopes
// go out eagerly: a new arrival in the pool wakes the loop, which waits CoalesceWindow
// (or until the packet budget has a token, whichever is later) so that what arrives
// meanwhile shares the packet, then sends everything new. Every TransmissionCycle it
// also sends whatever is still pending: what the budget held back, and the whole pool
// again after the peer changed its requirements (geth's cycle, and the only one with
// Config.PeriodicOnly). For a peer that advertised rate limits the cycle too waits for
// the budget, so that we never send it more than it accepts. A secondary wire of a node
// (see Peer) sends only settings. It returns nil when quit closes, ErrNotRunning when
// stop closes, or the error of a failed write.
func (p *Peer) broadcastLoop(quit, stop <-chan struct{}) error {
	transmit := time.NewTicker(TransmissionCycle)
	defer transmit.Stop()
	expire := time.NewTicker(ExpirationCycle)
	defer expire.Stop()
	eager := !p.s.cfg.PeriodicOnly
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	armed := false // flush is set to send new arrivals
	for {
		var arrivals <-chan struct{}
		if eager && !armed && p.primary.Load() == nil {
			arrivals = p.s.pool.arrivals(p.cursor)
		}
		select {
		case <-quit:
			return nil
		case <-stop:
			return ErrNotRunning
		case <-p.notify:
			if err := p.sendSettings(); err != nil {
				return err
			}
		case <-arrivals:
			flush.Reset(max(p.s.cfg.CoalesceWindow, p.budgetWait(time.Now())))
			armed = true
		case <-flush.C:
			if wait := p.budgetWait(time.Now()); wait > 0 {
				flush.Reset(wait) // the periodic cycle spent the token meanwhile
				continue
			}
			armed = false
			if err := p.transmit(); err != nil {
				return err
			}
		case <-transmit.C:
			if p.strict() {
				if wait := p.budgetWait(time.Now()); wait > 0 {
					if !armed {
						flush.Reset(wait)
						armed = true
					}
					continue
				}
			}
			if err := p.transmit(); err != nil {
				return err
			}
		case <-expire.C:
			p.expireKnown(p.s.now().Unix())
		}
	}
}

// transmit sends a pending settings change, then the envelopes the peer lacks.
func (p *Peer) transmit() error {
	// A settings change goes out before the envelopes that follow it, so a peer that has
	// processed an envelope we sent after SetMinPoW or SetBloom knows the new setting.
	select {
	case <-p.notify:
		if err := p.sendSettings(); err != nil {
			return err
		}
	default:
	}
	return p.broadcast()
}

// packetBudget is a token bucket of packets (and, for a peer that advertised byte
// limits, of bytes). The broadcast loop waits on it; control packets (settings,
// confirmations) spend it without waiting.
type packetBudget struct {
	mu       sync.Mutex // leaf
	tokens   float64
	bytes    float64
	byteNeed int // bytes the packet held back by the byte budget needs
	last     time.Time
}

// limitShare is the part of a peer's advertised rate limit we use: status-go's limiter
// (tsenart/tb) refills every 100 ms, and packets bunch up in transit, so sending at its
// exact rate would now and then exceed it (and with its drop-peer handler, cost the
// connection).
const limitShare = 0.75

// sendRate returns the packet rate and burst eager forwarding may use with this peer:
// PeerLimits, lowered to limitShare of the peer's advertised status-go limits (peer ID
// or IP, whichever is lower) with bursts of half of it. A peer that advertised no limit
// gets at least one packet per TransmissionCycle, the pace of geth's cycle, which sends
// what is pending whatever the budget.
func (p *Peer) sendRate() (perSecond, burst float64) {
	l := p.limits
	perSecond, burst = l.SendPacketsPerSecond, float64(l.SendPacketBurst)
	if lim := p.advertised(false); lim > 0 {
		return min(perSecond, lim*limitShare), max(1, min(burst, math.Floor(lim/2)))
	}
	floor := float64(time.Second) / float64(TransmissionCycle)
	return max(perSecond, floor), max(burst, 1)
}

// byteRate returns the bytes per second we may send the peer, limitShare of its
// advertised limit; 0 when it set none.
func (p *Peer) byteRate() float64 { return p.advertised(true) * limitShare }

// strict reports whether the peer advertised a limit we must never exceed.
func (p *Peer) strict() bool { return p.advertised(false) > 0 || p.advertised(true) > 0 }

// advertised returns the lowest non-zero limit (peer ID or IP) the peer advertised, of
// packets or of bytes, 0 if none.
func (p *Peer) advertised(bytes bool) float64 {
	p.mu.Lock()
	rl := p.rateLimits
	if bytes {
		rl = p.byteLimits
	}
	p.mu.Unlock()
	lowest := 0.0
	if rl != nil {
		for _, lim := range []uint64{rl.PeerID, rl.IP} {
			if lim > 0 && (lowest == 0 || float64(lim) < lowest) {
				lowest = float64(lim)
			}
		}
	}
	return lowest
}

// budgetWait refills the budget and returns how long until it holds a whole token (and
// the bytes of a packet the byte budget held back).
func (p *Peer) budgetWait(now time.Time) time.Duration {
	perSecond, burst := p.sendRate()
	byteRate := p.byteRate()
	b := &p.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now, perSecond, burst, byteRate)
	wait := time.Duration(0)
	if b.tokens < 1 {
		wait = time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
	}
	if byteRate > 0 && b.byteNeed > 0 && b.bytes < float64(b.byteNeed) {
		wait = max(wait, time.Duration((float64(b.byteNeed)-b.bytes)/byteRate*float64(time.Second)))
	}
	return wait
}

// refill adds the tokens earned since the last refill. b.mu must be held.
func (b *packetBudget) refill(now time.Time, perSecond, burst, byteRate float64) {
	if b.last.IsZero() {
		b.tokens, b.bytes = burst, byteRate
	} else {
		elapsed := now.Sub(b.last).Seconds()
		b.tokens = min(burst, b.tokens+elapsed*perSecond)
		b.bytes = min(byteRate, b.bytes+elapsed*byteRate)
	}
	b.last = now
}

// spend takes one packet of size bytes from the budget. With wait (a code-1 packet to a
// peer with advertised limits) it refuses when the budget cannot pay, remembering the
// bytes the packet needs; otherwise it always pays, going into debt if it must (the
// next code-1 packet waits longer).
func (p *Peer) spend(size int, wait bool) bool {
	perSecond, burst := p.sendRate()
	byteRate := p.byteRate()
	b := &p.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now(), perSecond, burst, byteRate)
	if wait && (b.tokens < 1 || byteRate > 0 && b.bytes < float64(size) && b.bytes < byteRate) {
		// A packet larger than the whole byte budget goes out once the budget is full.
		b.byteNeed = min(size, int(byteRate))
		return false
	}
	b.tokens--
	if byteRate > 0 {
		b.bytes -= float64(size)
	}
	b.byteNeed = 0
	return true
}

// advert is what we tell this peer now.
func (p *Peer) advert() Advert {
	return p.s.advert(p.wire, p.limits)
}

func (p *Peer) sendSettings() error {
	now := p.advert()
	if err := p.wire.SendUpdate(countingWriter{p}, p.heard, now); err != nil {
		return err
	}
	p.heard = now
	return nil
}

// countingWriter spends the budget for every control packet written through it.
type countingWriter struct{ p *Peer }

func (w countingWriter) WriteMsg(m p2p.Msg) error {
	w.p.spend(int(m.Size), false)
	return w.p.rw.WriteMsg(m)
}

// broadcast sends what arrived in the pool since the last broadcast (or the whole pool
// after the peer changed its requirements), in packets of at most MaxBatchBytes (and at
// most the bytes per second the peer accepts). For a peer that advertised limits it
// stops when the budget cannot pay for the next packet, and resumes there.
func (p *Peer) broadcast() error {
	if p.primary.Load() != nil {
		return nil // a secondary wire: the node gets envelopes on its primary
	}
	p.mu.Lock()
	if p.rescan {
		p.rescan, p.cursor = false, 0
	}
	p.mu.Unlock()

	candidates := p.s.pool.since(p.cursor)
	if len(candidates) == 0 {
		return nil
	}

	var bundle []*pooled
	p.mu.Lock()
	for _, c := range candidates {
		if c.evicted.Load() {
			continue
		}
		if _, seen := p.known[knownKey(c.env.hash)]; seen || !p.wants(c) {
			continue
		}
		bundle = append(bundle, c)
	}
	p.mu.Unlock()

	strict := p.strict()
	limit := p.limits.MaxBatchBytes
	if br := p.byteRate(); br > 0 {
		limit = min(limit, max(int(br), 1))
	}
	for len(bundle) > 0 {
		n, size := 0, 0
		for n < len(bundle) && (n == 0 || size+len(bundle[n].env.raw) <= limit-9) {
			size += len(bundle[n].env.raw)
			n++
		}
		if strict && !p.spend(size+9, true) {
			p.cursor = bundle[0].seq - 1 // resume here when the budget can pay
			return nil
		}
		if err := p.sendEnvelopes(messagesCode, bundle[:n], size, !strict); err != nil {
			return err
		}
		bundle = bundle[n:]
	}
	p.cursor = candidates[len(candidates)-1].seq
	return nil
}

// sendEnvelopes writes one packet holding the list of envs (contentSize bytes of RLP)
// and marks them as known to the peer; spend takes the packet from the budget (a strict
// peer's packets were paid for already).
func (p *Peer) sendEnvelopes(code uint64, envs []*pooled, contentSize int, spend bool) error {
	p.batch = appendHeader(p.batch[:0], 0xc0, 0xf7, contentSize)
	for _, e := range envs {
		p.batch = append(p.batch, e.env.raw...)
	}
	// Counted before the write so that the count never lags what the peer has seen.
	p.sent.Add(uint64(len(envs)))
	p.packets.Add(1)
	for _, e := range envs {
		p.s.stats.sentFrom[e.origin][p.wireIdx].Add(1)
	}
	if spend {
		p.spend(len(p.batch), false) // may go into debt after the periodic cycle: eager sends wait longer
	}
	if err := p.rw.WriteMsg(p2p.Msg{Code: code, Size: uint32(len(p.batch)), Payload: bytes.NewReader(p.batch)}); err != nil {
		p.sent.Add(^uint64(len(envs) - 1))
		for _, e := range envs {
			p.s.stats.sentFrom[e.origin][p.wireIdx].Add(^uint64(0))
		}
		return fmt.Errorf("send %d envelopes: %w", len(envs), err)
	}
	p.mu.Lock()
	for _, e := range envs {
		p.addKnownLocked(e.env.hash, e.env.expiry)
	}
	p.mu.Unlock()
	return nil
}

// maxKnown bounds a peer's known set. Without it a peer sending tiny envelopes at its
// byte limit (4 MiB/s, about 140,000 a second) for the longest TTL (300 s) made its set
// hold tens of millions of hashes, gigabytes, whatever the pool kept. 65,536 covers what
// a pool under honest load holds (4,000 msg/s for 15 s) at about 1.5 MiB a peer.
const maxKnown = 1 << 16

// knownKey is what a known set keys an envelope by: the first 8 bytes of its hash, a
// quarter of the hash's 32 (a known set held 32-byte hashes twice, in the map and the
// ring: about 6 MiB a peer when full, 1.5 now). Keccak-256's output is uniform, so
// among maxKnown entries an envelope the peer lacks is taken for known (and not sent to
// it; other peers still send it) with odds of 2⁻⁴⁸; causing that on purpose means
// matching 64 bits of the hash of an envelope not yet seen, 2⁶⁴ work.
func knownKey(h common.Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// addKnownLocked records h as known to the peer until exp. Caller holds p.mu.
func (p *Peer) addKnownLocked(h common.Hash, exp uint32) { p.addKnownKeyLocked(knownKey(h), exp) }

// addKnownKeyLocked records the envelope of knownKey k as known to the peer until exp.
// Caller holds p.mu.
func (p *Peer) addKnownKeyLocked(k uint64, exp uint32) {
	if _, ok := p.known[k]; !ok {
		if len(p.knownRing) < maxKnown {
			p.knownRing = append(p.knownRing, k)
		} else {
			delete(p.known, p.knownRing[p.knownNext]) // oldest first
			p.knownRing[p.knownNext] = k
			p.knownNext = (p.knownNext + 1) % maxKnown
		}
	}
	p.known[k] = exp
}

// knownCompactMin is the ring length below which expireKnown does not rebuild: a small
// set costs little, and rebuilding it every cycle would cost more.
const knownCompactMin = 1024

// expireKnown drops the entries that expired before now. Go maps keep their size after
// deletes and the ring keeps every insertion, so after a burst the set would hold its
// peak for the peer's lifetime: once the live entries are at most a quarter of the ring,
// both are rebuilt at the live size, oldest first as before.
func (p *Peer) expireKnown(now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, exp := range p.known {
		if int64(exp) < now {
			delete(p.known, k)
		}
	}
	if n := len(p.knownRing); n >= knownCompactMin && len(p.known) <= n/4 {
		known := make(map[uint64]uint32, len(p.known))
		ring := make([]uint64, 0, len(p.known))
		for i := range n {
			k := p.knownRing[(p.knownNext+i)%n] // oldest first; knownNext is 0 until the ring is full
			if exp, live := p.known[k]; live {
				if _, dup := known[k]; !dup { // re-added after expiring: keep one place
					known[k] = exp
					ring = append(ring, k)
				}
			}
		}
		p.known, p.knownRing, p.knownNext = known, ring, 0
	}
}

// SendP2PRaw delivers archived envelopes directly (code 127) from their RLP bytes: as
// one RLP list when asList is set (status-go's batches), else each as its own packet
// (geth's form). The bytes are sent as stored; nothing re-encodes them.
func (p *Peer) SendP2PRaw(raw [][]byte, asList bool) error {
	if !asList {
		for _, r := range raw {
			if err := p.sendRaw(p2pMessageCode, r); err != nil {
				return err
			}
		}
		return nil
	}
	size := 0
	for _, r := range raw {
		size += len(r)
	}
	body := appendHeader(make([]byte, 0, size+9), 0xc0, 0xf7, size)
	for _, r := range raw {
		body = append(body, r...)
	}
	return p.sendRaw(p2pMessageCode, body)
}

// SendRequest sends a history request (code 126) and trusts the peer from now on, as
// geth's RequestHistoricMessages does. body is the packet's RLP.
func (p *Peer) SendRequest(body []byte) error {
	p.trusted.Store(true)
	return p.sendRaw(p2pRequestCode, body)
}

// SendSyncRequest asks a peer mailserver for a range of its archive (code 123, status-go's
// SyncMailRequest) and trusts the peer from now on, so that its code-124 answers count.
func (p *Peer) SendSyncRequest(body []byte) error {
	p.trusted.Store(true)
	return p.sendRaw(p2pSyncRequestCode, body)
}

// SendSyncResponse answers a sync request (code 124); body is the packet's RLP.
func (p *Peer) SendSyncResponse(body []byte) error {
	return p.sendRaw(p2pSyncResponseCode, body)
}

// SendRequestComplete answers a history request (code 125); body is the packet's RLP.
func (p *Peer) SendRequestComplete(body []byte) error {
	return p.sendRaw(p2pRequestCompleteCode, body)
}

func (p *Peer) sendRaw(code uint64, body []byte) error {
	if err := p.rw.WriteMsg(p2p.Msg{Code: code, Size: uint32(len(body)), Payload: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("send packet %d to %s: %w", code, p.id.TerminalString(), err)
	}
	return nil
}
