package node

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/discv5"
	"github.com/statusgate/statusgate/core/peers"
	"github.com/statusgate/statusgate/core/waku"
	"github.com/statusgate/statusgate/core/whisper"
)

// DefaultMinPoW is the PoW requirement Status nodes advertised in 2019 (PROTOCOL.md §3.1).
const DefaultMinPoW = 0.001

// Config configures a Node. Every field's zero value has the default documented on it.
type Config struct {
	// Name is the client name sent in the devp2p hello. Default "statusgate".
	Name string
	// ListenAddr is the TCP address for incoming peers. Default ":30303"; "127.0.0.1:0"
	// picks a free loopback port (tests). Set NoListen to accept no incoming peers.
	ListenAddr string
	// NoListen disables incoming connections. Default false.
	NoListen bool
	// StaticPeers are enode URLs dialled and redialled for the node's lifetime.
	StaticPeers []string
	// TrustedPeers are enode URLs of mailservers: always admitted, and allowed to send
	// direct messages (code 127). They are dialled like static peers.
	TrustedPeers []string
	// BootNodes are enode URLs for discovery (v4 or topic discovery); used only when
	// Discovery turns one on.
	BootNodes []string
	// Discovery selects discovery v4 or topic discovery with its peer pool. Default
	// off: Status gateways run a known set of peers.
	Discovery DiscoveryConfig
	// PeerCache keeps the peer pool's good peers across restarts (store implements it).
	PeerCache peers.Cache
	// Discv5Options and PoolOptions are the base settings of topic discovery and the
	// peer pool (timings, clock); the fields Discovery sets are overwritten. For tests.
	Discv5Options discv5.Config
	PoolOptions   peers.Config
	// MaxPeers bounds connected peers. Default 25.
	MaxPeers int
	// Whisper configures the envelope service every protocol shares (pool, PoW, filters,
	// forwarding). A zero Whisper.MinPoW means DefaultMinPoW (use ZeroPoW to advertise
	// 0). Whisper.Limits are the per-peer limits of a protocol Limits does not name.
	Whisper whisper.Config
	// Protocols are the protocols the node speaks, ProtocolShh and ProtocolWaku. Default
	// both (DefaultProtocols): envelopes from either generation reach the other.
	Protocols []string
	// Limits are per-protocol per-peer limits, by protocol name.
	Limits map[string]Limits
	// Waku configures the Waku protocol (versions offered).
	Waku waku.Config
	// ZeroPoW advertises a PoW requirement of 0 instead of DefaultMinPoW.
	ZeroPoW bool
	// Logger receives lifecycle logs. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "statusgate"
	}
	if c.ListenAddr == "" {
		c.ListenAddr = ":30303"
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = 25
	}
	if c.Protocols == nil {
		c.Protocols = DefaultProtocols
	}
	if c.Whisper.MinPoW == 0 && !c.ZeroPoW {
		c.Whisper.MinPoW = DefaultMinPoW
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Whisper.Logger == nil {
		c.Whisper.Logger = c.Logger
	}
	return c
}

// Validate reports the first invalid setting, naming its key ("static_peers[1]: …"),
// after applying defaults. It does no I/O.
func (c Config) Validate() error {
	_, err := c.withDefaults().parse()
	return err
}

// parsed holds the validated enode lists.
type parsed struct {
	static, trusted, boot []*enode.Node
}

func (c Config) parse() (parsed, error) {
	var p parsed
	var err error
	if p.static, err = parseNodes("static_peers", c.StaticPeers); err != nil {
		return p, err
	}
	if p.trusted, err = parseNodes("trusted_peers", c.TrustedPeers); err != nil {
		return p, err
	}
	if p.boot, err = parseNodes("bootnodes", c.BootNodes); err != nil {
		return p, err
	}
	if c.MaxPeers < 0 {
		return p, fmt.Errorf("max_peers: %d is negative", c.MaxPeers)
	}
	if !c.NoListen {
		if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
			return p, fmt.Errorf("listen_addr: %w", err)
		}
	}
	if err := c.Whisper.Validate(); err != nil {
		return p, fmt.Errorf("whisper.%w", err)
	}
	if err := validateProtocols(c.Protocols, c.Limits, c.Waku); err != nil {
		return p, err
	}
	if err := c.Discovery.Validate(); err != nil {
		return p, err
	}
	if c.Discovery.TopicsOn() && c.NoListen {
		return p, errors.New("discovery.topics: needs a listen address")
	}
	return p, nil
}

