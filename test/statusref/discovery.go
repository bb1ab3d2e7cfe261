package statusref

import "sort"

// DiscoveryOptions configure status-go's own discovery stack (op discovery_start):
// discv5 on the node's listen port with Bootnodes, peers.Register of Register, and
// peers.PeerPool with Topics (topic → [min, max]) and TrustedMailservers (enode IDs
// in hex, status-go's local mailserver verifier).
type DiscoveryOptions struct {
	Bootnodes          []string
	Topics             map[string][2]int
	Register           []string
	TrustedMailservers []string
}

// DiscoveryStart starts status-go v0.70.1's discovery and peer pool on the node.
func (n *Node) DiscoveryStart(o DiscoveryOptions) error {
	return n.call("discovery_start", map[string]any{"bootnodes": nonNil(o.Bootnodes), "topics": o.Topics,
		"register": nonNil(o.Register), "trusted_mailservers": nonNil(o.TrustedMailservers)}, nil)
}

// DiscoveryStatus returns the node's connected peers and, per topic asked, the enode
// IDs in status-go's peer cache (a mailserver is cached once found and trusted).
func (n *Node) DiscoveryStatus(topics ...string) (peers []string, cached map[string][]string, err error) {
	var out struct {
		Peers  []string            `json:"peers"`
		Cached map[string][]string `json:"cached"`
	}
	if err := n.call("discovery_status", map[string]any{"topics": nonNil(topics)}, &out); err != nil {
		return nil, nil, err
	}
	sort.Strings(out.Peers)
	return out.Peers, out.Cached, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
