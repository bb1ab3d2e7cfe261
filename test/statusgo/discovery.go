package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/ethereum/go-ethereum/p2p/discv5"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/storage"

	"github.com/status-im/status-go/discovery"
	sgparams "github.com/status-im/status-go/params"
	"github.com/status-im/status-go/peers"
)

// statusDiscovery is status-go v0.70.1's own discovery stack, assembled as its node
// does (node/status_node.go startDiscovery): discovery.NewDiscV5 on the devp2p listen
// address (UDP port = TCP port), peers.NewRegister for the advertised topics, and
// peers.NewPeerPool with the topic limits, an in-memory peer cache and
// peers.NewDefaultOptions (TrustedMailServers from the request: status-go caches a
// mailserver found by "whispermail" only when its verifier trusts it).
type statusDiscovery struct {
	disc  *discovery.DiscV5
	reg   *peers.Register
	pool  *peers.PeerPool
	cache *peers.Cache
	db    *leveldb.DB
}

var (
	discMu  sync.Mutex
	discRun = map[*node]*statusDiscovery{}
)

func opDiscoveryStart(n *node, line []byte) (map[string]any, error) {
	var req struct {
		Bootnodes          []string          `json:"bootnodes"`
		Topics             map[string][2]int `json:"topics"` // topic → [min, max]
		Register           []string          `json:"register"`
		TrustedMailservers []string          `json:"trusted_mailservers"` // enode IDs, hex
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, err
	}
	discMu.Lock()
	defer discMu.Unlock()
	if discRun[n] != nil {
		return nil, errors.New("discovery already started")
	}
	var boot []*discv5.Node
	for _, u := range req.Bootnodes {
		b, err := discv5.ParseNode(u)
		if err != nil {
			return nil, fmt.Errorf("bootnode %q: %v", u, err)
		}
		boot = append(boot, b)
	}
	srv := n.stack.Server()
	d := &statusDiscovery{disc: discovery.NewDiscV5(srv.PrivateKey, srv.ListenAddr, boot)}
	if err := d.disc.Start(); err != nil {
		return nil, fmt.Errorf("discv5: %v", err)
	}
	var topics []discv5.Topic
	for _, t := range req.Register {
		topics = append(topics, discv5.Topic(t))
	}
	d.reg = peers.NewRegister(d.disc, topics...)
	if err := d.reg.Start(); err != nil {
		d.disc.Stop()
		return nil, err
	}
	var err error
	if d.db, err = leveldb.Open(storage.NewMemStorage(), nil); err != nil {
		return nil, err
	}
	d.cache = peers.NewCache(d.db)
	cfg := map[discv5.Topic]sgparams.Limits{}
	for t, l := range req.Topics {
		cfg[discv5.Topic(t)] = sgparams.NewLimits(l[0], l[1])
	}
	opts := peers.NewDefaultOptions()
	for _, h := range req.TrustedMailservers {
		var id enode.ID
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(id) {
			return nil, fmt.Errorf("trusted mailserver %q: want 64 hex", h)
		}
		copy(id[:], b)
		opts.TrustedMailServers = append(opts.TrustedMailServers, id)
	}
	d.pool = peers.NewPeerPool(d.disc, cfg, d.cache, opts)
	if err := d.pool.Start(srv, nil); err != nil {
		d.reg.Stop()
		d.disc.Stop()
		return nil, fmt.Errorf("peer pool: %v", err)
	}
	discRun[n] = d
	return map[string]any{"ok": true}, nil
}

// opDiscoveryStatus reports the server's peers and the peer cache of each topic.
func opDiscoveryStatus(n *node, line []byte) (map[string]any, error) {
	var req struct {
		Topics []string `json:"topics"`
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, err
	}
	discMu.Lock()
	d := discRun[n]
	discMu.Unlock()
	if d == nil {
		return nil, errors.New("discovery not started")
	}
	ps := []string{}
	for _, p := range n.stack.Server().Peers() {
		ps = append(ps, p.ID().String())
	}
	sort.Strings(ps)
	cached := map[string][]string{}
	for _, t := range req.Topics {
		cached[t] = []string{}
		for _, dn := range d.cache.GetPeersRange(discv5.Topic(t), 20) {
			pub, err := dn.ID.Pubkey()
			if err != nil {
				continue
			}
			cached[t] = append(cached[t], enode.PubkeyToIDV4(pub).String())
		}
		sort.Strings(cached[t])
	}
	return map[string]any{"peers": ps, "cached": cached}, nil
}

// stopDiscovery ends the discovery stack of n, if any (at exit).
func stopDiscovery(n *node) {
	discMu.Lock()
	d := discRun[n]
	delete(discRun, n)
	discMu.Unlock()
	if d == nil {
		return
	}
	d.pool.Stop()
	d.reg.Stop()
	_ = d.disc.Stop()
	_ = d.db.Close()
}
