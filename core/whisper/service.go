package whisper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Config configures a Service. The zero value is a full node that accepts any PoW, relays
// every topic, and applies geth's disconnect policy.
type Config struct {
	// MinPoW is the PoW we require of envelopes and advertise to peers. Default 0; Status
	// nodes advertise 0.001 (core/node sets that).
	MinPoW float64
	// Bloom is the topic filter we advertise and enforce. nil means a full node (all ones).
	// Ignored when TopicBloom is set.
	Bloom *Bloom
	// TopicBloom advertises only the topics of installed subscriptions, as status-go's
	// light client does, and updates peers when subscriptions change. Default false.
	TopicBloom bool
	// MaxMessageSize bounds an envelope's Size and a packet's size. 0 means
	// DefaultMaxMessageSize (1 MiB); values above MaxMessageSize are an error.
	MaxMessageSize uint32
	// LightNode is the light flag we send in our handshake. Default false.
	LightNode bool
	// RestrictLightPeers refuses a light peer while we are light ourselves (geth's
	// behaviour). Default false, as in status-go.
	RestrictLightPeers bool
	// Confirmations sends status-go's codes 12 and 11 after every code-1 packet and
	// advertises it in the handshake. Default false.
	Confirmations bool
	// SoftTimeErrors keeps peers that send envelopes from the future or very old ones
	// (status-go's behaviour; the envelope is still rejected). Default false: geth
	// disconnects such peers.
	SoftTimeErrors bool
	// MaxPoolBytes bounds the memory of pooled envelopes: their Size and 256 bytes each
	// for holding them (pooledOverhead), so that tiny envelopes cannot hold many times
	// the bound. Default 256 MiB (about 480,000 envelopes of Status' usual 300 bytes). When full,
	// the overflow policy is "largest share first" (see pool): our own envelopes evict
	// the cheapest envelopes of the peer holding the most bytes, a peer's envelope evicts
	// those of a peer holding more than the sender, and what cannot get in is dropped
	// (counted in Stats.PoolFull; our own Send fails with ErrPoolFull only when our own
	// envelopes fill the pool).
	MaxPoolBytes int
	// MaxTTL is the longest TTL, in seconds, of an envelope we accept, pool and forward.
	// Default DefaultMaxTTL (300 s). Longer ones are refused without disconnecting the
	// peer (ErrTTLTooLong, counted in Stats.LongTTL): neither geth nor status-go has the
	// rule, but no client needs more (Status chat uses 10–15 s, geth's default is 50 s,
	// status-go's largest TTL setting 120 s), and it bounds how long one envelope can
	// hold pool memory.
	MaxTTL uint32
	// HandshakeTimeout bounds the wait for a new peer's status packet; a peer silent
	// that long is disconnected (it would hold a peer slot for ever). Default
	// DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration
	// Limits are the per-peer inbound limits and the outbound packet budget; see
	// PeerLimits for defaults.
	Limits PeerLimits
	// CoalesceWindow is how long eager forwarding lets a new envelope wait for others to
	// share its packet. Default 1 ms (DefaultCoalesceWindow).
	CoalesceWindow time.Duration
	// PeriodicOnly sends envelopes only every TransmissionCycle, as geth v1.9.20 and
	// status-go do, instead of eagerly. Default false; for comparisons.
	PeriodicOnly bool
	// QueueSize bounds the queue between peers and the decrypting workers, and each
	// subscription's buffer. Default 1024 (geth's messageQueueLimit). Overflow policy:
	// block (backpressure onto the peer that sent the envelope).
	QueueSize int
	// Workers decrypt and dispatch envelopes to subscriptions. Default GOMAXPROCS.
	Workers int

	// Archiver, when set, receives every envelope newly accepted into the pool (the
	// mailserver's archive).
	Archiver Archiver
	// Requests, when set, handles history requests (code 126) from any peer.
	Requests RequestHandler
	// Completions, when set, receives request-complete packets (code 125) from trusted peers.
	Completions CompletionHandler
	// Syncs, when set, serves mailserver sync requests (code 123) from any peer and
	// receives sync responses (code 124) from trusted peers.
	Syncs SyncHandler

	// Logger receives lifecycle logs at Info and per-peer detail at Debug. Default: discard.
	Logger *slog.Logger
	// Clock is the time used for validation, expiry and setting tolerances, and to
	// tell outages. Default time.Now.
	Clock func() time.Time
	// OutageThreshold is how long the node may be without any peer, or its clock jump
	// forward, before that counts as an outage (OutageSince): a time in which envelopes
	// were posted that only mailservers have now. Default DefaultOutageThreshold (10 s).
	OutageThreshold time.Duration
}

