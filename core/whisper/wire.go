package whisper

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
)

// Wire is one devp2p capability that carries Whisper envelopes: shh/6 (ShhWire, in this
// package) and waku/0 and waku/1 (core/waku). Every wire of a Service shares its pool,
// acceptance rules, filters, subscriptions and eager forwarding, so an envelope accepted
// from a peer of one wire is offered to the peers of every wire. A wire says only how
// its status handshake and settings packets look, and handles the codes only it has;
// the codes every generation shares (1 messages, 11 and 12 confirmations, 125, 126 and
// 127 mailserver) are the service's.
type Wire interface {
	// Name and Version are the devp2p capability ("shh", 6). Name also labels the
	// wire's statistics, so versions of one protocol share a name.
	Name() string
	Version() uint
	// MaxStatusSize bounds the handshake packet.
	MaxStatusSize() uint32
	// EncodeStatus returns the body of our handshake packet (code 0).
	EncodeStatus(ours Advert) ([]byte, error)
	// DecodeStatus parses the peer's handshake body, with the wire's defaults for what
	// the peer left out. Errors wrap ErrHandshake.
	DecodeStatus(body []byte) (PeerSettings, error)
	// SendUpdate tells the peer what changed between sent, what it last heard from us,
	// and now (shh/6: codes 2 and 3; waku: code 22).
	SendUpdate(w p2p.MsgWriter, sent, now Advert) error
	// Handler returns the handler of a packet code only this wire has, or nil.
	Handler(code uint64) PacketHandler
	// EnvelopeErrorCodes are the codes our message responses (code 12) give a rejected
	// envelope: a clock error, and any other (the values differ between status-go's
	// generations, PROTOCOL.md §2.2).
	EnvelopeErrorCodes() (timeSync, other uint)
	// LenientEnvelopes keeps peers that send envelopes breaking an acceptance rule
	// (status-go's Waku reports them in code 12 and keeps the peer); false applies the
	// service's policy (geth's: disconnect, SoftTimeErrors aside).
	LenientEnvelopes() bool
	// TopicInterest says the wire can advertise an exact topic list (Waku option 5),
	// which takes precedence over the bloom filter.
	TopicInterest() bool
}

// PacketHandler processes one packet of a wire's own code from p. A returned error
// disconnects the peer (wrap ErrMalformedPacket or a sentinel).
type PacketHandler func(p *Peer, msg p2p.Msg) error

// WireConfig is what the node sets per wire.
type WireConfig struct {
	// Limits bound each peer of the wire (PeerLimits' defaults for zero fields).
	Limits PeerLimits
	// Preference orders wires when a node speaks several with us on one connection:
	// only the wire with the highest preference gossips envelopes, the others carry
	// settings, confirmations and mailserver packets (whatever the remote node sends
	// on them is accepted as usual).
	Preference int
}

// MaxTopicInterest bounds a topic-interest list (Waku option 5), as status-go does.
const MaxTopicInterest = 10000

// Advert is what we tell a peer about ourselves: our handshake and, after it, the
// settings packets when it changes.
type Advert struct {
	PoW   float64
	Bloom Bloom
	// Topics is our topic interest, sorted, when the wire carries one and the node
	// listens only for its own topics (Config.TopicBloom); nil: the bloom filter alone.
	// Empty (not nil) wants nothing.
	Topics        []Topic
	LightNode     bool
	Confirmations bool
	// PacketLimits and ByteLimits are the inbound limits we enforce, per second (Waku
	// options 4 and 6); zero fields are no limit.
	PacketLimits, ByteLimits RateLimits
}

// PeerSettings is what a peer tells us about itself, in its handshake (with the wire's
// defaults for what it left out) or in a settings packet (only what changed: nil fields
// are unchanged).
type PeerSettings struct {
	PoW   *float64
	Bloom *Bloom
	// Topics is the peer's topic interest when HasTopics (an empty list wants
	// nothing); it takes precedence over Bloom.
	Topics    []Topic
	HasTopics bool
	LightNode *bool
	// Confirmations: the peer sends message responses (code 12) after our packets.
	Confirmations *bool
	PacketLimits  *RateLimits
	ByteLimits    *RateLimits
}

// ShhWire is shh/6, Whisper v6 as geth v1.9.20 and status-go speak it.
func ShhWire() Wire { return shhWire{} }

type shhWire struct{}

func (shhWire) Name() string          { return ProtocolName }
func (shhWire) Version() uint         { return uint(ProtocolVersion) }
func (shhWire) MaxStatusSize() uint32 { return maxStatusSize }
func (shhWire) TopicInterest() bool   { return false }
func (shhWire) LenientEnvelopes() bool {
	return false
}
func (shhWire) EnvelopeErrorCodes() (uint, uint) {
	return envelopeTimeErrorCode, envelopeOtherErrorCode
}

