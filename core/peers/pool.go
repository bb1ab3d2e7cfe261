// Package peers is the peer pool of status-go v0.70.1 (peers/peerpool.go, topicpool.go,
// cotopicpool.go) over this project's topic discovery (core/discv5): for each topic it
// searches fast (every 3 s) while the node has fewer peers of that topic than the
// topic's minimum, slow (every 30 s) otherwise, drops back to slow after 30 s of fast
// search, dials what it finds until the maximum, disconnects the surplus, replaces a
// dropped peer from the nodes found in the last hour, pauses a topic's search once it
// holds its maximum for 10 s, resumes it when peers drop below the minimum, and keeps a
// cache of good peers (peers it connected to) that seeds the next start.
//
// A cache-only topic (status-go's mailserver topic, "whispermail") is not dialled: the
// nodes found are candidates, most recently seen first, for a client that connects to
// one when it needs it (history requests).
//
// One goroutine (Run) owns the state; the server's peer events, the found nodes and the
// timers are its inputs, all driven by an injected clock.
package peers

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/discv5"
)

// status-go's defaults (peers/peerpool.go).
const (
	DefaultFastSync        = 3 * time.Second
	DefaultSlowSync        = 30 * time.Second
	DefaultFastModeTimeout = 30 * time.Second
	DefaultStopSearchDelay = 10 * time.Second
	// DefaultExpiration is how long a found node stays connectable after it was last seen.
	DefaultExpiration = 60 * time.Minute
	// cachedSeeds is how many cached peers of a topic seed its search at start.
	cachedSeeds = 5
)

// Limits are a topic's peer limits.
type Limits struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// Validate checks 0 ≤ min ≤ max.
func (l Limits) Validate() error {
	if l.Min < 0 || l.Max < l.Min {
		return fmt.Errorf("limits {min %d, max %d}: want 0 ≤ min ≤ max", l.Min, l.Max)
	}
	return nil
}

// Server is what the pool needs of the devp2p server; *p2p.Server is one.
type Server interface {
	AddPeer(*enode.Node)
	RemovePeer(*enode.Node)
	SubscribeEvents(chan *p2p.PeerEvent) event.Subscription
}

// Discovery is what the pool needs of topic discovery; *discv5.Network is one.
type Discovery interface {
	Search(topic discv5.Topic, period time.Duration, found chan<- discv5.Node) error
	StopSearch(topic discv5.Topic) error
}

// Cache persists good peers per topic across restarts (store implements it).
type Cache interface {
	AddPeer(ctx context.Context, topic, node string) error
	RemovePeer(ctx context.Context, topic string, id enode.ID) error
	Peers(ctx context.Context, topic string, limit int) ([]string, error)
}

