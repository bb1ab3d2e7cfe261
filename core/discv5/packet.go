package discv5

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// Version is the ping version geth's discv5 sends.
const Version = 4

// Packet types, as numbered by geth (nodeEvent).
const (
	pingPacket = iota + 1
	pongPacket
	findnodePacket
	neighborsPacket
	findnodeHashPacket
	topicRegisterPacket
	topicQueryPacket
	topicNodesPacket
)

// MaxPacketSize is the protocol's packet limit; longer datagrams are cut by the reader
// and then fail their signature.
const MaxPacketSize = 1280

var (
	versionPrefix = []byte("temporary discovery v5")
	sigSize       = 65
	headSize      = len(versionPrefix) + sigSize
)

// Errors of the packet decoder.
var (
	ErrPacketTooSmall = errors.New("discv5: packet too small")
	ErrBadPrefix      = errors.New("discv5: bad version prefix")
	ErrBadSignature   = errors.New("discv5: bad signature")
	ErrUnknownType    = errors.New("discv5: unknown packet type")
	ErrBadPacket      = errors.New("discv5: malformed packet")
)

// Topic is a discovery topic: "whisper", "whispermail", "LES2@…".
type Topic string

// NodeID is a node's secp256k1 public key, X ‖ Y (64 bytes), as in the v4 enode URL.
type NodeID [64]byte

// Wire structures. Field order and the tail fields are geth's (p2p/discv5/udp.go); geth
// decodes ping, pong, findnode and neighbors tolerantly (extra list elements ignored) and
// topicRegister, topicQuery and topicNodes strictly.
type (
	rpcEndpoint struct {
		IP  []byte // 4 or 16 bytes
		UDP uint16
		TCP uint16
	}
	rpcNode struct {
		IP  []byte
		UDP uint16
		TCP uint16
		ID  NodeID
	}
	ping struct {
		Version    uint
		From, To   rpcEndpoint
		Expiration uint64
		Topics     []Topic
		Rest       []rlp.RawValue `rlp:"tail"`
	}
	pong struct {
		To           rpcEndpoint
		ReplyTok     []byte
		Expiration   uint64 // geth's registrar puts its ticket issue time here, in monotonic seconds
		TopicHash    [32]byte
		TicketSerial uint32
		WaitPeriods  []uint32
		Rest         []rlp.RawValue `rlp:"tail"`
	}
	findnode struct {
		Target     NodeID
		Expiration uint64
		Rest       []rlp.RawValue `rlp:"tail"`
	}
	findnodeHash struct {
		Target     [32]byte
		Expiration uint64
		Rest       []rlp.RawValue `rlp:"tail"`
	}
	neighbors struct {
		Nodes      []rpcNode
		Expiration uint64
		Rest       []rlp.RawValue `rlp:"tail"`
	}
	topicRegister struct {
		Topics []Topic
		Idx    uint
		Pong   []byte // the registrar's own pong packet, as it sent it
	}
	topicQuery struct {
		Topic      Topic
		Expiration uint64 // geth sends 0
	}
	topicNodes struct {
		Echo  [32]byte
		Nodes []rpcNode
	}
)

// packet is an authenticated, decoded datagram.
type packet struct {
	from NodeID
	addr netip.AddrPort
	typ  byte
	hash [32]byte // keccak256(signature ‖ type ‖ body): what a pong echoes
	data any      // one of the wire structures
	raw  []byte   // the whole datagram (a pong is kept to be sent back in topicRegister)
}

// encodePacket signs and frames one packet: prefix ‖ sig(keccak256(type ‖ body)) ‖ type ‖ body.
func encodePacket(key *ecdsa.PrivateKey, typ byte, body any) (raw []byte, hash [32]byte, err error) {
	var b bytes.Buffer
	b.Write(make([]byte, headSize))
	b.WriteByte(typ)
	if err := rlp.Encode(&b, body); err != nil {
		return nil, hash, fmt.Errorf("encode packet %d: %w", typ, err)
	}
	raw = b.Bytes()
	sig, err := crypto.Sign(crypto.Keccak256(raw[headSize:]), key)
	if err != nil {
		return nil, hash, fmt.Errorf("sign packet: %w", err)
	}
	copy(raw, versionPrefix)
	copy(raw[len(versionPrefix):], sig)
	copy(hash[:], crypto.Keccak256(raw[len(versionPrefix):]))
	return raw, hash, nil
}

// decodePacket authenticates buf and decodes its body. buf is copied. Like geth it reads
// the first RLP value of the body and ignores what follows it.
func decodePacket(buf []byte) (*packet, error) {
	if len(buf) < headSize+1 {
		return nil, ErrPacketTooSmall
	}
	if !bytes.Equal(buf[:len(versionPrefix)], versionPrefix) {
		return nil, ErrBadPrefix
	}
	buf = bytes.Clone(buf)
	sig, sigdata := buf[len(versionPrefix):headSize], buf[headSize:]
	pub, err := crypto.Ecrecover(crypto.Keccak256(sigdata), sig)
	if err != nil || len(pub) != 65 {
		return nil, ErrBadSignature
	}
	p := &packet{typ: sigdata[0], raw: buf}
	copy(p.from[:], pub[1:])
	copy(p.hash[:], crypto.Keccak256(buf[len(versionPrefix):]))
	switch p.typ {
	case pingPacket:
		p.data = new(ping)
	case pongPacket:
		p.data = new(pong)
	case findnodePacket:
		p.data = new(findnode)
	case neighborsPacket:
		p.data = new(neighbors)
	case findnodeHashPacket:
		p.data = new(findnodeHash)
	case topicRegisterPacket:
		p.data = new(topicRegister)
	case topicQueryPacket:
		p.data = new(topicQuery)
	case topicNodesPacket:
		p.data = new(topicNodes)
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, p.typ)
	}
	s := rlp.NewStream(bytes.NewReader(sigdata[1:]), uint64(len(sigdata)-1))
	if err := s.Decode(p.data); err != nil {
		return nil, fmt.Errorf("%w: type %d: %v", ErrBadPacket, p.typ, err)
	}
	return p, nil
}

// rlpHash is keccak256 of x's RLP encoding: a ticket's TopicHash is rlpHash(topics).
func rlpHash(x any) (h [32]byte) {
	b, err := rlp.EncodeToBytes(x)
	if err != nil { // only for types that cannot be encoded, never ours
		panic(err)
	}
	copy(h[:], crypto.Keccak256(b))
	return h
}

// maxNeighbors and maxTopicNodes are how many nodes of the largest size (IPv6) fit in one
// packet under MaxPacketSize, computed as geth computes them.
var (
	maxNeighbors  = fitNodes(func(ns []rpcNode) any { return neighbors{Nodes: ns, Expiration: ^uint64(0)} })
	maxTopicNodes = fitNodes(func(ns []rpcNode) any { return topicNodes{Nodes: ns} })
)

func fitNodes(wrap func([]rpcNode) any) int {
	big := rpcNode{IP: make([]byte, 16), UDP: ^uint16(0), TCP: ^uint16(0)}
	var ns []rpcNode
	for n := 0; ; n++ {
		ns = append(ns, big)
		b, err := rlp.EncodeToBytes(wrap(ns))
		if err != nil {
			panic(err)
		}
		if headSize+len(b)+1 >= MaxPacketSize {
			return n
		}
	}
}

func makeEndpoint(addr netip.AddrPort, tcp uint16) rpcEndpoint {
	return rpcEndpoint{IP: addr.Addr().Unmap().AsSlice(), UDP: addr.Port(), TCP: tcp}
}