func (shhWire) EncodeStatus(ours Advert) ([]byte, error) {
	return EncodeStatus(Status{PoW: ours.PoW, Bloom: ours.Bloom, LightNode: ours.LightNode, Confirmations: ours.Confirmations})
}

func (shhWire) DecodeStatus(body []byte) (PeerSettings, error) {
	st, err := DecodeStatus(body)
	if err != nil {
		return PeerSettings{}, err
	}
	return st.settings(), nil
}

// settings converts a shh/6 status into what the peer asks of us.
func (st Status) settings() PeerSettings {
	ps := PeerSettings{PoW: &st.PoW, Bloom: &st.Bloom, LightNode: &st.LightNode, Confirmations: &st.Confirmations}
	if st.RateLimits != nil {
		rl := *st.RateLimits
		ps.PacketLimits = &rl
	}
	return ps
}

func (shhWire) SendUpdate(w p2p.MsgWriter, sent, now Advert) error {
	if now.PoW != sent.PoW {
		if err := p2p.Send(w, powRequirementCode, math.Float64bits(now.PoW)); err != nil {
			return fmt.Errorf("send PoW requirement: %w", err)
		}
	}
	if now.Bloom != sent.Bloom {
		if err := p2p.Send(w, bloomFilterExCode, now.Bloom[:]); err != nil {
			return fmt.Errorf("send bloom filter: %w", err)
		}
	}
	return nil
}

var shhHandlers = map[uint64]PacketHandler{
	powRequirementCode: handlePoWRequirement,
	bloomFilterExCode:  handleBloomFilter,
	rateLimitingCode:   handleRateLimits,
}

func (shhWire) Handler(code uint64) PacketHandler { return shhHandlers[code] }

// SameTopics reports whether two sorted topic lists are equal, nil and empty apart
// (nil is "no topic interest", empty "want nothing").
func SameTopics(a, b []Topic) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return slices.Equal(a, b)
}

// exchangeStatus sends our status body and reads the peer's concurrently, as geth does,
// and waits for its own send before returning (p2p bounds a write with its frame
// deadline). The peer's first packet must be a status of at most maxSize bytes; decode
// parses it. No status within policy.Timeout, or a light peer we refuse, is an error
// wrapping ErrHandshake, after which the caller disconnects.
func exchangeStatus(rw p2p.MsgReadWriter, body []byte, maxSize uint32, decode func([]byte) (PeerSettings, error),
	policy HandshakePolicy) (PeerSettings, error) {
	if policy.Timeout > 0 && policy.Abort == nil {
		return PeerSettings{}, fmt.Errorf("handshake: %w: a timeout needs an abort function", ErrHandshake)
	}
	sent := make(chan error, 1)
	go func() {
		sent <- rw.WriteMsg(p2p.Msg{Code: statusCode, Size: uint32(len(body)), Payload: bytes.NewReader(body)})
	}()

	type result struct {
		ps  PeerSettings
		err error
	}
	read := make(chan result, 1)
	go func() { // waited for on every path below
		ps, err := readStatus(rw, maxSize, decode)
		read <- result{ps, err}
	}()
	var timeout <-chan time.Time
	if policy.Timeout > 0 {
		t := time.NewTimer(policy.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var got result
	select {
	case got = <-read:
	case <-timeout:
		policy.Abort()
		<-read
		got.err = fmt.Errorf("handshake: %w: no status within %v", ErrHandshake, policy.Timeout)
	}
	theirs, readErr := got.ps, got.err
	if err := <-sent; err != nil && readErr == nil {
		readErr = fmt.Errorf("send status: %w", err)
	}
	if readErr != nil {
		return PeerSettings{}, readErr
	}
	if theirs.LightNode != nil && *theirs.LightNode && policy.LightNode && policy.RestrictLightPeers {
		return PeerSettings{}, fmt.Errorf("handshake: %w: both sides are light nodes", ErrHandshake)
	}
	return theirs, nil
}

func readStatus(rw p2p.MsgReadWriter, maxSize uint32, decode func([]byte) (PeerSettings, error)) (PeerSettings, error) {
	msg, err := rw.ReadMsg()
	if err != nil {
		return PeerSettings{}, fmt.Errorf("read status: %w", err)
	}
	defer msg.Discard()
	if msg.Code != statusCode {
		return PeerSettings{}, fmt.Errorf("handshake: %w: packet code %d before status", ErrHandshake, msg.Code)
	}
	if msg.Size > maxSize {
		return PeerSettings{}, fmt.Errorf("handshake: %w: status of %d bytes", ErrHandshake, msg.Size)
	}
	body := make([]byte, msg.Size)
	if _, err := io.ReadFull(msg.Payload, body); err != nil {
		return PeerSettings{}, fmt.Errorf("read status: %w", err)
	}
	return decode(body)
}
