package discv5

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/crypto"
)

// Registrant side: the topics we advertise.

// advert is one topic we advertise: the registrars we believe hold our registration and
// the tickets waiting for their period. Both maps hold at most RegistrarsPerTopic nodes.
type advert struct {
	topic      Topic
	hash       [32]byte
	registered map[NodeID]mclock.AbsTime // registrar → when we registered with it
	tickets    map[NodeID]*timerItem     // registrar → the scheduled topicRegister
	timer      *timerItem
}

func (nw *Network) advertised() []Topic {
	ts := make([]Topic, 0, len(nw.adverts))
	for t := range nw.adverts {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}

// Register advertises topic until Unregister: the node answers topic queries with itself
// and keeps registrations with registrars near the topic.
func (nw *Network) Register(topic Topic) error {
	if len(topic) == 0 || len(topic) > nw.cfg.Limits.MaxTopicLength {
		return fmt.Errorf("discv5: bad topic %q", topic)
	}
	return nw.do(func() {
		if nw.adverts[topic] != nil {
			return
		}
		a := &advert{topic: topic, hash: crypto.Keccak256Hash([]byte(topic)),
			registered: map[NodeID]mclock.AbsTime{}, tickets: map[NodeID]*timerItem{}}
		nw.adverts[topic] = a
		a.timer = nw.after(0, func() { nw.advertise(a) })
	})
}

// Unregister stops advertising topic (registrations already made run out by themselves).
func (nw *Network) Unregister(topic Topic) error {
	return nw.do(func() {
		a := nw.adverts[topic]
		if a == nil {
			return
		}
		delete(nw.adverts, topic)
		nw.cancel(a.timer)
		for _, t := range a.tickets {
			nw.cancel(t)
		}
	})
}

// advertise renews old registrations and seeks registrars until RegistrarsPerTopic hold
// one: it looks up the nodes closest to keccak256(topic) and pings them (our pings carry
// our topics, so their pongs are tickets).
func (nw *Network) advertise(a *advert) {
	if nw.adverts[a.topic] != a {
		return
	}
	now := nw.cfg.Clock.Now()
	for id, at := range a.registered {
		if now.Sub(at) > nw.cfg.ReRegister {
			delete(a.registered, id) // renew it
		}
	}
	next := nw.cfg.RegisterInterval
	if len(a.registered) >= nw.cfg.RegistrarsPerTopic {
		next = nw.cfg.ReRegister / 4
	}
	a.timer = nw.after(next, func() { nw.advertise(a) })
	if len(a.registered)+len(a.tickets) >= nw.cfg.RegistrarsPerTopic {
		return
	}
	nw.lookup(a.hash, func(result []*nodeRec) {
		for _, r := range result {
			if len(a.registered)+len(a.tickets) >= nw.cfg.RegistrarsPerTopic {
				return
			}
			if _, ok := a.registered[r.ID]; ok {
				continue
			}
			if _, ok := a.tickets[r.ID]; ok {
				continue
			}
			nw.ping(r)
		}
	})
}

// takeTicket uses the ticket in a pong: for each topic of our ping that still needs
// this registrar, it schedules a topicRegister at the end of the topic's wait period.
func (nw *Network) takeTicket(r *nodeRec, p *packet, d *pong, now mclock.AbsTime) {
	topics := r.pingTops
	r.pingTops = nil
	if len(topics) == 0 {
		return
	}
	if len(d.WaitPeriods) != len(topics) || d.TopicHash != rlpHash(topics) {
		nw.stats.drop(dropBadTicket)
		return
	}
	for i, topic := range topics {
		a := nw.adverts[topic]
		if a == nil {
			continue
		}
		if _, ok := a.registered[r.ID]; ok {
			continue
		}
		if _, ok := a.tickets[r.ID]; ok || len(a.registered)+len(a.tickets) >= nw.cfg.RegistrarsPerTopic {
			continue
		}
		wait := time.Duration(d.WaitPeriods[i]) * time.Second
		if wait > nw.cfg.MaxTicketWait {
			nw.stats.drop(dropTicketTooFar)
			continue
		}
		idx, raw := uint(i), p.raw
		a.tickets[r.ID] = nw.after(wait, func() {
			delete(a.tickets, r.ID)
			if nw.adverts[topic] != a {
				return
			}
			nw.send(r.udpAddr(), topicRegisterPacket, &topicRegister{Topics: topics, Idx: idx, Pong: raw})
			a.registered[r.ID] = nw.cfg.Clock.Now()
		})
	}
}

// Registrar side.

func (nw *Network) handleTopicRegister(r *nodeRec, d *topicRegister, now mclock.AbsTime) {
	tp, err := decodePacket(d.Pong)
	if err != nil || tp.typ != pongPacket || tp.from != nw.self.ID {
		nw.stats.drop(dropBadTicket) // not a pong of ours
		return
	}
	pg := tp.data.(*pong)
	if d.Idx >= uint(len(d.Topics)) || rlpHash(topicList(d.Topics)) != pg.TopicHash {
		nw.stats.drop(dropBadTicket)
		return
	}
	nw.stats.drop(nw.reg.use(r.Node, pg, d.Topics, int(d.Idx), now))
}

func (nw *Network) handleTopicQuery(r *nodeRec, p *packet, d *topicQuery, now mclock.AbsTime) {
	var res []Node
	if nw.adverts[d.Topic] != nil {
		res = append(res, nw.self)
	}
	res = append(res, nw.reg.entries(d.Topic, maxTopicResults-len(res), r.ID, now)...)
	ns := make([]rpcNode, 0, len(res))
	for _, n := range res {
		if n.ID == nw.self.ID || checkRelay(r.IP, n.IP) == nil {
			ns = append(ns, n.rpc())
		}
	}
	nw.send(p.addr, topicNodesPacket, &topicNodes{Echo: p.hash, Nodes: ns})
}

// Searcher side.

// search is one searched topic.
type search struct {
	topic  Topic
	hash   [32]byte
	period time.Duration
	found  chan<- Node
	timer  *timerItem
	busy   bool
	rounds int
}

// Search looks for nodes advertising topic every period until StopSearch, sending each
// node found to found (without blocking: a full channel drops the node, counted as
// found_full). Calling it again for the same topic changes the period (and the channel).
func (nw *Network) Search(topic Topic, period time.Duration, found chan<- Node) error {
	if period <= 0 {
		return errors.New("discv5: search period must be positive")
	}
	return nw.do(func() {
		s := nw.searches[topic]
		if s != nil {
			s.found = found
			if s.period != period {
				s.period = period
				nw.cancel(s.timer)
				s.timer = nw.after(0, func() { nw.searchRound(s) })
			}
			return
		}
		s = &search{topic: topic, hash: crypto.Keccak256Hash([]byte(topic)), period: period, found: found}
		nw.searches[topic] = s
		s.timer = nw.after(0, func() { nw.searchRound(s) })
	})
}

// StopSearch ends the search of topic.
func (nw *Network) StopSearch(topic Topic) error {
	return nw.do(func() {
		if s := nw.searches[topic]; s != nil {
			nw.cancel(s.timer)
			delete(nw.searches, topic)
		}
	})
}

// searchRound looks up nodes near the topic (the topic hash itself first, then random
// points around it) and queries those not asked about the topic within QueryResend.
func (nw *Network) searchRound(s *search) {
	if nw.searches[s.topic] != s {
		return
	}
	s.timer = nw.after(s.period, func() { nw.searchRound(s) })
	if s.busy {
		return
	}
	s.busy = true
	target := s.hash
	if s.rounds > 0 {
		target = nearTarget(s.hash, s.rounds)
	}
	s.rounds++
	nw.lookup(target, func(result []*nodeRec) {
		s.busy = false
		if nw.searches[s.topic] != s {
			return
		}
		now := nw.cfg.Clock.Now()
		nw.log.Debug("discv5: search lookup done", "topic", s.topic, "result", len(result))
		for _, r := range result {
			if at, ok := r.queried[s.topic]; ok && now.Sub(at) < nw.cfg.QueryResend {
				continue
			}
			nw.queryTopic(r, s.topic, nil)
		}
	})
}

// nearTarget is a random point whose distance to h shrinks and grows again in rounds, so
// that repeated searches visit the topic's neighbourhood at several radii.
func nearTarget(h [32]byte, round int) [32]byte {
	var t [32]byte
	rand.Read(t[:])
	keep := round % 4 // leading bytes kept: 0..3
	copy(t[:keep], h[:keep])
	return t
}

// queryTopic asks r for topic once bonded; cb (optional) gets the first answer, or nil.
func (nw *Network) queryTopic(r *nodeRec, topic Topic, cb func([]Node)) {
	if len(r.queried) >= 64 {
		clear(r.queried) // a node queried for many topics: forget the oldest marks
	}
	nw.bond(r, func(ok bool) {
		nw.log.Debug("discv5: query", "node", r.ID.EnodeID().TerminalString(), "topic", topic, "bonded", ok)
		if !ok || r.nQueries >= maxPendingQueries {
			if cb != nil {
				cb(nil)
			}
			return
		}
		r.queried[topic] = nw.cfg.Clock.Now()
		hash := nw.send(r.udpAddr(), topicQueryPacket, &topicQuery{Topic: topic})
		q := &pendingQuery{node: r, topic: topic, cb: cb}
		r.nQueries++
		// Keyed by node too: signatures are deterministic, so the same query to two nodes
		// is the same packet with the same hash.
		key := queryKey{r.ID, hash}
		nw.queries[key] = q
		q.timer = nw.after(topicQueryTimeout, func() {
			nw.log.Debug("discv5: query timeout", "node", r.ID.EnodeID().TerminalString(), "topic", topic, "got", q.got)
			delete(nw.queries, key)
			r.nQueries--
			if q.got == 0 {
				nw.failed(r)
			}
			if q.cb != nil {
				q.cb(nil)
				q.cb = nil
			}
		})
	})
}

func (nw *Network) handleTopicNodes(r *nodeRec, p *packet, d *topicNodes) {
	q := nw.queries[queryKey{r.ID, d.Echo}]
	nw.log.Debug("discv5: topic nodes", "from", r.ID.EnodeID().TerminalString(), "n", len(d.Nodes), "known", q != nil)
	if q == nil {
		nw.stats.drop(dropUnsolicited)
		return
	}
	r.failures = 0
	var found []Node
	for _, rn := range d.Nodes {
		if q.got >= maxQueryAnswer {
			nw.stats.drop(dropBadNode)
			break
		}
		q.got++
		// geth: a registrar announcing itself with an unspecified or loopback IP means the
		// address we reach it at.
		if ip, ok := ipOf(rn.IP); ok && (ip.IsUnspecified() || ip.IsLoopback()) {
			rn.IP = p.addr.Addr().AsSlice()
		}
		n, err := nodeFromRPC(p.addr.Addr(), rn)
		if err != nil {
			nw.stats.drop(dropBadNode)
			continue
		}
		if n.ID == nw.self.ID {
			continue
		}
		found = append(found, n)
	}
	if q.got == 0 {
		q.got = -1 // an empty answer is an answer
	}
	if s := nw.searches[q.topic]; s != nil && s.found != nil {
		for _, n := range found {
			select {
			case s.found <- n:
			default:
				nw.stats.drop(dropFoundFull)
			}
		}
	}
	if q.cb != nil {
		q.cb(found)
		q.cb = nil
	}
}

// QueryTopic asks one node for the nodes it knows advertising topic (itself included),
// bonding with it first, and returns its first answer.
func (nw *Network) QueryTopic(ctx context.Context, n Node, topic Topic) ([]Node, error) {
	res := make(chan []Node, 1)
	err := nw.do(func() {
		r := nw.rec(n, true)
		if r == nil {
			res <- nil
			return
		}
		nw.queryTopic(r, topic, func(ns []Node) { res <- ns })
	})
	if err != nil {
		return nil, err
	}
	select {
	case ns := <-res:
		if ns == nil {
			return nil, fmt.Errorf("discv5: query %s for %q: no answer", n, topic)
		}
		return ns, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Lookup runs one Kademlia lookup toward target and returns the closest nodes found.
func (nw *Network) Lookup(ctx context.Context, target [32]byte) ([]Node, error) {
	res := make(chan []Node, 1)
	if err := nw.do(func() {
		nw.lookup(target, func(rs []*nodeRec) {
			ns := make([]Node, len(rs))
			for i, r := range rs {
				ns[i] = r.Node
			}
			res <- ns
		})
	}); err != nil {
		return nil, err
	}
	select {
	case ns := <-res:
		return ns, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Nodes returns the bonded nodes of the table.
func (nw *Network) Nodes() []Node {
	var ns []Node
	_ = nw.do(func() {
		for _, r := range nw.tab.all() {
			ns = append(ns, r.Node)
		}
	})
	return ns
}

// Registrations returns the nodes registered with us for topic, newest first.
func (nw *Network) Registrations(topic Topic) []Node {
	var ns []Node
	_ = nw.do(func() {
		ns = nw.reg.entries(topic, nw.cfg.Limits.MaxEntriesPerTopic, NodeID{}, nw.cfg.Clock.Now())
	})
	return ns
}

// Stats returns the counters and a summary of the state (zero state when not running).
func (nw *Network) Stats() Stats {
	s := Stats{PacketsIn: nw.stats.in.Load(), PacketsOut: nw.stats.out.Load(), Drops: map[string]uint64{}}
	for i := dropReason(1); i < numDropReasons; i++ {
		if v := nw.stats.drops[i].Load(); v > 0 {
			s.Drops[i.String()] = v
		}
	}
	_ = nw.inspect(func() {
		s.TableNodes, s.Nodes = nw.tab.count, len(nw.nodes)
		s.Registrations = map[Topic]int{}
		for t, rt := range nw.reg.topics {
			s.Registrations[t] = len(rt.entries)
		}
		s.Registered, s.Tickets = map[Topic]int{}, map[Topic]int{}
		for t, a := range nw.adverts {
			s.Registered[t], s.Tickets[t] = len(a.registered), len(a.tickets)
		}
		s.Searches = map[Topic]string{}
		for t, se := range nw.searches {
			s.Searches[t] = se.period.String()
		}
	})
	return s
}
