package whisper

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
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

// Handshake sends ours and reads the peer's status concurrently, as geth does, and
// waits for its own send before returning (p2p bounds a write with its frame deadline).
// The peer's first packet must be the status; anything else, an oversize or malformed
// status, no status within policy.Timeout, or a light peer we refuse is an error
// wrapping ErrHandshake, after which the caller disconnects.
func Handshake(rw p2p.MsgReadWriter, ours Status, policy HandshakePolicy) (Status, error) {
	if policy.Timeout > 0 && policy.Abort == nil {
		return Status{}, fmt.Errorf("handshake: %w: a timeout needs an abort function", ErrHandshake)
	}
	ours.LightNode = policy.LightNode
	body, err := EncodeStatus(ours)
	if err != nil {
		return Status{}, err
	}
	sent := make(chan error, 1)
	go func() { sent <- p2p.Send(rw, statusCode, rlp.RawValue(body)) }()

	type result struct {
		st  Status
		err error
	}
	read := make(chan result, 1)
	go func() { // waited for on every path below
		st, err := readStatus(rw)
		read <- result{st, err}
	}()
	var timeout <-chan time.Time
	if policy.Timeout > 0 {
		t := time.NewTimer(policy.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var got result
	select {
	case got = <-read:
	case <-timeout:
		policy.Abort()
		<-read
		got.err = fmt.Errorf("handshake: %w: no status within %v", ErrHandshake, policy.Timeout)
	}
	theirs, readErr := got.st, got.err
	if err := <-sent; err != nil && readErr == nil {
		readErr = fmt.Errorf("send status: %w", err)
	}
	if readErr != nil {
		return Status{}, readErr
	}
	if theirs.LightNode && policy.LightNode && policy.RestrictLightPeers {
		return Status{}, fmt.Errorf("handshake: %w: both sides are light nodes", ErrHandshake)
	}
	return theirs, nil
}

func readStatus(rw p2p.MsgReadWriter) (Status, error) {
	msg, err := rw.ReadMsg()
	if err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	defer msg.Discard()
	if msg.Code != statusCode {
		return Status{}, fmt.Errorf("handshake: %w: packet code %d before status", ErrHandshake, msg.Code)
	}
	if msg.Size > maxStatusSize {
		return Status{}, fmt.Errorf("handshake: %w: status of %d bytes", ErrHandshake, msg.Size)
	}
	body := make([]byte, msg.Size)
	if _, err := io.ReadFull(msg.Payload, body); err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	return DecodeStatus(body)
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
	// gathering into fewer, larger packets. Defaults 50 and 20. A peer that advertises
	// status-go rate limits (handshake or code 20) gets at most its lower limit (peer ID
	// or IP), but never less than one packet per TransmissionCycle: the periodic cycle
	// sends what is pending whatever the budget, as geth does, so no envelope waits
	// longer than a cycle.
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

// Peer is one connected shh/6 peer. Its state is written by its own read loop (what the
// peer tells us) and read by its broadcast loop (what we send it).
type Peer struct {
	s      *Service
	p      *p2p.Peer
	id     enode.ID
	rw     p2p.MsgReadWriter
	remote Status // the handshake as received

	trusted atomic.Bool

	mu       sync.Mutex // guards the fields below; never held while writing to rw
	pow      float64
	bloom    Bloom
	fullNode bool
	rescan   bool // requirements changed: the next cycle looks at the whole pool again
	// known holds the hashes of envelopes the peer has (it sent them, or we did) and
	// their expiry, so that none is sent to it (again). At most maxKnown: eviction policy
	// oldest first (knownRing, a FIFO of insertions), since forgetting costs at most a
	// duplicate send; expired entries go at each expiry cycle.
	known      map[common.Hash]uint32
	knownRing  []common.Hash
	knownNext  int
	rateLimits *RateLimits

	notify        chan struct{} // cap 1: our settings changed (coalescing)
	sentPoW       float64       // broadcast loop only: what the peer last heard from us
	sentBloom     Bloom
	cursor        uint64       // broadcast loop only: last pool seq examined
	batch         []byte       // broadcast loop only: reused packet buffer
	budget        packetBudget // broadcast loop only: eager forwarding's packet budget
	packetLimiter *rate.Limiter
	byteLimiter   *rate.Limiter

	received, sent, packets, dropped, direct atomic.Uint64

	done chan struct{} // closed when the peer is removed from the service
}

func newPeer(s *Service, pp *p2p.Peer, rw p2p.MsgReadWriter, remote, ours Status) *Peer {
	l := s.cfg.Limits
	p := &Peer{
		s: s, p: pp, id: pp.ID(), rw: rw, remote: remote,
		known:         make(map[common.Hash]uint32),
		notify:        make(chan struct{}, 1),
		done:          make(chan struct{}),
		sentPoW:       ours.PoW,
		sentBloom:     ours.Bloom,
		packetLimiter: rate.NewLimiter(rate.Limit(l.PacketsPerSecond), l.PacketBurst),
		byteLimiter:   rate.NewLimiter(rate.Limit(l.BytesPerSecond), l.ByteBurst),
	}
	p.setRequirements(remote.PoW, remote.Bloom)
	p.rateLimits = remote.RateLimits
	return p
}

// ID is the peer's node ID.
func (p *Peer) ID() enode.ID { return p.id }

// Done is closed once the peer has disconnected (and left the service's peer set): a
// request waiting for this peer's answer can stop waiting.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Trusted reports whether the peer may send direct messages (code 127).
func (p *Peer) Trusted() bool { return p.trusted.Load() }

// PeerInfo describes a connected peer.
type PeerInfo struct {
	ID            enode.ID
	Name          string
	RemoteAddr    string
	Trusted       bool
	PoW           float64 // the peer's requirement
	FullNode      bool    // the peer's bloom is all ones
	LightNode     bool
	Confirmations bool
	RateLimits    *RateLimits
	Received      uint64 // envelopes the peer sent that we pooled (new or duplicate)
	Sent          uint64 // envelopes we sent the peer
	Packets       uint64 // code-1 packets we sent the peer (Sent/Packets: envelopes per packet)
	Dropped       uint64 // packets discarded for exceeding PeerLimits
	Direct        uint64 // envelopes delivered directly (code 127) by this trusted peer
}

// Info returns the peer's description.
func (p *Peer) Info() PeerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PeerInfo{ID: p.id, Name: p.p.Fullname(), RemoteAddr: p.p.RemoteAddr().String(), Trusted: p.trusted.Load(),
		PoW: p.pow, FullNode: p.fullNode, LightNode: p.remote.LightNode, Confirmations: p.remote.Confirmations,
		RateLimits: p.rateLimits, Received: p.received.Load(), Sent: p.sent.Load(), Packets: p.packets.Load(), Dropped: p.dropped.Load(),
		Direct: p.direct.Load()}
}

func (p *Peer) setRequirements(pow float64, bloom Bloom) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pow, p.bloom, p.fullNode, p.rescan = pow, bloom, bloom.IsFull(), true
}

func (p *Peer) setPoW(pow float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pow, p.rescan = pow, true
}

func (p *Peer) setBloom(b Bloom) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bloom, p.fullNode, p.rescan = b, b.IsFull(), true
}