// Archiver stores envelopes for later delivery; the mailserver implements it. Archive is
// called on the goroutine of the peer that delivered the envelope and must not block for long.
type Archiver interface {
	Archive(env *Envelope)
}

// RequestHandler serves a history request (code 126). payload is the packet body: one
// envelope (geth and status-go clients) or status-go's MessagesRequest struct. It runs on
// the requesting peer's read goroutine; an error disconnects the peer.
type RequestHandler interface {
	HandleRequest(p *Peer, payload []byte) error
}

// CompletionHandler receives a mailserver's request-complete packet (code 125) from a
// trusted peer, on that peer's read goroutine.
type CompletionHandler interface {
	HandleRequestComplete(p *Peer, payload []byte)
}

// SyncHandler is a mailserver's side of status-go's mailserver sync: code 123 asks for
// a range of the archive, answered by code-124 packets. Both run on the peer's read
// goroutine; an error from HandleSyncRequest disconnects the peer.
type SyncHandler interface {
	HandleSyncRequest(p *Peer, payload []byte) error
	HandleSyncResponse(p *Peer, payload []byte)
}

func (c Config) withDefaults() Config {
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxPoolBytes == 0 {
		c.MaxPoolBytes = 256 << 20
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.CoalesceWindow == 0 {
		c.CoalesceWindow = DefaultCoalesceWindow
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	c.Limits = c.Limits.withDefaults(c.MaxMessageSize)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.OutageThreshold == 0 {
		c.OutageThreshold = DefaultOutageThreshold
	}
	return c
}

// Validate reports the first invalid setting, naming it.
func (c Config) Validate() error {
	if math.IsNaN(c.MinPoW) || math.IsInf(c.MinPoW, 0) || c.MinPoW < 0 {
		return fmt.Errorf("min_pow: %v is not a finite non-negative number", c.MinPoW)
	}
	if c.MaxMessageSize > MaxMessageSize {
		return fmt.Errorf("max_message_size: %d exceeds the hard limit %d", c.MaxMessageSize, MaxMessageSize)
	}
	if c.MaxPoolBytes < 0 || c.QueueSize < 0 || c.Workers < 0 || c.HandshakeTimeout < 0 || c.CoalesceWindow < 0 || c.OutageThreshold < 0 {
		return errors.New("max_pool_bytes, queue_size, workers, handshake_timeout, coalesce_window and outage_threshold must not be negative")
	}
	return c.Limits.Validate()
}

// settings is the node's advertised requirement, replaced as a whole on every change. The
// previous values stay in force for DefaultSyncAllowance seconds after a change (§2.10).
type settings struct {
	minPoW, prevPoW float64
	powChanged      time.Time
	bloom, prevBlm  Bloom
	bloomChanged    time.Time
	// topics is our topic interest (Config.TopicBloom: the topics of our filters),
	// sorted, advertised on wires that carry one; nil otherwise, and above
	// MaxTopicInterest topics (the bloom alone then).
	topics, prevTopics []Topic
	topicSet, prevSet  map[Topic]struct{}
	topicsChanged      time.Time
}

// topicAllowed reports whether a peer that heard our topic interest may send topic t
// at now: it is in our interest, or was until DefaultSyncAllowance seconds ago.
func (st *settings) topicAllowed(t Topic, now time.Time) bool {
	if st.topicSet == nil {
		return true
	}
	if _, ok := st.topicSet[t]; ok {
		return true
	}
	if now.Sub(st.topicsChanged) < DefaultSyncAllowance*time.Second {
		if st.prevSet == nil {
			return true
		}
		_, ok := st.prevSet[t]
		return ok
	}
	return false
}

// acceptance returns the rules in force at now.
func (st *settings) acceptance(maxSize, maxTTL uint32, now time.Time) Acceptance {
	a := Acceptance{MaxSize: maxSize, MaxTTL: maxTTL, MinPoW: st.minPoW, PrevMinPoW: st.minPoW, Bloom: st.bloom, PrevBloom: st.bloom}
	if now.Sub(st.powChanged) < DefaultSyncAllowance*time.Second {
		a.PrevMinPoW = st.prevPoW
	}
	if now.Sub(st.bloomChanged) < DefaultSyncAllowance*time.Second {
		a.PrevBloom = st.prevBlm
	}
	return a
}

// ErrPoolFull: the envelope pool holds MaxPoolBytes already and the overflow policy
// leaves no room for the envelope.
var ErrPoolFull = errors.New("envelope pool full")

// ErrNotRunning: the service's Run has not started or has returned.
var ErrNotRunning = errors.New("whisper service not running")

// Service is a Whisper v6 node: the envelope pool, the subscriptions, and the shh/6
// protocol handler that gossips with peers. Build it with NewService, run it with Run,
// and hand Protocols() to a p2p.Server. All methods are safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	filters *Filters
	signers *Signers // the filters' signer cache (Signers)
	pool    *pool

	settings atomic.Pointer[settings]
	setMu    sync.Mutex // serialises setting changes so notifications go out in order

	peerMu  sync.RWMutex
	peers   map[enode.ID]*Peer   // the wire of each node that gossips
	others  map[enode.ID][]*Peer // the node's other wires on the same connection
	trusted map[enode.ID]bool
	// changed is closed (and replaced) when a peer connects, leaves or changes its
	// settings, or an outage is recorded: PeersChanged.
	changed chan struct{}
	outages outages

	wireMu sync.Mutex
	wires  []*wireEntry

	subMu sync.RWMutex
	subs  map[string]*Subscription

	queue   chan delivery // overflow policy: block (backpressure onto the sending peer)
	running atomic.Bool
	done    chan struct{} // closed when Run's context ends
	wg      sync.WaitGroup

	stats serviceStats
}

type serviceStats struct {
	received, duplicates, rejected, poolFull, evicted, longTTL, expired, topicMismatch atomic.Uint64
	// receivedBy counts new envelopes per wire they came in on; sentFrom counts
	// envelopes sent per origin (0: our own, i+1: wire i) and wire they went out on.
	receivedBy [maxWires]atomic.Uint64
	sentFrom   [maxWires + 1][maxWires]atomic.Uint64
}

// maxWires bounds the wires of one service (shh and waku need two).
const maxWires = 4

// wireEntry is a wire registered with Protocol.
type wireEntry struct {
	wire   Wire
	idx    int
	cfg    WireConfig
	limits PeerLimits
}

// delivery is one envelope on its way to the decrypting workers.
type delivery struct {
	env   *Envelope
	p2p   bool // direct delivery by a trusted peer (code 127)
	local bool // our own Send
}

// NewService validates cfg and builds a service. It starts nothing.
func NewService(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("whisper config: %w", err)
	}
	cfg = cfg.withDefaults()
	s := &Service{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Clock,
		filters: NewFilters(),
		pool:    newPool(cfg.MaxPoolBytes),
		peers:   make(map[enode.ID]*Peer),
		others:  make(map[enode.ID][]*Peer),
		trusted: make(map[enode.ID]bool),
		changed: make(chan struct{}),
		subs:    make(map[string]*Subscription),
		queue:   make(chan delivery, cfg.QueueSize),
		done:    make(chan struct{}),
		signers: NewSigners(SignerCacheSize),
	}
	s.filters.signers = s.signers
	st := &settings{minPoW: cfg.MinPoW, prevPoW: cfg.MinPoW, bloom: FullBloom()}
	if cfg.TopicBloom {
		st.bloom = Bloom{}
		st.topics, st.topicSet = []Topic{}, map[Topic]struct{}{}
		st.prevTopics, st.prevSet = st.topics, st.topicSet
	} else if cfg.Bloom != nil {
		st.bloom = *cfg.Bloom
	}
	st.prevBlm = st.bloom
	s.settings.Store(st)
	return s, nil
}

