package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/discover"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"gopkg.in/yaml.v3"

	"github.com/statusgate/statusgate/core/discv5"
	"github.com/statusgate/statusgate/core/peers"
)

// The topics Status nodes of 2019 advertised (PROTOCOL.md §9).
const (
	TopicWhisper    = "whisper"
	TopicMailserver = "whispermail"
)

// DiscoveryConfig is node.discovery: how the node finds peers beyond its static ones.
type DiscoveryConfig struct {
	// V4 turns on discovery v4 (Ethereum's node discovery, any kind of node) over UDP on
	// the listen port, with the node's bootnodes. Default false. The old form
	// `discovery: true` means v4.
	V4 bool `yaml:"v4"`
	// Topics are the topics searched with topic discovery (go-ethereum v1.9.20's
	// p2p/discv5, as Status nodes of 2019 ran it, on UDP at the listen port, with the
	// node's bootnodes), each with the peer pool's {min, max}: the node keeps at least
	// min and at most max peers of the topic, searching every 3 s below min and every
	// 30 s otherwise. Default none: topic discovery off. A usual setting is
	// {whisper: {min: 2, max: 2}}; "whispermail" is searched for mailserver candidates
	// (never kept connected).
	Topics map[string]peers.Limits `yaml:"topics"`
	// Register are the topics the node advertises while topic discovery is on. Default
	// ["whisper"]; the gateway adds "whispermail" when its mailserver is on.
	Register []string `yaml:"register"`
	// Rendezvous lists rendezvous servers (multiaddrs). Not supported: status-im/
	// rendezvous v1.3.0 speaks libp2p with the secio security transport, which no
	// maintained go-libp2p has (docs/discovery.md); a non-empty list is an error.
	Rendezvous []string `yaml:"rendezvous"`
	// Limits bound what other nodes can make topic discovery keep (discv5.Limits; zero
	// fields take discv5.DefaultLimits).
	Limits discv5.Limits `yaml:"limits"`
}

// UnmarshalYAML accepts the old boolean form (`discovery: true` = v4) too.
func (d *DiscoveryConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var v4 bool
		if err := n.Decode(&v4); err != nil {
			return fmt.Errorf("discovery: want a mapping or a boolean: %w", err)
		}
		*d = DiscoveryConfig{V4: v4}
		return nil
	}
	type plain DiscoveryConfig
	return n.Decode((*plain)(d))
}

// TopicsOn reports whether topic discovery runs.
func (d DiscoveryConfig) TopicsOn() bool { return len(d.Topics) > 0 }

// Validate checks the section (keys named as in the YAML).
func (d DiscoveryConfig) Validate() error {
	if len(d.Rendezvous) > 0 {
		return errors.New("discovery.rendezvous: not supported (rendezvous v1.3.0 needs libp2p's secio, which no maintained go-libp2p has; see docs/discovery.md)")
	}
	names := make([]string, 0, len(d.Topics))
	for t := range d.Topics {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		if err := validTopic(t); err != nil {
			return fmt.Errorf("discovery.topics: %w", err)
		}
		if err := d.Topics[t].Validate(); err != nil {
			return fmt.Errorf("discovery.topics.%s: %w", t, err)
		}
	}
	for i, t := range d.Register {
		if err := validTopic(t); err != nil {
			return fmt.Errorf("discovery.register[%d]: %w", i, err)
		}
	}
	for _, l := range []struct {
		name string
		v    int
	}{{"max_nodes", d.Limits.MaxNodes}, {"max_entries", d.Limits.MaxEntries}, {"max_entries_per_topic", d.Limits.MaxEntriesPerTopic},
		{"max_topics", d.Limits.MaxTopics}, {"max_topics_per_node", d.Limits.MaxTopicsPerNode}, {"max_topic_length", d.Limits.MaxTopicLength},
		{"max_ping_topics", d.Limits.MaxPingTopics}, {"inbound_queue", d.Limits.InboundQueue}} {
		if l.v < 0 {
			return fmt.Errorf("discovery.limits.%s: %d is negative", l.name, l.v)
		}
	}
	return nil
}

func validTopic(t string) error {
	if t == "" || len(t) > 128 || strings.TrimSpace(t) != t {
		return fmt.Errorf("bad topic %q (1 to 128 characters, no surrounding space)", t)
	}
	return nil
}

func (d DiscoveryConfig) registered() []string {
	if d.Register == nil {
		return []string{TopicWhisper}
	}
	return d.Register
}

// DiscoveryStatus is the state of topic discovery and the peer pool.
type DiscoveryStatus struct {
	// On is false when topic discovery is off (the rest is then empty).
	On bool
	// Searching is false while every topic's search is paused (all at their maximum).
	Searching bool
	Topics    []peers.TopicStatus
	// Table is the number of nodes in the discovery table.
	Table int
	// Registered are the topics advertised.
	Registered []string
	Discv5     discv5.Stats
}

// DiscoveryStatus reports topic discovery (zero when it is off or not started).
func (n *Node) DiscoveryStatus() DiscoveryStatus {
	n.mu.Lock()
	disc, pool := n.disc, n.pool
	n.mu.Unlock()
	if disc == nil || pool == nil {
		return DiscoveryStatus{}
	}
	ps := pool.Status()
	st := disc.Stats()
	return DiscoveryStatus{On: true, Searching: ps.Searching, Topics: ps.Topics, Table: st.TableNodes,
		Registered: n.cfg.Discovery.registered(), Discv5: st}
}

// Mailservers are the mailservers found by topic discovery ("whispermail"), most
// recently seen first: candidates for history requests.
func (n *Node) Mailservers() []string {
	n.mu.Lock()
	pool := n.pool
	n.mu.Unlock()
	if pool == nil {
		return nil
	}
	var urls []string
	for _, e := range pool.Candidates(TopicMailserver) {
		urls = append(urls, e.URLv4())
	}
	return urls
}