func (p *Peer) mark(env *Envelope) {
	p.mu.Lock()
	p.addKnownLocked(env.hash, env.expiry)
	p.mu.Unlock()
}

// settingsChanged wakes the broadcast loop to send our new PoW or bloom.
func (p *Peer) settingsChanged() {
	select {
	case p.notify <- struct{}{}:
	default: // a notification is pending; it will send the latest values
	}
}

// allow applies the inbound limits to one packet.
func (p *Peer) allow(size uint32) bool {
	if p.trusted.Load() {
		return true
	}
	now := time.Now()
	return p.packetLimiter.AllowN(now, 1) && p.byteLimiter.AllowN(now, int(size))
}

// broadcastLoop sends the peer the pooled envelopes it has not seen and asks for, passes
// on changes of our settings, and forgets expired marks every ExpirationCycle. Envelopes
// go out eagerly: a new arrival in the pool wakes the loop, which waits CoalesceWindow
// (or until the packet budget has a token, whichever is later) so that what arrives
// meanwhile shares the packet, then sends everything new. Every TransmissionCycle it
// also sends whatever is still pending, whatever the budget: what the budget held back,
// and the whole pool again after the peer changed its PoW or bloom (geth's cycle, and
// the only one with Config.PeriodicOnly). It returns nil when quit closes,
// ErrNotRunning when stop closes, or the error of a failed write.
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
		if eager && !armed {
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

// packetBudget is a token bucket of code-1 packets, owned by the broadcast loop.
type packetBudget struct {
	tokens float64
	last   time.Time
}

// sendRate returns the packet rate and burst eager forwarding may use with this peer:
// PeerLimits, lowered to the peer's advertised status-go limits, but at least one
// packet per TransmissionCycle.
func (p *Peer) sendRate() (perSecond, burst float64) {
	l := p.s.cfg.Limits
	perSecond, burst = l.SendPacketsPerSecond, float64(l.SendPacketBurst)
	p.mu.Lock()
	rl := p.rateLimits
	p.mu.Unlock()
	if rl != nil {
		for _, lim := range []uint64{rl.PeerID, rl.IP} {
			if lim > 0 {
				perSecond, burst = min(perSecond, float64(lim)), min(burst, float64(lim))
			}
		}
	}
	floor := float64(time.Second) / float64(TransmissionCycle)
	return max(perSecond, floor), max(burst, 1)
}

// budgetWait refills the budget and returns how long until it holds a whole token.
func (p *Peer) budgetWait(now time.Time) time.Duration {
	perSecond, burst := p.sendRate()
	b := &p.budget
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*perSecond)
	}
	b.last = now
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
}