// Config configures a Pool.
type Config struct {
	// Topics are the topics to keep peers of, with their limits. CacheOnly lists those
	// whose nodes are candidates only (never dialled by the pool).
	Topics    map[discv5.Topic]Limits
	CacheOnly []discv5.Topic
	// Self is our own node ID (found nodes with it are ignored).
	Self enode.ID
	// FastSync, SlowSync, FastModeTimeout, StopSearchDelay and Expiration default to
	// status-go's values above.
	FastSync, SlowSync, FastModeTimeout, StopSearchDelay, Expiration time.Duration
	// Cache, when set, keeps good peers across restarts.
	Cache  Cache
	Clock  mclock.Clock
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.FastSync, DefaultFastSync}, {&c.SlowSync, DefaultSlowSync}, {&c.FastModeTimeout, DefaultFastModeTimeout},
		{&c.StopSearchDelay, DefaultStopSearchDelay}, {&c.Expiration, DefaultExpiration}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if c.Clock == nil {
		c.Clock = mclock.System{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Mode is a topic search's state.
type Mode string

// The search modes.
const (
	ModeFast   Mode = "fast"
	ModeSlow   Mode = "slow"
	ModePaused Mode = "paused"
)

// TopicStatus describes one topic.
type TopicStatus struct {
	Topic     discv5.Topic
	Limits    Limits
	Connected int        // peers of the topic connected through the pool
	Peers     []enode.ID // their IDs
	Pending   int        // found and dialled or queued, not connected
	Mode      Mode
	CacheOnly bool
	// Candidates are, for a cache-only topic, the nodes found (most recent first).
	Candidates []string
}

// Status describes the pool.
type Status struct {
	Topics []TopicStatus
	// Searching is false when every topic's search is paused.
	Searching bool
}

type peerInfo struct {
	node       *enode.Node
	discovered mclock.AbsTime
	added      bool // we asked the server to connect
	dismissed  bool // we disconnected it over the maximum
	index      int  // in the queue; -1 when not queued
}

// topicPool is one topic's state (status-go's TopicPool), owned by the loop.
type topicPool struct {
	topic     discv5.Topic
	limits    Limits
	cacheOnly bool
	found     chan discv5.Node

	connected map[enode.ID]*peerInfo
	pending   map[enode.ID]*peerInfo
	queue     peerQueue // pending peers not dialled, most recently found first

	mode         Mode
	fastUntil    mclock.AbsTime // end of fast mode; 0 when not in fast mode
	stopSearchAt mclock.AbsTime // when the search pauses; 0 when not scheduled
}

func (t *topicPool) maxPending() int { return 2 * t.limits.Max }

// Pool keeps the node's peers per topic. Build it with New, run it with Run.
type Pool struct {
	cfg  Config
	srv  Server
	disc Discovery
	log  *slog.Logger

	topics []*topicPool
	up     map[enode.ID]bool // every connected peer, inbound ones too (from the events)
	events chan *p2p.PeerEvent
	found  chan foundNode

	mu     sync.Mutex // guards status, the copy of the state read by Status
	status Status
	// candidatesChanged is closed when the state is next published (CandidatesChanged);
	// nil until asked for. Guarded by mu.
	candidatesChanged chan struct{}
}

type foundNode struct {
	t    *topicPool
	node discv5.Node
}

// New builds a pool. It does no I/O.
func New(cfg Config, srv Server, disc Discovery) (*Pool, error) {
	cfg = cfg.withDefaults()
	if srv == nil || disc == nil {
		return nil, errors.New("peers: nil server or discovery")
	}
	p := &Pool{cfg: cfg, srv: srv, disc: disc, log: cfg.Logger, up: map[enode.ID]bool{},
		events: make(chan *p2p.PeerEvent, 64), found: make(chan foundNode, 64)}
	names := make([]discv5.Topic, 0, len(cfg.Topics))
	for t := range cfg.Topics {
		names = append(names, t)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	for _, name := range names {
		l := cfg.Topics[name]
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("peers: topic %q: %w", name, err)
		}
		p.topics = append(p.topics, &topicPool{topic: name, limits: l, cacheOnly: slices.Contains(cfg.CacheOnly, name),
			found: make(chan discv5.Node, 16), connected: map[enode.ID]*peerInfo{}, pending: map[enode.ID]*peerInfo{}})
	}
	p.publish()
	return p, nil
}

// Status returns the pool's state as of the last change.
func (p *Pool) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.status
	s.Topics = slices.Clone(s.Topics)
	return s
}

// Candidates returns the nodes found for a cache-only topic, most recently seen first,
// that are still within the expiration.
func (p *Pool) Candidates(topic discv5.Topic) []*enode.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ts := range p.status.Topics {
		if ts.Topic == topic {
			var ns []*enode.Node
			for _, u := range ts.Candidates {
				if n, err := enode.ParseV4(u); err == nil {
					ns = append(ns, n)
				}
			}
			return ns
		}
	}
	return nil
}

// CandidatesChanged returns a channel closed at the pool's next state change (after
// which Candidates may hold new nodes).
func (p *Pool) CandidatesChanged() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.candidatesChanged == nil {
		p.candidatesChanged = make(chan struct{})
	}
	return p.candidatesChanged
}