// MailserversChanged returns a channel closed when the discovery pool's state next
// changes (Mailservers may hold new candidates); nil, never closed, without discovery.
func (n *Node) MailserversChanged() <-chan struct{} {
	n.mu.Lock()
	pool := n.pool
	n.mu.Unlock()
	if pool == nil {
		return nil
	}
	return pool.CandidatesChanged()
}

// startDiscovery runs topic discovery on UDP at the server's listen port and the peer
// pool over it, until ctx ends; it returns a wait function.
func (n *Node) startDiscovery(ctx context.Context, srv *p2p.Server) (wait func(), err error) {
	tcp, err := net.ResolveTCPAddr("tcp", srv.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("discovery: listen address: %w", err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: tcp.IP, Port: tcp.Port})
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	// With v4 on too, both share the socket as in geth: v4 reads it and hands topic
	// discovery the packets it cannot decode; its random nodes feed the dialer.
	var udp discv5.Conn = conn
	var v4 *discover.UDPv4
	if n.cfg.Discovery.V4 {
		unhandled := make(chan discover.ReadPacket, 256)
		srv.LocalNode().SetFallbackUDP(tcp.Port)
		v4, err = discover.ListenV4(conn, srv.LocalNode(), discover.Config{PrivateKey: n.key, Bootnodes: n.nodes.boot,
			Unhandled: unhandled, Log: gethLogger(n.log)})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("discovery v4: %w", err)
		}
		udp = &discover.SharedUDPConn{UDPConn: conn, Unhandled: unhandled}
		n.v4nodes.set(v4.RandomNodes())
	}
	closeUDP := func() {
		if v4 != nil {
			v4.Close() // closes conn, and the unhandled channel topic discovery reads
		} else {
			conn.Close()
		}
	}
	dc := n.cfg.Discv5Options
	dc.PrivateKey, dc.TCPPort, dc.Limits = n.key, uint16(tcp.Port), n.cfg.Discovery.Limits
	if dc.Logger == nil {
		dc.Logger = n.log.With("svc", "discv5")
	}
	for _, b := range n.nodes.boot {
		if dn, err := discv5.NodeFromEnode(b); err == nil {
			dc.Bootnodes = append(dc.Bootnodes, dn)
		}
	}
	disc, err := discv5.New(udp, dc)
	if err != nil {
		closeUDP()
		return nil, err
	}
	pc := n.cfg.PoolOptions
	pc.Topics = map[discv5.Topic]peers.Limits{}
	for t, l := range n.cfg.Discovery.Topics {
		pc.Topics[discv5.Topic(t)] = l
	}
	pc.CacheOnly = append(pc.CacheOnly, TopicMailserver)
	pc.Self = n.ID()
	if pc.Cache == nil && n.cfg.PeerCache != nil {
		pc.Cache = n.cfg.PeerCache
	}
	if pc.Logger == nil {
		pc.Logger = n.log.With("svc", "peerpool")
	}
	pool, err := peers.New(pc, srv, disc)
	if err != nil {
		closeUDP()
		return nil, err
	}
	done := make(chan struct{}, 3)
	go func() { _ = disc.Run(ctx); done <- struct{}{} }()
	go func() { <-ctx.Done(); closeUDP(); done <- struct{}{} }()
	for _, t := range n.cfg.Discovery.registered() {
		if err := disc.Register(discv5.Topic(t)); err != nil {
			n.log.Warn("discovery: register failed", "topic", t, "err", err)
		}
	}
	go func() {
		if err := pool.Run(ctx); err != nil {
			n.log.Warn("peer pool stopped", "err", err)
		}
		done <- struct{}{}
	}()
	n.mu.Lock()
	n.disc, n.pool = disc, pool
	n.mu.Unlock()
	n.log.Info("topic discovery on", "udp", conn.LocalAddr(), "register", n.cfg.Discovery.registered(),
		"topics", len(pc.Topics), "bootnodes", len(dc.Bootnodes))
	return func() { <-done; <-done; <-done }, nil
}

// Searches reports whether topic discovery searches topic.
func (d DiscoveryConfig) Searches(topic string) bool {
	_, ok := d.Topics[topic]
	return ok
}

// lazyIterator is the dial-candidate source of discovery v4 when the node runs v4
// itself (sharing the UDP socket with topic discovery): the p2p server takes its
// protocols' candidate sources before it starts, and v4 exists only after. Next blocks
// until the real iterator is set or the iterator is closed.
type lazyIterator struct {
	mu     sync.Mutex
	cond   *sync.Cond
	it     enode.Iterator
	closed bool
}

func newLazyIterator() *lazyIterator {
	l := &lazyIterator{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *lazyIterator) set(it enode.Iterator) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		it.Close()
		return
	}
	l.it = it
	l.cond.Broadcast()
}

func (l *lazyIterator) wait() enode.Iterator {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.it == nil && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		return nil
	}
	return l.it
}

// Next implements enode.Iterator.
func (l *lazyIterator) Next() bool {
	it := l.wait()
	return it != nil && it.Next()
}

// Node implements enode.Iterator.
func (l *lazyIterator) Node() *enode.Node {
	l.mu.Lock()
	it := l.it
	l.mu.Unlock()
	if it == nil {
		return nil
	}
	return it.Node()
}

// Close implements enode.Iterator.
func (l *lazyIterator) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	if l.it != nil {
		l.it.Close()
	}
	l.cond.Broadcast()
}

// gethLogger discards go-ethereum's discovery logs (its log package, not slog).
func gethLogger(*slog.Logger) log.Logger { return log.NewLogger(slog.DiscardHandler) }