func (p *Peer) sendSettings() error {
	st := p.s.settings.Load()
	if st.minPoW != p.sentPoW {
		if err := p2p.Send(p.rw, powRequirementCode, math.Float64bits(st.minPoW)); err != nil {
			return fmt.Errorf("send PoW requirement: %w", err)
		}
		p.sentPoW = st.minPoW
	}
	if st.bloom != p.sentBloom {
		if err := p2p.Send(p.rw, bloomFilterExCode, st.bloom[:]); err != nil {
			return fmt.Errorf("send bloom filter: %w", err)
		}
		p.sentBloom = st.bloom
	}
	return nil
}

// broadcast sends what arrived in the pool since the last broadcast (or the whole pool
// after the peer changed its requirements), in packets of at most MaxBatchBytes.
func (p *Peer) broadcast() error {
	p.mu.Lock()
	if p.rescan {
		p.rescan, p.cursor = false, 0
	}
	pow, bloom, full := p.pow, p.bloom, p.fullNode
	p.mu.Unlock()

	candidates := p.s.pool.since(p.cursor)
	if len(candidates) == 0 {
		return nil
	}
	p.cursor = candidates[len(candidates)-1].seq

	var bundle []*Envelope
	limit := p.s.cfg.Limits.MaxBatchBytes
	p.mu.Lock()
	for _, c := range candidates {
		if c.evicted.Load() {
			continue
		}
		if _, seen := p.known[c.env.hash]; seen || c.pow < pow {
			continue
		}
		if !full {
			sample := c.env.Bloom()
			if !bloom.Matches(&sample) {
				continue
			}
		}
		bundle = append(bundle, c.env)
	}
	p.mu.Unlock()

	for len(bundle) > 0 {
		n, size := 0, 0
		for n < len(bundle) && (n == 0 || size+len(bundle[n].raw) <= limit-9) {
			size += len(bundle[n].raw)
			n++
		}
		if err := p.sendEnvelopes(messagesCode, bundle[:n], size); err != nil {
			return err
		}
		bundle = bundle[n:]
	}
	return nil
}

// sendEnvelopes writes one packet holding the list of envs (contentSize bytes of RLP)
// and marks them as known to the peer.
func (p *Peer) sendEnvelopes(code uint64, envs []*Envelope, contentSize int) error {
	p.batch = appendHeader(p.batch[:0], 0xc0, 0xf7, contentSize)
	for _, e := range envs {
		p.batch = append(p.batch, e.raw...)
	}
	// Counted before the write so that the count never lags what the peer has seen.
	p.sent.Add(uint64(len(envs)))
	p.packets.Add(1)
	p.budget.tokens-- // may go below zero after the periodic cycle: eager sends wait longer
	if err := p.rw.WriteMsg(p2p.Msg{Code: code, Size: uint32(len(p.batch)), Payload: bytes.NewReader(p.batch)}); err != nil {
		p.sent.Add(^uint64(len(envs) - 1))
		return fmt.Errorf("send %d envelopes: %w", len(envs), err)
	}
	p.mu.Lock()
	for _, e := range envs {
		p.addKnownLocked(e.hash, e.expiry)
	}
	p.mu.Unlock()
	return nil
}

// maxKnown bounds a peer's known set. Without it a peer sending tiny envelopes at its
// byte limit (4 MiB/s, about 140,000 a second) for the longest TTL (300 s) made its set
// hold tens of millions of hashes, gigabytes, whatever the pool kept. 65,536 covers what
// a pool under honest load holds (4,000 msg/s for 15 s) at about 6 MiB a peer.
const maxKnown = 1 << 16

// addKnownLocked records h as known to the peer until exp. Caller holds p.mu.
func (p *Peer) addKnownLocked(h common.Hash, exp uint32) {
	if _, ok := p.known[h]; !ok {
		if len(p.knownRing) < maxKnown {
			p.knownRing = append(p.knownRing, h)
		} else {
			delete(p.known, p.knownRing[p.knownNext]) // oldest first
			p.knownRing[p.knownNext] = h
			p.knownNext = (p.knownNext + 1) % maxKnown
		}
	}
	p.known[h] = exp
}

func (p *Peer) expireKnown(now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, exp := range p.known {
		if int64(exp) < now {
			delete(p.known, h)
		}
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