func parseNodes(key string, urls []string) ([]*enode.Node, error) {
	out := make([]*enode.Node, 0, len(urls))
	for i, u := range urls {
		n, err := enode.ParseV4(u)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Node is a devp2p host running Whisper v6 and Waku over one envelope service. Build it
// with New, run it with Run; the API methods work while Run runs.
type Node struct {
	cfg    Config
	key    *ecdsa.PrivateKey
	nodes  parsed
	shh    *whisper.Service
	protos []p2p.Protocol
	log    *slog.Logger

	started atomic.Bool   // Run may be called once
	ready   chan struct{} // closed once the p2p server listens
	mu      sync.Mutex
	srv     *p2p.Server // set before ready closes, nil after Run returns
	disc    *discv5.Network
	pool    *peers.Pool
	v4nodes *lazyIterator // v4's nodes for the dialer, when v4 shares the socket
}

// New validates cfg and builds a node with the given key (see LoadOrCreateKey). It does
// no I/O.
func New(cfg Config, key *ecdsa.PrivateKey) (*Node, error) {
	if key == nil {
		return nil, errors.New("node: nil key")
	}
	cfg = cfg.withDefaults()
	nodes, err := cfg.parse()
	if err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	shh, err := whisper.NewService(cfg.Whisper)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, key: key, nodes: nodes, shh: shh, log: cfg.Logger, ready: make(chan struct{})}
	n.protos = n.protocols()
	return n, nil
}

// Run starts the Whisper service and the p2p server, and blocks until ctx ends; then it
// stops the server (which disconnects every peer and waits for their handlers) and the
// service, and returns. A listen failure is returned at once. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("node: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	shhErr := make(chan error, 1)
	go func() { shhErr <- n.shh.Run(ctx) }()

	for _, t := range n.nodes.trusted {
		n.shh.MarkTrusted(t.ID())
	}
	// v4 alone is the p2p server's own; with topic discovery the node runs v4 itself on
	// the shared socket and feeds its nodes to the dialer through the protocol.
	serverV4 := n.cfg.Discovery.V4 && !n.cfg.Discovery.TopicsOn()
	protocols := append([]p2p.Protocol(nil), n.protos...)
	if n.cfg.Discovery.V4 && n.cfg.Discovery.TopicsOn() {
		n.v4nodes = newLazyIterator()
		defer n.v4nodes.Close()
		for i := range protocols {
			protocols[i].DialCandidates = n.v4nodes
		}
	}
	srv := &p2p.Server{Config: p2p.Config{
		PrivateKey:     n.key,
		Name:           n.cfg.Name,
		MaxPeers:       n.cfg.MaxPeers,
		ListenAddr:     n.cfg.ListenAddr,
		NoDiscovery:    !serverV4,
		DiscoveryV4:    serverV4, // since geth 1.14, NoDiscovery=false alone starts no discovery
		BootstrapNodes: n.nodes.boot,
		StaticNodes:    append(append([]*enode.Node{}, n.nodes.static...), n.nodes.trusted...),
		TrustedNodes:   n.nodes.trusted,
		Protocols:      protocols,
	}}
	if n.cfg.NoListen {
		srv.ListenAddr = ""
	}
	var err error
	if err = srv.Start(); err != nil {
		stopFailedServer(srv)
		cancel()
		<-shhErr
		return fmt.Errorf("start p2p server: %w", err)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
	waitDiscovery := func() {}
	if n.cfg.Discovery.TopicsOn() {
		if waitDiscovery, err = n.startDiscovery(ctx, srv); err != nil {
			srv.Stop()
			n.mu.Lock()
			n.srv = nil
			n.mu.Unlock()
			cancel()
			<-shhErr
			return err
		}
	}
	close(n.ready)
	n.log.Info("node started", "enode", n.Enode(), "listen", srv.ListenAddr, // the actual address
		"static", len(n.nodes.static), "trusted", len(n.nodes.trusted))

	<-ctx.Done()
	waitDiscovery()
	srv.Stop()
	n.mu.Lock()
	n.srv, n.disc, n.pool = nil, nil, nil
	n.mu.Unlock()
	err = <-shhErr
	n.log.Info("node stopped")
	return err
}

// stopFailedServer releases what a failed p2p.Server.Start left running: Start returns
// without undoing its earlier steps, so its port-mapping goroutine (and a TCP listener,
// when discovery setup failed) stay up until Stop, and its node database, which only the
// server's run loop closes, keeps five goroutines of its own.
func stopFailedServer(srv *p2p.Server) {
	srv.Stop()
	if ln := srv.LocalNode(); ln != nil {
		ln.Database().Close()
	}
}

// Ready is closed once Run has the server listening.
func (n *Node) Ready() <-chan struct{} { return n.ready }

func (n *Node) server() (*p2p.Server, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return nil, errors.New("node not running")
	}
	return n.srv, nil
}