// Run starts the expiry cycle and the decrypting workers and blocks until ctx ends. Peers
// are served only while Run runs; when it returns, every handler has been told to stop,
// and the worker goroutines have exited. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("whisper service: Run called twice")
	}
	s.log.Info("whisper started", "version", ProtocolVersionStr, "min_pow", s.MinPoW(), "workers", s.cfg.Workers)
	for range s.cfg.Workers {
		s.wg.Add(1)
		go s.dispatchLoop()
	}
	s.wg.Add(1)
	go s.expireLoop()

	<-ctx.Done()
	close(s.done)
	s.wg.Wait()
	s.closeSubscriptions()
	s.log.Info("whisper stopped")
	return nil
}

// stopped reports whether Run has returned or is returning. Before Run starts, peers and
// Send are already served: envelopes wait in the queue for the workers.
func (s *Service) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Service) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(ExpirationCycle)
	defer t.Stop()
	var jump clockJump
	for {
		select {
		case tick := <-t.C:
			if n := s.pool.expire(s.now().Unix()); n > 0 {
				s.stats.expired.Add(uint64(n))
			}
			s.checkClockJump(&jump, tick)
		case <-s.done:
			return
		}
	}
}

// dispatchLoop decrypts queued envelopes and hands the messages to subscriptions.
func (s *Service) dispatchLoop() {
	defer s.wg.Done()
	for {
		select {
		case d := <-s.queue:
			s.dispatch(d)
		case <-s.done:
			return
		}
	}
}

