package discv5

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/netutil"
)

// Node is a discovered node: its key and its endpoint.
type Node struct {
	ID  NodeID
	IP  netip.Addr
	UDP uint16 // discovery port
	TCP uint16 // RLPx port
}

// PubkeyID returns the NodeID of a public key.
func PubkeyID(pub *ecdsa.PublicKey) NodeID {
	var id NodeID
	b := crypto.FromECDSAPub(pub)
	copy(id[:], b[1:])
	return id
}

// Pubkey returns the node's public key, or an error when ID is not a curve point.
func (id NodeID) Pubkey() (*ecdsa.PublicKey, error) {
	return crypto.UnmarshalPubkey(append([]byte{4}, id[:]...))
}

// EnodeID is the v4 enode ID (keccak256 of the key), the node's Kademlia position.
func (id NodeID) EnodeID() enode.ID { return enode.ID(crypto.Keccak256Hash(id[:])) }

// NodeFromEnode converts a v4 enode; it fails for nodes without a secp256k1 key or IP.
func NodeFromEnode(n *enode.Node) (Node, error) {
	pub := n.Pubkey()
	if pub == nil {
		return Node{}, errors.New("discv5: node has no secp256k1 key")
	}
	ip, ok := netip.AddrFromSlice(n.IP())
	if !ok {
		return Node{}, errors.New("discv5: node has no IP")
	}
	udp := n.UDP()
	if udp == 0 {
		udp = n.TCP()
	}
	return Node{ID: PubkeyID(pub), IP: ip.Unmap(), UDP: uint16(udp), TCP: uint16(n.TCP())}, nil
}

// Enode returns the node as a v4 enode (for dialling).
func (n Node) Enode() (*enode.Node, error) {
	pub, err := n.ID.Pubkey()
	if err != nil {
		return nil, fmt.Errorf("discv5: node key: %w", err)
	}
	return enode.NewV4(pub, net.IP(n.IP.AsSlice()), int(n.TCP), int(n.UDP)), nil
}

// String is the node's enode URL.
func (n Node) String() string {
	e, err := n.Enode()
	if err != nil {
		return fmt.Sprintf("discv5 node %x (bad key)", n.ID[:8])
	}
	return e.URLv4()
}

func (n Node) udpAddr() netip.AddrPort { return netip.AddrPortFrom(n.IP, n.UDP) }

func (n Node) rpc() rpcNode {
	return rpcNode{IP: n.IP.Unmap().AsSlice(), UDP: n.UDP, TCP: n.TCP, ID: n.ID}
}

// errLowPort is geth's "low port" rule: nodes announcing a UDP port ≤ 1024 are ignored,
// so that discovery cannot be aimed at well-known services.
var errLowPort = errors.New("low port")

// nodeFromRPC validates a relayed node as geth does (complete, a curve point, an address
// the sender may relay to us, not a privileged port).
func nodeFromRPC(sender netip.Addr, rn rpcNode) (Node, error) {
	ip, ok := netip.AddrFromSlice(rn.IP)
	if !ok || (len(rn.IP) != 4 && len(rn.IP) != 16) {
		return Node{}, errors.New("bad IP")
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() || ip.IsMulticast() {
		return Node{}, errors.New("invalid IP (multicast/unspecified)")
	}
	if rn.UDP <= 1024 {
		return Node{}, errLowPort
	}
	if rn.TCP == 0 {
		return Node{}, errors.New("missing TCP port")
	}
	if err := checkRelay(sender, ip); err != nil {
		return Node{}, err
	}
	if _, err := rn.ID.Pubkey(); err != nil {
		return Node{}, fmt.Errorf("bad key: %w", err)
	}
	return Node{ID: rn.ID, IP: ip, UDP: rn.UDP, TCP: rn.TCP}, nil
}

func checkRelay(sender, ip netip.Addr) error {
	return netutil.CheckRelayAddr(sender.Unmap(), ip.Unmap())
}

func ipOf(b []byte) (netip.Addr, bool) {
	ip, ok := netip.AddrFromSlice(b)
	return ip.Unmap(), ok
}