// Run subscribes to the server's peer events, seeds each topic from the cache, starts
// the searches and keeps the peers until ctx ends; then it stops the searches.
func (p *Pool) Run(ctx context.Context) error {
	sub := p.srv.SubscribeEvents(p.events)
	defer sub.Unsubscribe()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, t := range p.topics {
		wg.Add(1)
		go func() { // tags the topic's found nodes for the loop
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case n := <-t.found:
					select {
					case p.found <- foundNode{t, n}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	p.start(ctx)
	timer := p.cfg.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(p.nextDeadline(p.cfg.Clock.Now()))
		select {
		case <-ctx.Done():
			for _, t := range p.topics {
				if t.mode != ModePaused {
					_ = p.disc.StopSearch(t.topic)
				}
			}
			return nil
		case err := <-sub.Err():
			if err != nil {
				return fmt.Errorf("peers: server events: %w", err)
			}
			<-ctx.Done()
			return nil
		case ev := <-p.events:
			p.handleEvent(ctx, ev)
		case f := <-p.found:
			p.handleFound(ctx, f.t, f.node)
		case <-timer.C():
			p.handleTimers(p.cfg.Clock.Now())
		}
		p.publish()
	}
}

// start begins every topic's search in fast mode, seeded from the cache.
func (p *Pool) start(ctx context.Context) {
	now := p.cfg.Clock.Now()
	for _, t := range p.topics {
		p.setMode(t, ModeFast, now)
		p.seedFromCache(ctx, t)
	}
	p.publish()
}

func (p *Pool) seedFromCache(ctx context.Context, t *topicPool) {
	if p.cfg.Cache == nil {
		return
	}
	urls, err := p.cfg.Cache.Peers(ctx, string(t.topic), cachedSeeds)
	if err != nil {
		p.log.Warn("peer cache read failed", "topic", t.topic, "err", err)
		return
	}
	for _, u := range urls {
		n, err := enode.ParseV4(u)
		if err != nil {
			continue
		}
		dn, err := discv5.NodeFromEnode(n)
		if err != nil {
			continue
		}
		p.handleFound(ctx, t, dn)
	}
}

func (p *Pool) nextDeadline(now mclock.AbsTime) time.Duration {
	next := now.Add(time.Hour)
	for _, t := range p.topics {
		for _, at := range []mclock.AbsTime{t.fastUntil, t.stopSearchAt} {
			if at != 0 && at < next {
				next = at
			}
		}
	}
	return max(0, next.Sub(now))
}

// setMode switches a topic's search (status-go's setSyncMode): fast mode is limited to
// FastModeTimeout, after which the search goes slow even below the minimum.
func (p *Pool) setMode(t *topicPool, m Mode, now mclock.AbsTime) {
	if t.mode == m {
		return
	}
	t.mode = m
	switch m {
	case ModeFast:
		t.fastUntil = now.Add(p.cfg.FastModeTimeout)
		t.stopSearchAt = 0
		p.search(t, p.cfg.FastSync)
	case ModeSlow:
		t.fastUntil = 0
		p.search(t, p.cfg.SlowSync)
	case ModePaused:
		t.fastUntil, t.stopSearchAt = 0, 0
		if err := p.disc.StopSearch(t.topic); err != nil {
			p.log.Warn("stop search failed", "topic", t.topic, "err", err)
		}
		p.log.Info("discovery paused: topic at its maximum", "topic", t.topic, "peers", len(t.connected))
	}
}

func (p *Pool) search(t *topicPool, period time.Duration) {
	if err := p.disc.Search(t.topic, period, t.found); err != nil {
		p.log.Warn("search failed", "topic", t.topic, "err", err)
	}
}

// updateMode is status-go's updateSyncMode plus the pause: fast below the minimum, slow
// otherwise; a topic that holds its maximum pauses after StopSearchDelay; a paused topic
// resumes (fast) below the minimum.
func (p *Pool) updateMode(t *topicPool, now mclock.AbsTime) {
	have := t.count()
	switch {
	case t.mode == ModePaused:
		if have < t.limits.Min {
			p.log.Info("discovery resumed: topic below its minimum", "topic", t.topic, "peers", have)
			p.setMode(t, ModeFast, now)
		}
	case have < t.limits.Min:
		if t.mode != ModeFast && t.fastUntil == 0 {
			p.setMode(t, ModeFast, now)
		}
	default:
		p.setMode(t, ModeSlow, now)
	}
	if t.mode != ModePaused && t.maxReached() && t.stopSearchAt == 0 {
		t.stopSearchAt = now.Add(p.cfg.StopSearchDelay)
	}
	if !t.maxReached() {
		t.stopSearchAt = 0
	}
}

// count is what the limits apply to: connected peers, or candidates for a cache-only topic.
func (t *topicPool) count() int {
	if t.cacheOnly {
		return len(t.pending)
	}
	return len(t.connected)
}

func (t *topicPool) maxReached() bool { return t.count() >= t.limits.Max }

func (p *Pool) handleTimers(now mclock.AbsTime) {
	for _, t := range p.topics {
		if t.fastUntil != 0 && now >= t.fastUntil && t.mode == ModeFast {
			p.setMode(t, ModeSlow, now) // fast mode timed out
		}
		if t.stopSearchAt != 0 && now >= t.stopSearchAt {
			t.stopSearchAt = 0
			if t.maxReached() {
				p.setMode(t, ModePaused, now)
			}
		}
	}
}

// handleFound is status-go's processFoundNode.
func (p *Pool) handleFound(ctx context.Context, t *topicPool, dn discv5.Node) {
	n, err := dn.Enode()
	if err != nil || n.ID() == p.cfg.Self {
		return
	}
	now := p.cfg.Clock.Now()
	id := n.ID()
	if pi := t.connected[id]; pi != nil {
		pi.discovered = now
		return
	}
	if pi := t.pending[id]; pi != nil {
		pi.discovered, pi.node = now, n
		if pi.index >= 0 {
			heap.Fix(&t.queue, pi.index)
		}
	} else {
		t.pending[id] = &peerInfo{node: n, discovered: now, index: -1}
		if len(t.pending) > t.maxPending() {
			p.dropOldestPending(t)
		}
		if t.pending[id] == nil {
			return
		}
		if t.cacheOnly && p.cfg.Cache != nil {
			if err := p.cfg.Cache.AddPeer(ctx, string(t.topic), n.URLv4()); err != nil {
				p.log.Warn("peer cache write failed", "err", err)
			}
		}
	}
	if t.cacheOnly {
		p.updateMode(t, now)
		return
	}
	pi := t.pending[id]
	if p.up[id] && len(t.connected) < t.limits.Max {
		// Already connected (it dialled us): a peer of the topic without a dial. status-go
		// counts only the peers it dialled, so a node whose candidates all dialled it
		// first never reached its minimum.
		pi.added = true
		p.confirmAdded(ctx, t, id, now)
		return
	}
	if len(t.connected) < t.limits.Max {
		// As status-go: (re)add it each time it is found; the server's AddPeer is
		// idempotent and redials a peer whose connection failed.
		if pi.index >= 0 {
			heap.Remove(&t.queue, pi.index)
		}
		pi.added = true
		p.srv.AddPeer(n)
	} else if pi.index < 0 && !pi.added {
		heap.Push(&t.queue, pi)
	}
}

func (p *Pool) dropOldestPending(t *topicPool) {
	var oldest enode.ID
	var at mclock.AbsTime = -1
	for id, pi := range t.pending {
		if at < 0 || pi.discovered < at {
			oldest, at = id, pi.discovered
		}
	}
	p.removePending(t, oldest)
}

func (p *Pool) removePending(t *topicPool, id enode.ID) {
	pi := t.pending[id]
	if pi == nil {
		return
	}
	delete(t.pending, id)
	if pi.index >= 0 {
		heap.Remove(&t.queue, pi.index)
	}
	if pi.added && !t.cacheOnly {
		p.srv.RemovePeer(pi.node) // stop redialling it
	}
}

func (p *Pool) handleEvent(ctx context.Context, ev *p2p.PeerEvent) {
	now := p.cfg.Clock.Now()
	switch ev.Type {
	case p2p.PeerEventTypeAdd:
		p.up[ev.Peer] = true
		for _, t := range p.topics {
			p.confirmAdded(ctx, t, ev.Peer, now)
		}
	case p2p.PeerEventTypeDrop:
		delete(p.up, ev.Peer)
		for _, t := range p.topics {
			p.confirmDropped(ctx, t, ev.Peer, now)
		}
	}
}

// confirmAdded is status-go's ConfirmAdded: a peer we dialled is connected; it is cached
// as good, and disconnected again when the topic already holds its maximum.
func (p *Pool) confirmAdded(ctx context.Context, t *topicPool, id enode.ID, now mclock.AbsTime) {
	pi := t.pending[id]
	if pi == nil || !pi.added || t.cacheOnly {
		return // inbound, or another topic's
	}
	delete(t.pending, id)
	if pi.index >= 0 {
		heap.Remove(&t.queue, pi.index)
	}
	t.connected[id] = pi
	if p.cfg.Cache != nil {
		if err := p.cfg.Cache.AddPeer(ctx, string(t.topic), pi.node.URLv4()); err != nil {
			p.log.Warn("peer cache write failed", "err", err)
		}
	}
	if len(t.connected) > t.limits.Max {
		pi.dismissed = true
		pi.added = false
		p.srv.RemovePeer(pi.node)
		return
	}
	pi.dismissed = false
	p.updateMode(t, now)
}

// confirmDropped is status-go's ConfirmDropped plus AddPeerFromTable: a dismissed peer
// goes back to the queue; another is forgotten (and leaves the cache), and the most
// recently found queued peer, if seen within the expiration, is dialled instead.
func (p *Pool) confirmDropped(ctx context.Context, t *topicPool, id enode.ID, now mclock.AbsTime) {
	pi := t.connected[id]
	if pi == nil {
		return // inbound, another topic's, or a dial that failed (the server redials it)
	}
	delete(t.connected, id)
	if pi.dismissed {
		pi.dismissed = false
		t.pending[id] = pi
		if pi.index < 0 {
			heap.Push(&t.queue, pi)
		}
		return
	}
	pi.added = false
	p.srv.RemovePeer(pi.node)
	if p.cfg.Cache != nil {
		if err := p.cfg.Cache.RemovePeer(ctx, string(t.topic), id); err != nil {
			p.log.Warn("peer cache write failed", "err", err)
		}
	}
	for t.queue.Len() > 0 {
		next := heap.Pop(&t.queue).(*peerInfo)
		if now.Sub(next.discovered) < p.cfg.Expiration {
			next.added = true
			p.srv.AddPeer(next.node)
			break
		}
		delete(t.pending, next.node.ID()) // expired: no longer connectable
	}
	p.updateMode(t, now)
}

// publish copies the state for Status.
func (p *Pool) publish() {
	s := Status{}
	for _, t := range p.topics {
		ts := TopicStatus{Topic: t.topic, Limits: t.limits, Connected: len(t.connected), Pending: len(t.pending),
			Mode: t.mode, CacheOnly: t.cacheOnly}
		for id := range t.connected {
			ts.Peers = append(ts.Peers, id)
		}
		slices.SortFunc(ts.Peers, func(a, b enode.ID) int { return bytes.Compare(a[:], b[:]) })
		if ts.Mode == "" {
			ts.Mode = ModePaused
		}
		if t.cacheOnly {
			cs := make([]*peerInfo, 0, len(t.pending))
			for _, pi := range t.pending {
				cs = append(cs, pi)
			}
			sort.Slice(cs, func(i, j int) bool { return cs[i].discovered > cs[j].discovered })
			now := p.cfg.Clock.Now()
			for _, pi := range cs {
				if now.Sub(pi.discovered) < p.cfg.Expiration {
					ts.Candidates = append(ts.Candidates, pi.node.URLv4())
				}
			}
		}
		if t.mode != ModePaused && t.mode != "" {
			s.Searching = true
		}
		s.Topics = append(s.Topics, ts)
	}
	p.mu.Lock()
	p.status = s
	if p.candidatesChanged != nil {
		close(p.candidatesChanged)
		p.candidatesChanged = nil
	}
	p.mu.Unlock()
}

// peerQueue is a max-heap of pending peers by discovery time.
type peerQueue []*peerInfo

func (q peerQueue) Len() int           { return len(q) }
func (q peerQueue) Less(i, j int) bool { return q[i].discovered > q[j].discovered }
func (q peerQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *peerQueue) Push(x any) { pi := x.(*peerInfo); pi.index = len(*q); *q = append(*q, pi) }
func (q *peerQueue) Pop() any {
	old := *q
	pi := old[len(old)-1]
	*q = old[:len(old)-1]
	pi.index = -1
	return pi
}