func (s *Service) dispatch(d delivery) {
	// A bug in decoding one envelope must cost that envelope, not the node.
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("whisper dispatch panicked", "envelope", d.env, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	for _, m := range s.filters.match(d.env, d.p2p, d.local) {
		s.subMu.RLock()
		sub := s.subs[m.FilterID]
		s.subMu.RUnlock()
		if sub != nil {
			sub.deliver(m.Message, s.done)
		}
	}
}

// enqueue hands an envelope to the workers, blocking while the queue is full.
func (s *Service) enqueue(d delivery) error {
	select {
	case s.queue <- d:
		return nil
	case <-s.done:
		return ErrNotRunning
	}
}

// ingest applies the acceptance rules to env and pools it; from is the peer that sent
// it, nil for our own Send. It reports whether the envelope is now pooled (new or
// duplicate), and the rule it broke. An accepted envelope is marked as known to from
// before it enters the pool, so that no broadcast loop woken by its arrival sends it
// back. A new envelope is archived and queued for the subscriptions by publish, which
// the caller runs after its own bookkeeping, so that a subscriber never sees a message
// before the peer that delivered it is credited with it.
func (s *Service) ingest(env *Envelope, from *Peer) (cached, isNew bool, err error) {
	now := s.now()
	st := s.settings.Load()
	acc := st.acceptance(s.cfg.MaxMessageSize, s.cfg.MaxTTL, now)
	if from == nil {
		// Our bloom filter (and topic interest) says what we want to receive, not what we
		// may send: a light node posts a 1:1 message on its recipient's topic.
		acc.Bloom, acc.PrevBloom = FullBloom(), FullBloom()
	}
	pow, ok, err := acc.accept(env, now)
	if err != nil {
		if errors.Is(err, ErrTTLTooLong) {
			s.stats.longTTL.Add(1)
		} else {
			s.stats.rejected.Add(1)
		}
		return false, false, err
	}
	if !ok {
		return false, false, nil // expired recently: dropped silently
	}
	var id enode.ID
	origin := uint8(0)
	if from != nil {
		if from.wire.TopicInterest() && !st.topicAllowed(env.topic, now) {
			// Waku: the peer heard our topic interest (status-go rejects such envelopes).
			s.stats.topicMismatch.Add(1)
			return false, false, fmt.Errorf("%s: %w", env, ErrTopicMismatch)
		}
		from.mark(env)
		id = from.id
		origin = uint8(from.wireIdx + 1)
	}
	res, evicted := s.pool.add(env, pow, id, from == nil, origin)
	if evicted > 0 {
		s.stats.evicted.Add(uint64(evicted))
	}
	switch res {
	case poolDuplicate:
		s.stats.duplicates.Add(1)
		return true, false, nil
	case poolFull:
		s.stats.poolFull.Add(1)
		return false, false, fmt.Errorf("%s: %w", env, ErrPoolFull)
	}
	s.stats.received.Add(1)
	if from != nil {
		s.stats.receivedBy[from.wireIdx].Add(1)
	}
	return true, true, nil
}

// publish archives a newly pooled envelope and queues it for the subscriptions; local
// says it is our own Send.
func (s *Service) publish(env *Envelope, local bool) error {
	if s.cfg.Archiver != nil {
		s.cfg.Archiver.Archive(env)
	}
	return s.enqueue(delivery{env: env, local: local})
}

// Send validates env against our own rules, pools it for gossip and delivers it to our
// own matching subscriptions, as geth's Send does (but for those whose filter has
// OmitLocal).
func (s *Service) Send(env *Envelope) error {
	if s.stopped() {
		return ErrNotRunning
	}
	cached, isNew, err := s.ingest(env, nil)
	if err != nil {
		return fmt.Errorf("send envelope: %w", err)
	}
	if !cached {
		return fmt.Errorf("send envelope %s: expired", env)
	}
	if isNew {
		return s.publish(env, true)
	}
	return nil
}

// Signers is the signer cache of this node's subscriptions: every signature their
// filters recover goes through it, and a post signed through it (MessageParams.Signers)
// is not recovered again when a subscription opens it. Its Stats count the recoveries.
func (s *Service) Signers() *Signers { return s.signers }

// OpensLocal reports whether a subscription on topic t opens this node's own envelopes
// (its filter has no OmitLocal): a post on t is then worth signing through Signers.
func (s *Service) OpensLocal(t Topic) bool { return s.filters.opensLocal(t) }

// MinPoW is the PoW requirement currently advertised.
func (s *Service) MinPoW() float64 { return s.settings.Load().minPoW }

// Bloom is the bloom filter currently advertised.
func (s *Service) Bloom() Bloom { return s.settings.Load().bloom }

// SetMinPoW changes our PoW requirement and tells every peer (code 2). Envelopes meeting
// the previous requirement are still accepted for DefaultSyncAllowance seconds.
func (s *Service) SetMinPoW(pow float64) error {
	if math.IsNaN(pow) || math.IsInf(pow, 0) || pow < 0 {
		return fmt.Errorf("set min PoW: %v is not a finite non-negative number", pow)
	}
	s.setMu.Lock()
	old := s.settings.Load()
	next := *old
	next.prevPoW, next.minPoW, next.powChanged = old.minPoW, pow, s.now()
	s.settings.Store(&next)
	s.setMu.Unlock()
	s.notifyPeers()
	return nil
}

// SetBloom changes the bloom filter we advertise and enforce and tells every peer
// (code 3; Waku: code 22), replacing a topic interest. Envelopes matching the previous filter are still accepted for
// DefaultSyncAllowance seconds.
func (s *Service) SetBloom(b Bloom) {
	s.setMu.Lock()
	old := s.settings.Load()
	if old.bloom == b && old.topics == nil {
		s.setMu.Unlock()
		return
	}
	next := *old
	now := s.now()
	if old.bloom != b {
		next.prevBlm, next.bloom, next.bloomChanged = old.bloom, b, now
	}
	if old.topics != nil { // a bloom filter replaces the topic interest, as in status-go
		next.prevTopics, next.prevSet, next.topics, next.topicSet, next.topicsChanged = old.topics, old.topicSet, nil, nil, now
	}
	s.settings.Store(&next)
	s.setMu.Unlock()
	s.notifyPeers()
}

// SetTopics sets our topic interest and the bloom filter of those topics (what a node
// listening only for its own filters advertises; Subscribe keeps it up to date with
// Config.TopicBloom), and tells every peer. Above MaxTopicInterest topics the wires
// that carry a topic interest fall back to the bloom filter, as status-go refuses
// longer lists. Envelopes matching the previous interest are still accepted for
// DefaultSyncAllowance seconds.
func (s *Service) SetTopics(topics []Topic) {
	ts := slices.Clone(topics)
	slices.SortFunc(ts, func(a, b Topic) int { return bytes.Compare(a[:], b[:]) })
	ts = slices.Compact(ts)
	var b Bloom
	for _, t := range ts {
		b.Add(t)
	}
	var set map[Topic]struct{}
	if len(ts) > MaxTopicInterest {
		ts = nil
	} else {
		set = make(map[Topic]struct{}, len(ts))
		for _, t := range ts {
			set[t] = struct{}{}
		}
	}
	s.setMu.Lock()
	old := s.settings.Load()
	if old.bloom == b && SameTopics(old.topics, ts) {
		s.setMu.Unlock()
		return
	}
	next := *old
	now := s.now()
	if old.bloom != b {
		next.prevBlm, next.bloom, next.bloomChanged = old.bloom, b, now
	}
	next.prevTopics, next.prevSet, next.topics, next.topicSet, next.topicsChanged = old.topics, old.topicSet, ts, set, now
	s.settings.Store(&next)
	s.setMu.Unlock()
	s.notifyPeers()
}

// Topics is the topic interest currently advertised on wires that carry one; nil when
// the bloom filter alone is advertised.
func (s *Service) Topics() []Topic { return slices.Clone(s.settings.Load().topics) }

// advert is what we tell a peer of wire w with inbound limits l now.
func (s *Service) advert(w Wire, l PeerLimits) Advert {
	st := s.settings.Load()
	a := Advert{PoW: st.minPoW, Bloom: st.bloom, LightNode: s.cfg.LightNode, Confirmations: s.cfg.Confirmations,
		PacketLimits: RateLimits{PeerID: uint64(l.PacketsPerSecond)}, ByteLimits: RateLimits{PeerID: uint64(l.BytesPerSecond)}}
	if w.TopicInterest() && st.topics != nil {
		a.Topics = st.topics
	}
	return a
}

func (s *Service) notifyPeers() {
	s.peerMu.RLock()
	defer s.peerMu.RUnlock()
	for _, p := range s.peers {
		p.settingsChanged()
	}
	for _, ps := range s.others {
		for _, p := range ps {
			p.settingsChanged()
		}
	}
}

// PeersChanged returns a channel that is closed at the next change of the peer set or
// of a peer's settings (a handshake completed, a peer left, a settings packet), or at
// the next outage (OutageSince): wait on it between two looks at Peers.
func (s *Service) PeersChanged() <-chan struct{} {
	s.peerMu.RLock()
	defer s.peerMu.RUnlock()
	return s.changed
}

func (s *Service) peersChanged() {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	s.changedLocked()
}

func (s *Service) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// MarkTrusted lets a peer deliver direct messages (code 127) and request-complete
// packets (code 125): our mailservers. It may be called before the peer connects.
func (s *Service) MarkTrusted(id enode.ID) {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	s.trusted[id] = true
	if p := s.peers[id]; p != nil {
		p.trusted.Store(true)
	}
	for _, p := range s.others[id] {
		p.trusted.Store(true)
	}
}

// Peer returns the connected peer with that ID (the wire it gossips on), or nil.
func (s *Service) Peer(id enode.ID) *Peer {
	s.peerMu.RLock()
	defer s.peerMu.RUnlock()
	return s.peers[id]
}

// Peers describes the connected peers, one per node (on the wire it gossips on), ordered
// by ID.
func (s *Service) Peers() []PeerInfo {
	s.peerMu.RLock()
	out := make([]PeerInfo, 0, len(s.peers))
	for id, p := range s.peers {
		info := p.Info()
		for _, o := range s.others[id] {
			info.Also = append(info.Also, o.Protocol())
		}
		out = append(out, info)
	}
	s.peerMu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].ID[:], out[j].ID[:]) < 0 })
	return out
}