// ID is the node's ID, derived from its key.
func (n *Node) ID() enode.ID { return enode.PubkeyToIDV4(&n.key.PublicKey) }

// Enode is the node's enode URL with its actual listen port, or "" before Ready.
func (n *Node) Enode() string {
	srv, err := n.server()
	if err != nil {
		return ""
	}
	addr, err := net.ResolveTCPAddr("tcp", srv.ListenAddr) // the actual address once started
	if err != nil || n.cfg.NoListen {
		return srv.Self().URLv4()
	}
	ip := addr.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	udp := 0
	if n.cfg.Discovery.V4 || n.cfg.Discovery.TopicsOn() {
		udp = addr.Port // discovery listens on UDP at the TCP port
	}
	return enode.NewV4(&n.key.PublicKey, ip, addr.Port, udp).URLv4()
}

// Whisper is the node's envelope service (shh/6 and Waku peers alike), for layers that
// need more than this API (the mailserver).
func (n *Node) Whisper() *whisper.Service { return n.shh }

// AddPeer dials url and keeps redialling it while the node runs.
func (n *Node) AddPeer(url string, trusted bool) error {
	srv, err := n.server()
	if err != nil {
		return err
	}
	nd, err := enode.ParseV4(url)
	if err != nil {
		return fmt.Errorf("add peer: %w", err)
	}
	if trusted {
		n.shh.MarkTrusted(nd.ID())
		srv.AddTrustedPeer(nd)
	}
	srv.AddPeer(nd)
	return nil
}

// RemovePeer disconnects url and stops redialling it.
func (n *Node) RemovePeer(url string) error {
	srv, err := n.server()
	if err != nil {
		return err
	}
	nd, err := enode.ParseV4(url)
	if err != nil {
		return fmt.Errorf("remove peer: %w", err)
	}
	srv.RemovePeer(nd)
	return nil
}

// Peers describes the connected peers (Whisper and Waku), one per node.
func (n *Node) Peers() []whisper.PeerInfo { return n.shh.Peers() }

// Subscribe delivers the messages that f opens; see whisper.Service.Subscribe.
func (n *Node) Subscribe(f whisper.Filter) (*whisper.Subscription, error) { return n.shh.Subscribe(f) }

// Post builds an envelope from p (encrypting, signing and sealing it; sealing may take up
// to p.WorkTime), then pools it for gossip. It returns the envelope sent.
func (n *Node) Post(ctx context.Context, p *whisper.MessageParams) (*whisper.Envelope, error) {
	if p.Src != nil && p.Signers == nil && n.shh.OpensLocal(p.Topic) {
		// A subscription of ours will open this post: sign it through the cache its
		// filter recovers through, so that it recovers nothing.
		q := *p
		q.Signers = n.shh.Signers()
		p = &q
	}
	env, err := whisper.Wrap(p)
	if err != nil {
		return nil, fmt.Errorf("post: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := n.shh.Send(env); err != nil {
		return nil, fmt.Errorf("post: %w", err)
	}
	return env, nil
}

// Signers is the signer cache of the node's subscriptions (whisper.Service.Signers):
// core/status recovers its payloads' inner signatures through it too.
func (n *Node) Signers() *whisper.Signers { return n.shh.Signers() }

// SetMinPoW changes the advertised PoW requirement and notifies peers.
func (n *Node) SetMinPoW(pow float64) error { return n.shh.SetMinPoW(pow) }

// SetBloom changes the advertised bloom filter and notifies peers.
func (n *Node) SetBloom(b whisper.Bloom) { n.shh.SetBloom(b) }

// Peer returns the connected peer with that ID (on the protocol it gossips on), or nil.
func (n *Node) Peer(id enode.ID) *whisper.Peer { return n.shh.Peer(id) }

// PeersChanged returns a channel closed at the next change of the peer set or of a
// peer's settings, or at the next outage.
func (n *Node) PeersChanged() <-chan struct{} { return n.shh.PeersChanged() }

// OutageSince returns the outages (no peer, or the clock jumped, for longer than
// whisper.Config.OutageThreshold) recorded after seq as one; see whisper.Service.
func (n *Node) OutageSince(seq uint64) (whisper.Outage, bool) { return n.shh.OutageSince(seq) }

// WaitPeers blocks until at least k peers are connected or ctx ends.
func (n *Node) WaitPeers(ctx context.Context, k int) error {
	for {
		changed := n.shh.PeersChanged()
		if len(n.shh.Peers()) >= k {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d peers (have %d): %w", k, len(n.shh.Peers()), ctx.Err())
		case <-changed:
		}
	}
}
