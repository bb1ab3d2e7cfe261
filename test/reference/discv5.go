package main

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/p2p/discv5"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// refDiscv5 is geth v1.9.20's experimental topic discovery (p2p/discv5) run the way
// status-go v0.70.1 runs it (discovery/discv5.go): discv5.ListenUDP on its own UDP
// socket at the node's listen address (so the UDP port equals the TCP port), with
// SetFallbackNodes(bootnodes); topics registered with RegisterTopic and searched with
// SearchTopic, whose period channel sets the search period.
type refDiscv5 struct {
	n   *node
	net *discv5.Network

	mu       sync.Mutex
	regs     map[string]chan struct{}
	searches map[string]*refSearch
	wg       sync.WaitGroup
}

type refSearch struct {
	period  chan time.Duration
	found   map[discv5.NodeID]bool
	dialed  int
	maxDial int
	quit    chan struct{}
}

func (n *node) discv5Start(req *nodeRequest) (map[string]any, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.disc != nil {
		return nil, errors.New("discv5 already started")
	}
	var boot []*discv5.Node
	for _, u := range req.Bootnodes {
		b, err := discv5.ParseNode(u)
		if err != nil {
			return nil, fmt.Errorf("bootnode %q: %v", u, err)
		}
		boot = append(boot, b)
	}
	laddr, err := net.ResolveUDPAddr("udp", n.srv.ListenAddr) // the actual TCP address
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	ntab, err := discv5.ListenUDP(n.srv.PrivateKey, conn, "", nil)
	if err != nil {
		return nil, err
	}
	if err := ntab.SetFallbackNodes(boot); err != nil {
		ntab.Close()
		return nil, err
	}
	n.disc = &refDiscv5{n: n, net: ntab, regs: map[string]chan struct{}{}, searches: map[string]*refSearch{}}
	return map[string]any{"enode": ntab.Self().String()}, nil
}

func (n *node) discv5() (*refDiscv5, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.disc == nil {
		return nil, errors.New("discv5 not started")
	}
	return n.disc, nil
}

func (d *refDiscv5) register(topic string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.regs[topic] != nil {
		return
	}
	stop := make(chan struct{})
	d.regs[topic] = stop
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.net.RegisterTopic(discv5.Topic(topic), stop) }()
}

func (d *refDiscv5) unregister(topic string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if stop := d.regs[topic]; stop != nil {
		close(stop)
		delete(d.regs, topic)
	}
}

// search starts (or re-periods) a search; each node found for the first time is printed
// as a "found" event and, while fewer than maxDial were dialled, dialled (srv.AddPeer).
func (d *refDiscv5) search(topic string, period time.Duration, maxDial int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.searches[topic]; s != nil {
		s.maxDial = maxDial
		s.period <- period
		return
	}
	s := &refSearch{period: make(chan time.Duration, 1), found: map[discv5.NodeID]bool{}, maxDial: maxDial, quit: make(chan struct{})}
	d.searches[topic] = s
	found := make(chan *discv5.Node, 16)
	lookup := make(chan bool, 16)
	s.period <- period
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.net.SearchTopic(discv5.Topic(topic), s.period, found, lookup)
	}()
	go func() {
		defer d.wg.Done()
		for {
			select {
			case <-s.quit:
				return
			case <-lookup:
			case nd := <-found:
				d.foundNode(topic, s, nd)
			}
		}
	}()
}

func (d *refDiscv5) foundNode(topic string, s *refSearch, nd *discv5.Node) {
	d.mu.Lock()
	first := !s.found[nd.ID]
	s.found[nd.ID] = true
	dial := first && s.dialed < s.maxDial
	if dial {
		s.dialed++
	}
	d.mu.Unlock()
	if !first {
		return
	}
	pub, err := nd.ID.Pubkey()
	if err != nil {
		return
	}
	en := enode.NewV4(pub, nd.IP, int(nd.TCP), int(nd.UDP))
	d.n.out.emit(map[string]any{"type": "found", "topic": topic, "enode": en.URLv4(), "id": en.ID().String()})
	if dial {
		d.n.srv.AddPeer(en)
	}
}

func (d *refDiscv5) stopSearch(topic string) {
	d.mu.Lock()
	s := d.searches[topic]
	delete(d.searches, topic)
	d.mu.Unlock()
	if s != nil {
		close(s.period) // SearchTopic removes the search and returns
		close(s.quit)
	}
}

// stats reports the table (up to 256 random nodes) and the topics.
func (d *refDiscv5) stats() map[string]any {
	buf := make([]*discv5.Node, 256)
	k := d.net.ReadRandomNodes(buf)
	var ids []string
	for _, nd := range buf[:k] {
		if nd != nil {
			ids = append(ids, fmt.Sprintf("%x", nd.ID[:]))
		}
	}
	sort.Strings(ids)
	d.mu.Lock()
	defer d.mu.Unlock()
	found := map[string][]string{}
	for t, s := range d.searches {
		for id := range s.found {
			found[t] = append(found[t], fmt.Sprintf("%x", id[:]))
		}
		sort.Strings(found[t])
	}
	return map[string]any{"table": ids, "found": found}
}

func (d *refDiscv5) close() {
	d.mu.Lock()
	for t, stop := range d.regs {
		close(stop)
		delete(d.regs, t)
	}
	var ss []*refSearch
	for t, s := range d.searches {
		ss = append(ss, s)
		delete(d.searches, t)
	}
	d.mu.Unlock()
	for _, s := range ss {
		close(s.period)
		close(s.quit)
	}
	d.net.Close()
	d.wg.Wait()
}

func (n *node) discv5Op(req *nodeRequest) (map[string]any, error) {
	d, err := n.discv5()
	if err != nil {
		return nil, err
	}
	if req.Op != "discv5_stats" && req.Topic == "" {
		return nil, errors.New("missing topic")
	}
	switch req.Op {
	case "register_topic":
		d.register(req.Topic)
	case "unregister_topic":
		d.unregister(req.Topic)
	case "search_topic":
		if req.Period <= 0 {
			return nil, errors.New("period_ms must be positive")
		}
		d.search(req.Topic, time.Duration(req.Period)*time.Millisecond, req.MaxDial)
	case "stop_search":
		d.stopSearch(req.Topic)
	case "discv5_stats":
		return d.stats(), nil
	}
	return nil, nil
}