// addPeer registers p. When its node is connected on another wire already, the wire
// with the higher preference gossips (it takes over what the other knows) and the
// other becomes its secondary.
func (s *Service) addPeer(p *Peer) error {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if s.trusted[p.id] {
		p.trusted.Store(true)
	}
	defer s.changedLocked()
	cur := s.peers[p.id]
	if cur == nil {
		s.peerJoinedLocked()
		s.peers[p.id] = p
		return nil
	}
	if cur.wire.Name() == p.wire.Name() && cur.wire.Version() == p.wire.Version() {
		return fmt.Errorf("peer %s: already connected", p.id.TerminalString())
	}
	for _, o := range s.others[p.id] {
		if o.wire.Name() == p.wire.Name() && o.wire.Version() == p.wire.Version() {
			return fmt.Errorf("peer %s: already connected", p.id.TerminalString())
		}
	}
	if p.pref <= cur.pref {
		p.primary.Store(cur)
		s.others[p.id] = append(s.others[p.id], p)
		return nil
	}
	// p takes over: it learns what the node knows, the old primary and its
	// secondaries defer to it.
	cur.mu.Lock()
	known := maps.Clone(cur.known)
	cur.mu.Unlock()
	p.mu.Lock()
	for k, exp := range known {
		p.addKnownKeyLocked(k, exp)
	}
	p.mu.Unlock()
	for _, o := range s.others[p.id] {
		o.primary.Store(p)
	}
	cur.primary.Store(p)
	s.others[p.id] = append(s.others[p.id], cur)
	s.peers[p.id] = p
	return nil
}

