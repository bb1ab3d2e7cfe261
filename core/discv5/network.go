package discv5

import (
	"container/heap"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/crypto"
)

// Conn is the UDP socket a Network reads and writes; *net.UDPConn is one. A socket shared
// with discovery v4 is read through the packets v4 does not handle (see SharedConn).
type Conn interface {
	ReadFromUDPAddrPort(b []byte) (n int, addr netip.AddrPort, err error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (n int, err error)
	Close() error
	LocalAddr() net.Addr
}

// Protocol timings. respTimeout and the expiration of requests are geth's; the rest are
// this implementation's choices (geth's are in its ticket.go and net.go).
const (
	respTimeout       = 500 * time.Millisecond // pong and neighbors
	expiration        = 20 * time.Second       // of our requests
	topicQueryTimeout = 5 * time.Second        // answers to a topicQuery (geth's value)
	// knownGrace is how long after a node's pong we wait for its ping back before we
	// assume it already knows us; knownDelay is how long geth takes to accept our
	// queries after we answered a ping it started with (its remoteverifywait state).
	knownGrace = 300 * time.Millisecond
	knownDelay = 600 * time.Millisecond
	bondTTL    = time.Hour
	// maxFailures consecutive timeouts drop a node from the table.
	maxFailures       = 3
	refreshInterval   = time.Minute
	bootstrapRetry    = 5 * time.Second
	revalidateEvery   = 10 * time.Second
	revalidateAge     = 10 * time.Minute
	maxWaiters        = 8  // callbacks waiting for one node's bond
	maxPendingQueries = 4  // topic queries in flight to one node
	maxQueryAnswer    = 32 // nodes accepted in the answers to one topic query
	maxTopicResults   = 10 // nodes in our answer to a topic query (geth: 10)
)

// Limits bound what remote parties can make a Network keep. Zero fields take the
// defaults shown by DefaultLimits.
type Limits struct {
	// MaxNodes bounds the node records (table, replacements, bonds in progress).
	MaxNodes int `yaml:"max_nodes"`
	// MaxEntries bounds the registrations we hold for others, MaxEntriesPerTopic those of
	// one topic (geth: 10000 and 50), MaxTopics the topics, MaxTopicsPerNode the topics
	// one node may hold at once (geth: 1).
	MaxEntries         int `yaml:"max_entries"`
	MaxEntriesPerTopic int `yaml:"max_entries_per_topic"`
	MaxTopics          int `yaml:"max_topics"`
	MaxTopicsPerNode   int `yaml:"max_topics_per_node"`
	// MaxTopicLength bounds a topic name.
	MaxTopicLength int `yaml:"max_topic_length"`
	// MaxPingTopics bounds the topics of one ping we issue a ticket for; a longer list
	// gets a pong without a ticket (the bond still works).
	MaxPingTopics int `yaml:"max_ping_topics"`
	// InboundQueue is the loop's queue of authenticated packets (overflow: drop newest).
	InboundQueue int `yaml:"inbound_queue"`
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{MaxNodes: 2048, MaxEntries: 5000, MaxEntriesPerTopic: 50, MaxTopics: 500,
	MaxTopicsPerNode: 4, MaxTopicLength: 128, MaxPingTopics: 16, InboundQueue: 512}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	for _, f := range []struct{ v, def *int }{{&l.MaxNodes, &d.MaxNodes}, {&l.MaxEntries, &d.MaxEntries},
		{&l.MaxEntriesPerTopic, &d.MaxEntriesPerTopic}, {&l.MaxTopics, &d.MaxTopics},
		{&l.MaxTopicsPerNode, &d.MaxTopicsPerNode}, {&l.MaxTopicLength, &d.MaxTopicLength},
		{&l.MaxPingTopics, &d.MaxPingTopics}, {&l.InboundQueue, &d.InboundQueue}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return l
}

// Config configures a Network.
type Config struct {
	// PrivateKey is the node key (the same as the devp2p key). Required.
	PrivateKey *ecdsa.PrivateKey
	// Bootnodes are the first contacts.
	Bootnodes []Node
	// TCPPort is the RLPx port announced for this node; 0 means the UDP port (geth's
	// discv5 always announces its UDP port as TCP port too).
	TCPPort uint16
	// AnnounceIP, when valid, is the IP announced in topic answers; by default the
	// socket's (an unspecified or loopback IP is replaced by the searcher with ours as
	// it sees it).
	AnnounceIP netip.Addr
	// MinWaitPeriod is the shortest ticket wait we hand out as registrar. Default one
	// minute (geth's minWaitPeriod); tests shorten it.
	MinWaitPeriod time.Duration
	// MaxTicketWait is the longest ticket wait we accept as registrant. Default 15 min
	// (geth keeps tickets of up to 10 min plus a random part).
	MaxTicketWait time.Duration
	// RegistrarsPerTopic is how many registrars we keep our registration of each topic
	// with. Default 8.
	RegistrarsPerTopic int
	// RegisterInterval is how often the registrations of a topic are checked and the
	// missing ones sought (a lookup toward the topic); ReRegister how old a registration
	// gets before it is renewed. Defaults 10 s and 20 min (registrations last an hour).
	RegisterInterval, ReRegister time.Duration
	// QueryResend is how long a node is not asked again for the same topic. Default
	// 5 s: geth waits a minute (topicQueryResend), which leaves a peer pool's fast
	// search (every 3 s, for 30 s) nothing to ask after a peer drops.
	QueryResend time.Duration
	Limits      Limits
	// Clock drives every timer; default the system clock. Now is the wall clock for the
	// expiration fields; default time.Now.
	Clock  mclock.Clock
	Now    func() time.Time
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MinWaitPeriod <= 0 {
		c.MinWaitPeriod = time.Minute
	}
	if c.MaxTicketWait <= 0 {
		c.MaxTicketWait = 15 * time.Minute
	}
	if c.RegistrarsPerTopic <= 0 {
		c.RegistrarsPerTopic = 8
	}
	if c.RegisterInterval <= 0 {
		c.RegisterInterval = 10 * time.Second
	}
	if c.ReRegister <= 0 {
		c.ReRegister = 20 * time.Minute
	}
	if c.QueryResend <= 0 {
		c.QueryResend = 5 * time.Second
	}
	c.Limits = c.Limits.withDefaults()
	if c.Clock == nil {
		c.Clock = mclock.System{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ErrClosed is returned by the API of a Network that is not running.
var ErrClosed = errors.New("discv5: network not running")

// Network is one discv5 node. Build it with New, run it with Run; the other methods
// work while Run runs (called before, they wait for it; after, they return ErrClosed).
type Network struct {
	cfg   Config
	conn  Conn
	self  Node
	sha   [32]byte
	log   *slog.Logger
	stats stats

	started atomic.Bool
	ops     chan func()
	in      chan *packet
	done    chan struct{} // closed when the loop has stopped

	// Loop state.
	tab      table
	nodes    map[NodeID]*nodeRec
	reg      *registrar
	adverts  map[Topic]*advert
	searches map[Topic]*search
	timers   timerHeap
	queries  map[queryKey]*pendingQuery // topic queries we sent
}

// nodeRec is what the loop knows of one node.
type nodeRec struct {
	Node
	sha       [32]byte
	lastSeen  mclock.AbsTime
	lastPong  mclock.AbsTime // its address is proven; 0 = never
	knownAt   mclock.AbsTime // from then on it answers our queries; 0 = not yet
	pingOut   bool
	pingHash  [32]byte
	pingAt    mclock.AbsTime
	pingTops  []Topic
	waiters   []func(ok bool)
	find      *pendingFind
	findQueue []func()
	queried   map[Topic]mclock.AbsTime
	nQueries  int
	failures  int

	inTable, inReplacements bool
}

func (r *nodeRec) bonded(now mclock.AbsTime) bool {
	return r.lastPong != 0 && now.Sub(r.lastPong) < bondTTL
}

func (r *nodeRec) ready(now mclock.AbsTime) bool {
	return r.bonded(now) && r.knownAt != 0 && now >= r.knownAt
}

type pendingFind struct {
	cb    func(nodes []*nodeRec)
	timer *timerItem
}

type queryKey struct {
	node NodeID
	hash [32]byte
}

type pendingQuery struct {
	node  *nodeRec
	topic Topic
	got   int
	timer *timerItem
	cb    func([]Node) // called once, with the first answer or nil at the timeout
}

// New builds a Network on conn. It does no I/O.
func New(conn Conn, cfg Config) (*Network, error) {
	if cfg.PrivateKey == nil {
		return nil, errors.New("discv5: no private key")
	}
	cfg = cfg.withDefaults()
	la, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("discv5: local address %v is not UDP", conn.LocalAddr())
	}
	ap := la.AddrPort()
	self := Node{ID: PubkeyID(&cfg.PrivateKey.PublicKey), IP: ap.Addr().Unmap(), UDP: ap.Port(), TCP: cfg.TCPPort}
	if self.TCP == 0 {
		self.TCP = self.UDP
	}
	if cfg.AnnounceIP.IsValid() {
		self.IP = cfg.AnnounceIP.Unmap()
	}
	nw := &Network{
		cfg: cfg, conn: conn, self: self, log: cfg.Logger,
		ops:      make(chan func()),
		in:       make(chan *packet, cfg.Limits.InboundQueue),
		done:     make(chan struct{}),
		nodes:    map[NodeID]*nodeRec{},
		adverts:  map[Topic]*advert{},
		searches: map[Topic]*search{},
		queries:  map[queryKey]*pendingQuery{},
	}
	nw.sha = crypto.Keccak256Hash(self.ID[:])
	nw.tab.self = nw.sha
	nw.reg = newRegistrar(cfg.Limits, cfg.MinWaitPeriod, &nw.stats)
	return nw, nil
}

// Self is this node as announced.
func (nw *Network) Self() Node { return nw.self }

// Run reads the socket and runs the loop until ctx ends; then it closes the socket and
// returns once both stopped. Run may be called once.
func (nw *Network) Run(ctx context.Context) error {
	if !nw.started.CompareAndSwap(false, true) {
		return errors.New("discv5: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); nw.readLoop() }()
	nw.loop(ctx)
	nw.conn.Close()
	wg.Wait()
	return nil
}

// readLoop authenticates datagrams and queues them for the loop.
func (nw *Network) readLoop() {
	buf := make([]byte, MaxPacketSize)
	for {
		n, from, err := nw.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		p, reason := nw.authenticate(from, buf[:n])
		if reason != dropNone {
			nw.stats.drop(reason)
			continue
		}
		select {
		case nw.in <- p:
		default:
			nw.stats.drop(dropQueueFull)
		}
	}
}

// authenticate decodes and checks one datagram (the reader's half of the receive path).
func (nw *Network) authenticate(from netip.AddrPort, buf []byte) (*packet, dropReason) {
	nw.stats.in.Add(1)
	p, err := decodePacket(buf)
	switch {
	case errors.Is(err, ErrBadSignature):
		return nil, dropBadSignature
	case err != nil:
		return nil, dropBadPacket
	case p.from == nw.self.ID:
		return nil, dropSelf
	}
	p.addr = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return p, dropNone
}

// do runs f on the loop and waits for it; before Run it waits for Run to start.
func (nw *Network) do(f func()) error {
	done := make(chan struct{})
	select {
	case nw.ops <- func() { f(); close(done) }:
		<-done
		return nil
	case <-nw.done:
		return ErrClosed
	}
}

// inspect runs f on the loop, or directly when Run was never called (nothing else
// touches the state then).
func (nw *Network) inspect(f func()) error {
	if !nw.started.Load() {
		f()
		return nil
	}
	return nw.do(f)
}

func (nw *Network) loop(ctx context.Context) {
	defer close(nw.done)
	clk := nw.cfg.Clock
	timer := clk.NewTimer(time.Hour)
	defer timer.Stop()
	nw.after(0, nw.bootstrap)
	nw.after(revalidateEvery, nw.revalidate)
	nw.after(time.Minute, nw.expireRegistrations)
	for {
		if d, ok := nw.timers.next(); ok {
			timer.Reset(max(0, d.Sub(clk.Now())))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case f := <-nw.ops:
			f()
		case p := <-nw.in:
			nw.handle(p)
		case <-timer.C():
			now := clk.Now()
			for {
				it := nw.timers.pop(now)
				if it == nil {
					break
				}
				it.f()
			}
		}
	}
}

// send signs and writes one packet.
func (nw *Network) send(to netip.AddrPort, typ byte, body any) (hash [32]byte) {
	raw, hash, err := encodePacket(nw.cfg.PrivateKey, typ, body)
	if err != nil {
		nw.log.Warn("discv5: encode", "err", err)
		return hash
	}
	if _, err := nw.conn.WriteToUDPAddrPort(raw, to); err != nil {
		nw.log.Debug("discv5: send failed", "to", to, "err", err)
		return hash
	}
	nw.stats.out.Add(1)
	return hash
}

func (nw *Network) expiry() uint64 { return uint64(nw.cfg.Now().Add(expiration).Unix()) }

func (nw *Network) expired(exp uint64) bool {
	return exp != 0 && exp < uint64(nw.cfg.Now().Unix())
}

// rec returns the record of n, creating it (bounded by MaxNodes) when create is set.
func (nw *Network) rec(n Node, create bool) *nodeRec {
	if r := nw.nodes[n.ID]; r != nil {
		return r
	}
	if !create {
		return nil
	}
	if len(nw.nodes) >= nw.cfg.Limits.MaxNodes && !nw.evictNode() {
		nw.stats.drop(dropNodeLimit)
		return nil
	}
	r := &nodeRec{Node: n, sha: crypto.Keccak256Hash(n.ID[:]), queried: map[Topic]mclock.AbsTime{}}
	nw.nodes[n.ID] = r
	return r
}

// evictNode forgets the least recently seen node that is in no table and waits for
// nothing.
func (nw *Network) evictNode() bool {
	var victim *nodeRec
	for _, r := range nw.nodes {
		if r.inTable || r.pingOut || r.find != nil || len(r.findQueue) > 0 || r.nQueries > 0 || len(r.waiters) > 0 {
			continue
		}
		if victim == nil || r.lastSeen < victim.lastSeen {
			victim = r
		}
	}
	if victim == nil {
		return false
	}
	nw.tab.remove(victim)
	delete(nw.nodes, victim.ID)
	return true
}

// handle dispatches one authenticated packet (the loop's half of the receive path).
func (nw *Network) handle(p *packet) {
	now := nw.cfg.Clock.Now()
	switch d := p.data.(type) {
	case *ping:
		nw.handlePing(p, d, now)
		return
	case *pong:
		nw.handlePong(p, d, now)
		return
	}
	r := nw.nodes[p.from]
	if r == nil {
		nw.stats.drop(dropUnbonded)
		return
	}
	if r.udpAddr() != p.addr {
		nw.stats.drop(dropWrongAddr)
		return
	}
	r.lastSeen = now
	switch d := p.data.(type) {
	case *neighbors:
		nw.handleNeighbors(r, p, d)
	case *topicNodes:
		nw.handleTopicNodes(r, p, d)
	default:
		// Requests: only from nodes that proved their address, so that our answers
		// cannot be aimed at someone else.
		if !r.bonded(now) {
			nw.stats.drop(dropUnbonded)
			return
		}
		switch d := d.(type) {
		case *findnode:
			if nw.expired(d.Expiration) {
				nw.stats.drop(dropExpired)
				return
			}
			nw.sendNeighbors(r, crypto.Keccak256Hash(d.Target[:]))
		case *findnodeHash:
			if nw.expired(d.Expiration) {
				nw.stats.drop(dropExpired)
				return
			}
			nw.sendNeighbors(r, d.Target)
		case *topicRegister:
			nw.handleTopicRegister(r, d, now)
		case *topicQuery:
			nw.handleTopicQuery(r, p, d, now)
		}
	}
}

func (nw *Network) handlePing(p *packet, d *ping, now mclock.AbsTime) {
	if nw.expired(d.Expiration) {
		nw.stats.drop(dropExpired)
		return
	}
	tcp := d.From.TCP
	if tcp == 0 {
		tcp = p.addr.Port()
	}
	r := nw.nodes[p.from]
	if r == nil {
		if r = nw.rec(Node{ID: p.from, IP: p.addr.Addr(), UDP: p.addr.Port(), TCP: tcp}, true); r == nil {
			// No room to remember it: answer anyway, without bonding.
			nw.sendPong(p, d.Topics, tcp, now)
			return
		}
	} else if r.udpAddr() != p.addr {
		// A new address must be proven again.
		nw.tab.remove(r)
		r.IP, r.UDP, r.lastPong, r.knownAt = p.addr.Addr(), p.addr.Port(), 0, 0
	}
	if d.From.TCP != 0 {
		r.TCP = d.From.TCP
	}
	r.lastSeen = now
	nw.sendPong(p, d.Topics, r.TCP, now)
	// Does it know us now? If it pinged in answer to our ping, it had us in its
	// verify-wait state and takes our pong as proof at once; if it started, geth waits
	// its response timeout before it accepts our queries.
	switch {
	case r.pingOut:
		r.knownAt = now
	case r.knownAt == 0 || r.knownAt > now.Add(knownDelay):
		r.knownAt = now.Add(knownDelay)
	}
	if !r.bonded(now) {
		nw.ping(r)
	} else {
		nw.wakeLater(r)
	}
}

// sendPong answers a ping with a ticket: wait periods for the topics it registers, a
// fresh serial, and our issue time (geth puts its monotonic clock there; only we read
// it back).
func (nw *Network) sendPong(p *packet, topics []Topic, tcp uint16, now mclock.AbsTime) {
	pg := &pong{To: makeEndpoint(p.addr, tcp), ReplyTok: p.hash[:], Expiration: uint64(time.Duration(now) / time.Second)}
	if len(topics) > nw.cfg.Limits.MaxPingTopics {
		nw.stats.drop(dropTooManyTopics)
		topics = nil
	}
	pg.TopicHash = rlpHash(topicList(topics))
	pg.TicketSerial, pg.WaitPeriods = nw.reg.ticket(topics)
	nw.send(p.addr, pongPacket, pg)
}

// topicList keeps a nil list encoding as the empty list.
func topicList(t []Topic) []Topic {
	if t == nil {
		return []Topic{}
	}
	return t
}

func (nw *Network) handlePong(p *packet, d *pong, now mclock.AbsTime) {
	r := nw.nodes[p.from]
	if r == nil || !r.pingOut || string(d.ReplyTok) != string(r.pingHash[:]) {
		nw.stats.drop(dropUnsolicited)
		return
	}
	r.pingOut = false
	r.lastPong, r.lastSeen, r.failures = now, now, 0
	if r.knownAt == 0 {
		r.knownAt = now.Add(knownGrace) // unless it pings us back sooner
	}
	if last := nw.tab.add(r); last != nil && last != r {
		nw.revalidateNode(last)
	}
	nw.takeTicket(r, p, d, now)
	nw.wakeLater(r)
}

// wakeLater runs the node's bond waiters once it is ready.
func (nw *Network) wakeLater(r *nodeRec) {
	if len(r.waiters) == 0 {
		return
	}
	now := nw.cfg.Clock.Now()
	if r.ready(now) {
		nw.wake(r, true)
		return
	}
	if r.bonded(now) && r.knownAt != 0 {
		nw.at(r.knownAt, func() { nw.wakeLater(r) })
	}
}

func (nw *Network) wake(r *nodeRec, ok bool) {
	ws := r.waiters
	r.waiters = nil
	for _, w := range ws {
		w(ok)
	}
}

// ping sends a ping carrying the topics we advertise (so every pong is a ticket).
func (nw *Network) ping(r *nodeRec) {
	if r.pingOut {
		return
	}
	topics := nw.advertised()
	r.pingOut, r.pingTops, r.pingAt = true, topics, nw.cfg.Clock.Now()
	r.pingHash = nw.send(r.udpAddr(), pingPacket, &ping{Version: Version, From: makeEndpoint(nw.self.udpAddr(), nw.self.TCP),
		To: makeEndpoint(r.udpAddr(), r.TCP), Expiration: nw.expiry(), Topics: topicList(topics)})
	hash := r.pingHash
	nw.after(respTimeout, func() {
		if !r.pingOut || r.pingHash != hash {
			return
		}
		r.pingOut = false
		nw.failed(r)
		nw.wake(r, false)
	})
}

// failed notes a timeout; a node failing repeatedly leaves the table and must bond again.
func (nw *Network) failed(r *nodeRec) {
	r.failures++
	r.knownAt = 0
	if r.failures >= maxFailures {
		r.lastPong = 0
		nw.tab.remove(r)
	}
}

// bond calls cb once r answers our queries (true) or failed to bond (false).
func (nw *Network) bond(r *nodeRec, cb func(ok bool)) {
	now := nw.cfg.Clock.Now()
	if r.ready(now) {
		cb(true)
		return
	}
	if len(r.waiters) >= maxWaiters {
		cb(false)
		return
	}
	r.waiters = append(r.waiters, cb)
	if !r.bonded(now) || r.knownAt == 0 {
		nw.ping(r)
		return
	}
	nw.wakeLater(r)
}

// Neighbors.

func (nw *Network) sendNeighbors(r *nodeRec, target [32]byte) {
	var ns []rpcNode
	for _, n := range nw.tab.closest(target, bucketSize) {
		if n == r || checkRelay(r.IP, n.IP) != nil {
			continue
		}
		ns = append(ns, n.rpc())
	}
	if len(ns) == 0 {
		nw.send(r.udpAddr(), neighborsPacket, &neighbors{Nodes: []rpcNode{}, Expiration: nw.expiry()})
		return
	}
	for len(ns) > 0 {
		k := min(len(ns), maxNeighbors)
		nw.send(r.udpAddr(), neighborsPacket, &neighbors{Nodes: ns[:k], Expiration: nw.expiry()})
		ns = ns[k:]
	}
}

func (nw *Network) handleNeighbors(r *nodeRec, p *packet, d *neighbors) {
	f := r.find
	if f == nil {
		nw.stats.drop(dropUnsolicited) // also the second packet of an answer, as in geth
		return
	}
	if nw.expired(d.Expiration) {
		nw.stats.drop(dropExpired)
		return
	}
	var res []*nodeRec
	for _, rn := range d.Nodes {
		if rn.ID == nw.self.ID {
			continue
		}
		n, err := nodeFromRPC(p.addr.Addr(), rn)
		if err != nil {
			nw.stats.drop(dropBadNode)
			continue
		}
		nr := nw.nodes[n.ID]
		if nr == nil {
			if nr = nw.rec(n, true); nr == nil {
				continue
			}
		} else if !nr.bonded(nw.cfg.Clock.Now()) && nr.udpAddr() != n.udpAddr() {
			nr.IP, nr.UDP, nr.TCP = n.IP, n.UDP, n.TCP
		}
		res = append(res, nr)
	}
	r.failures = 0
	nw.cancel(f.timer)
	nw.finishFind(r)
	f.cb(res)
}

// findnode asks r for the nodes closest to target; cb gets them, or nil on failure. One
// request per node is in flight; the others wait their turn (at most maxWaiters).
func (nw *Network) findnode(r *nodeRec, target [32]byte, cb func([]*nodeRec)) {
	if r.find != nil {
		if len(r.findQueue) >= maxWaiters {
			cb(nil)
			return
		}
		r.findQueue = append(r.findQueue, func() { nw.findnode(r, target, cb) })
		return
	}
	f := &pendingFind{cb: cb}
	r.find = f
	nw.bond(r, func(ok bool) {
		if r.find != f {
			return
		}
		if !ok {
			nw.finishFind(r)
			cb(nil)
			return
		}
		nw.send(r.udpAddr(), findnodeHashPacket, &findnodeHash{Target: target, Expiration: nw.expiry()})
		f.timer = nw.after(respTimeout, func() {
			if r.find != f {
				return
			}
			nw.failed(r)
			nw.finishFind(r)
			cb(nil)
		})
	})
}

// finishFind ends r's request in flight and starts the next queued one.
func (nw *Network) finishFind(r *nodeRec) {
	r.find = nil
	if len(r.findQueue) > 0 {
		next := r.findQueue[0]
		r.findQueue = r.findQueue[1:]
		nw.after(0, next)
	}
}

// lookup is an iterative Kademlia lookup run on the loop.
type lookup struct {
	nw      *Network
	target  [32]byte
	result  []*nodeRec
	asked   map[*nodeRec]bool
	pending int
	done    func([]*nodeRec)
	over    bool
}

func (nw *Network) lookup(target [32]byte, done func([]*nodeRec)) {
	l := &lookup{nw: nw, target: target, asked: map[*nodeRec]bool{}, done: done}
	l.result = nw.tab.closest(target, bucketSize)
	if len(l.result) == 0 {
		for _, b := range nw.cfg.Bootnodes {
			if r := nw.rec(b, true); r != nil {
				l.result = pushClosest(l.result, r, target, bucketSize)
			}
		}
	}
	l.advance()
}

func (l *lookup) advance() {
	if l.over {
		return
	}
	for _, r := range l.result {
		if l.pending >= alpha {
			break
		}
		if !l.asked[r] {
			l.asked[r] = true
			l.pending++
			l.nw.findnode(r, l.target, l.reply)
		}
	}
	if l.pending == 0 {
		l.over = true
		l.done(l.result)
	}
}

func (l *lookup) reply(nodes []*nodeRec) {
	l.pending--
	for _, n := range nodes {
		if !slices.Contains(l.result, n) {
			l.result = pushClosest(l.result, n, l.target, bucketSize)
		}
	}
	l.advance()
}

// Maintenance.

func (nw *Network) bootstrap() {
	if nw.tab.count == 0 {
		for _, b := range nw.cfg.Bootnodes {
			if r := nw.rec(b, true); r != nil {
				nw.bond(r, func(bool) {})
			}
		}
		nw.lookup(nw.sha, func([]*nodeRec) {
			if nw.tab.count == 0 {
				nw.after(bootstrapRetry, nw.bootstrap)
			} else {
				nw.after(refreshInterval, nw.bootstrap)
			}
		})
		return
	}
	nw.lookup(randomTarget(), func([]*nodeRec) { nw.after(refreshInterval, nw.bootstrap) })
}

func randomTarget() (t [32]byte) {
	rand.Read(t[:])
	return t
}

func (nw *Network) revalidate() {
	defer nw.after(revalidateEvery, nw.revalidate)
	now := nw.cfg.Clock.Now()
	var oldest *nodeRec
	for _, r := range nw.tab.all() {
		if now.Sub(r.lastPong) > revalidateAge && (oldest == nil || r.lastPong < oldest.lastPong) {
			oldest = r
		}
	}
	if oldest != nil {
		nw.revalidateNode(oldest)
	}
}

func (nw *Network) revalidateNode(r *nodeRec) {
	nw.ping(r)
}

func (nw *Network) expireRegistrations() {
	nw.reg.expire(nw.cfg.Clock.Now())
	nw.after(time.Minute, nw.expireRegistrations)
}

// Timers: a heap of callbacks run by the loop.

type timerItem struct {
	at    mclock.AbsTime
	f     func()
	index int
	seq   uint64
}

type timerHeap struct {
	items []*timerItem
	seq   uint64
}

func (h *timerHeap) Len() int { return len(h.items) }
func (h *timerHeap) Less(i, j int) bool {
	if h.items[i].at != h.items[j].at {
		return h.items[i].at < h.items[j].at
	}
	return h.items[i].seq < h.items[j].seq
}
func (h *timerHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index, h.items[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	it := x.(*timerItem)
	it.index = len(h.items)
	h.items = append(h.items, it)
}
func (h *timerHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	it.index = -1
	return it
}

func (h *timerHeap) next() (mclock.AbsTime, bool) {
	if len(h.items) == 0 {
		return 0, false
	}
	return h.items[0].at, true
}

func (h *timerHeap) pop(now mclock.AbsTime) *timerItem {
	if len(h.items) == 0 || h.items[0].at > now {
		return nil
	}
	return heap.Pop(h).(*timerItem)
}

func (nw *Network) at(t mclock.AbsTime, f func()) *timerItem {
	nw.timers.seq++
	it := &timerItem{at: t, f: f, seq: nw.timers.seq}
	heap.Push(&nw.timers, it)
	return it
}

func (nw *Network) after(d time.Duration, f func()) *timerItem {
	return nw.at(nw.cfg.Clock.Now().Add(d), f)
}

func (nw *Network) cancel(it *timerItem) {
	if it != nil && it.index >= 0 {
		heap.Remove(&nw.timers, it.index)
	}
}