// removePeer unregisters p; when it gossiped, the node's preferred other wire (if
// any is left) takes over.
func (s *Service) removePeer(p *Peer) {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	defer close(p.done)
	defer s.changedLocked()
	others := slices.DeleteFunc(s.others[p.id], func(o *Peer) bool { return o == p })
	if s.peers[p.id] == p {
		delete(s.peers, p.id)
		if len(others) > 0 {
			best := others[0]
			for _, o := range others[1:] {
				if o.pref > best.pref {
					best = o
				}
			}
			others = slices.DeleteFunc(others, func(o *Peer) bool { return o == best })
			best.primary.Store(nil)
			best.mu.Lock()
			best.rescan = true // it never gossiped: look at the whole pool
			best.mu.Unlock()
			for _, o := range others {
				o.primary.Store(best)
			}
			s.peers[p.id] = best
		}
		s.peerLeftLocked()
	}
	if len(others) == 0 {
		delete(s.others, p.id)
	} else {
		s.others[p.id] = others
	}
}

// Stats are counters since the service was built.
type Stats struct {
	Envelopes  int    // in the pool now
	PoolBytes  int    // what they count against MaxPoolBytes: Size plus 256 bytes each
	Received   uint64 // new envelopes accepted (ours included)
	Duplicates uint64 // envelopes already pooled
	Rejected   uint64 // envelopes breaking an acceptance rule
	PoolFull   uint64 // envelopes dropped because the pool was full
	Evicted    uint64 // envelopes the pool's overflow policy removed before their expiry
	LongTTL    uint64 // envelopes refused for a TTL above MaxTTL (not in Rejected)
	Expired    uint64 // envelopes dropped from the pool by the expiry cycle
	// TopicMismatch counts envelopes refused from Waku peers outside our topic
	// interest (not in Rejected).
	TopicMismatch uint64
	Subscribers   int
	// Protocols has the counters of each wire, in the order they were registered.
	Protocols []ProtocolStats
}

// ProtocolStats are the counters of one wire ("shh", "waku").
type ProtocolStats struct {
	Name string
	// Peers is the number of nodes that gossip with us on the wire.
	Peers int
	// Received counts new envelopes accepted from its peers.
	Received uint64
	// SentFrom counts the envelopes sent to its peers by where they came from: "local"
	// (our own Send) or a wire's name. Those from another wire are the envelopes relayed
	// between generations.
	SentFrom map[string]uint64
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	n, b := s.pool.stats()
	s.subMu.RLock()
	subs := len(s.subs)
	s.subMu.RUnlock()
	st := Stats{Envelopes: n, PoolBytes: b, Received: s.stats.received.Load(), Duplicates: s.stats.duplicates.Load(),
		Rejected: s.stats.rejected.Load(), PoolFull: s.stats.poolFull.Load(), Evicted: s.stats.evicted.Load(),
		LongTTL: s.stats.longTTL.Load(), Expired: s.stats.expired.Load(), TopicMismatch: s.stats.topicMismatch.Load(),
		Subscribers: subs}
	s.wireMu.Lock()
	wires := slices.Clone(s.wires)
	s.wireMu.Unlock()
	peers := make([]int, maxWires)
	s.peerMu.RLock()
	for _, p := range s.peers {
		peers[p.wireIdx]++
	}
	s.peerMu.RUnlock()
	// One row per wire name (waku/0 and waku/1 share theirs), in registration order.
	names := []string{}
	for _, w := range wires {
		if w.idx == len(names) {
			names = append(names, w.wire.Name())
		}
	}
	for i, name := range names {
		ps := ProtocolStats{Name: name, Peers: peers[i], Received: s.stats.receivedBy[i].Load(), SentFrom: map[string]uint64{}}
		for o := range len(names) + 1 {
			from := "local"
			if o > 0 {
				from = names[o-1]
			}
			if c := s.stats.sentFrom[o][i].Load(); c > 0 {
				ps.SentFrom[from] = c
			}
		}
		st.Protocols = append(st.Protocols, ps)
	}
	return st
}

// RefusesLightPeers reports whether we refuse light peers (we are light and
// RestrictLightPeers is set), for wires that learn of a peer's light flag after the
// handshake.
func (s *Service) RefusesLightPeers() bool { return s.cfg.LightNode && s.cfg.RestrictLightPeers }

// Pooled reports whether the envelope with hash h is in the pool (accepted and not yet
// expired).
func (s *Service) Pooled(h common.Hash) bool { return s.pool.contains(h) }
