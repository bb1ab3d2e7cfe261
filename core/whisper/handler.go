package whisper

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
)

// Errors for which the handler disconnects a peer, besides the acceptance rules.
var (
	// ErrPacketTooLarge: a packet exceeds the max message size (geth disconnects).
	ErrPacketTooLarge = errors.New("packet too large")
	// ErrMalformedPacket: a packet body does not decode as its code requires.
	ErrMalformedPacket = errors.New("malformed packet")
)

// status-go's message-response error codes (PROTOCOL.md §2.2): the position of the
// constants in late-2019 status-go's whisper const block, which is what its peers compare.
const (
	envelopeTimeErrorCode  = 36
	envelopeOtherErrorCode = 37
)

// msgHandler processes one packet from p. A returned error disconnects the peer.
type msgHandler func(s *Service, p *Peer, msg p2p.Msg) error

// handlers maps each packet code we act on to its handler; other codes are read and
// ignored, for forward compatibility (geth does the same).
var handlers = map[uint64]msgHandler{
	statusCode:             handleStatusAgain,
	messagesCode:           handleMessages,
	powRequirementCode:     handlePoWRequirement,
	bloomFilterExCode:      handleBloomFilter,
	batchAcknowledgedCode:  handleBatchAcknowledged,
	messageResponseCode:    handleMessageResponse,
	rateLimitingCode:       handleRateLimits,
	p2pSyncRequestCode:     handleSyncRequest,
	p2pSyncResponseCode:    handleSyncResponse,
	p2pRequestCompleteCode: handleRequestComplete,
	p2pRequestCode:         handleRequest,
	p2pMessageCode:         handleP2PMessage,
}

// Protocols returns the shh/6 protocol for a p2p.Server. Each connected peer runs on the
// goroutine p2p gives it, plus one broadcast goroutine that the handler owns and waits for.
func (s *Service) Protocols() []p2p.Protocol {
	return []p2p.Protocol{{
		Name:    ProtocolName,
		Version: uint(ProtocolVersion),
		Length:  NumberOfMessageCodes,
		Run:     s.RunPeer,
		NodeInfo: func() any {
			return map[string]any{"version": ProtocolVersionStr, "minPoW": s.MinPoW(), "maxMessageSize": s.cfg.MaxMessageSize}
		},
		PeerInfo: func(id enode.ID) any {
			if p := s.Peer(id); p != nil {
				return p.Info()
			}
			return nil
		},
	}}
}

// RunPeer serves one peer until the connection fails, the peer breaks a rule, or the
// service stops: handshake, then a broadcast goroutine and the read loop. It is the
// p2p.Protocol Run function, exported so tests can drive it over p2p.MsgPipe.
func (s *Service) RunPeer(pp *p2p.Peer, rw p2p.MsgReadWriter) (err error) {
	// A bug triggered by one peer's input disconnects that peer, not the node.
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("whisper peer handler panicked", "peer", pp.ID().TerminalString(), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("whisper handler panic: %v", r)
		}
	}()
	if s.stopped() {
		return ErrNotRunning
	}
	st := s.settings.Load()
	ours := Status{PoW: st.minPoW, Bloom: st.bloom, Confirmations: s.cfg.Confirmations}
	theirs, err := Handshake(rw, ours, HandshakePolicy{LightNode: s.cfg.LightNode, RestrictLightPeers: s.cfg.RestrictLightPeers,
		Timeout: s.cfg.HandshakeTimeout, Abort: func() { pp.Disconnect(p2p.DiscReadTimeout) }})
	if err != nil {
		s.log.Debug("whisper handshake failed", "peer", pp.ID().TerminalString(), "err", err)
		return err
	}
	ours.LightNode = s.cfg.LightNode
	p := newPeer(s, pp, rw, theirs, ours)
	if err := s.addPeer(p); err != nil {
		return err
	}
	defer s.removePeer(p)
	s.log.Debug("whisper peer up", "peer", p.id.TerminalString(), "pow", theirs.PoW, "light", theirs.LightNode)

	// Our settings may have changed between the handshake and addPeer.
	p.settingsChanged()

	quit := make(chan struct{})
	bdone := make(chan struct{})
	go func() {
		defer close(bdone)
		switch err := p.broadcastLoop(quit, s.done); {
		case errors.Is(err, ErrNotRunning):
			pp.Disconnect(p2p.DiscQuitting) // ends the read loop below
		case err != nil:
			s.log.Debug("whisper broadcast failed", "peer", p.id.TerminalString(), "err", err)
			pp.Disconnect(p2p.DiscNetworkError)
		}
	}()
	// Deferred, so that the broadcast loop also stops when the read loop panics.
	defer func() {
		close(quit)
		<-bdone
	}()
	err = s.readLoop(p)
	s.log.Debug("whisper peer down", "peer", p.id.TerminalString(), "err", err)
	return err
}

func (s *Service) readLoop(p *Peer) error {
	for {
		msg, err := p.rw.ReadMsg()
		if err != nil {
			return err
		}
		if msg.Size > s.cfg.MaxMessageSize {
			msg.Discard()
			return fmt.Errorf("packet %d of %d bytes: %w", msg.Code, msg.Size, ErrPacketTooLarge)
		}
		h := handlers[msg.Code]
		if h == nil {
			msg.Discard()
			continue
		}
		if !p.allow(msg.Size) {
			p.dropped.Add(1)
			msg.Discard()
			continue
		}
		err = h(s, p, msg)
		msg.Discard()
		if err != nil {
			return err
		}
	}
}

// readBody reads a packet's whole body into a new buffer (envelopes keep references to it).
func readBody(msg p2p.Msg) ([]byte, error) {
	body := make([]byte, msg.Size)
	if _, err := io.ReadFull(msg.Payload, body); err != nil {
		return nil, fmt.Errorf("read packet %d: %w", msg.Code, err)
	}
	return body, nil
}

func handleStatusAgain(s *Service, p *Peer, _ p2p.Msg) error {
	s.log.Debug("whisper status packet after handshake ignored", "peer", p.id.TerminalString())
	return nil
}

// decodeEnvelopeList splits an RLP list of envelopes. Any malformed element rejects the
// whole packet, as geth's reflection decoder does.
func decodeEnvelopeList(body []byte) ([]*Envelope, error) {
	content, rest, err := rlp.SplitList(body)
	if err != nil {
		return nil, fmt.Errorf("envelope list: %w: %w", ErrMalformedPacket, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("envelope list: %w: %d trailing bytes", ErrMalformedPacket, len(rest))
	}
	n, err := rlp.CountValues(content)
	if err != nil {
		return nil, fmt.Errorf("envelope list: %w: %w", ErrMalformedPacket, err)
	}
	envs := make([]*Envelope, 0, n)
	for len(content) > 0 {
		_, _, next, err := rlp.Split(content)
		if err != nil {
			return nil, fmt.Errorf("envelope list: %w: %w", ErrMalformedPacket, err)
		}
		env, err := DecodeEnvelope(content[:len(content)-len(next)])
		if err != nil {
			return nil, fmt.Errorf("envelope %d: %w", len(envs), err)
		}
		envs = append(envs, env)
		content = next
	}
	return envs, nil
}

type envelopeError struct {
	hash common.Hash
	code uint
	desc string
}

// handleMessages applies the acceptance rules to every envelope of a code-1 packet and
// pools the good ones. As in geth, the rest of the packet is still processed after a bad
// envelope, and the peer is disconnected at the end; with SoftTimeErrors, clock errors
// alone do not disconnect.
func handleMessages(s *Service, p *Peer, msg p2p.Msg) error {
	body, err := readBody(msg)
	if err != nil {
		return err
	}
	envs, err := decodeEnvelopeList(body)
	if err != nil {
		return err
	}
	var (
		fatal  error
		report []envelopeError
	)
	for _, env := range envs {
		if len(envs) > 1 && !s.pool.contains(env.hash) {
			// A new envelope must not keep the whole packet in memory (detached); one
			// alone in its packet holds little more than itself, and duplicates, most of
			// what gossip brings, are dropped without a copy.
			env = env.detached()
		}
		cached, isNew, err := s.ingest(env, p)
		if cached {
			p.received.Add(1)
		}
		if isNew {
			if err := s.publish(env, false); err != nil {
				return err
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrNotRunning):
			return err
		case errors.Is(err, ErrPoolFull):
			// Our limit, not the peer's fault: dropped and counted in Stats.PoolFull.
		case errors.Is(err, ErrTTLTooLong):
			// Our policy, not a protocol rule: refused and counted in Stats.LongTTL, and
			// reported to a peer that asked for confirmations.
			report = append(report, envelopeError{env.hash, envelopeOtherErrorCode, err.Error()})
		case IsTimeError(err):
			report = append(report, envelopeError{env.hash, envelopeTimeErrorCode, timeErrorText(err)})
			if !s.cfg.SoftTimeErrors && fatal == nil {
				fatal = err
			}
		default:
			report = append(report, envelopeError{env.hash, envelopeOtherErrorCode, err.Error()})
			if fatal == nil {
				fatal = err
			}
		}
	}
	if s.cfg.Confirmations {
		if err := sendConfirmation(p, body, report); err != nil {
			return err
		}
	}
	if fatal != nil {
		return fmt.Errorf("bad envelope from peer: %w", fatal)
	}
	return nil
}

// timeErrorText uses status-go's descriptions, which receivers match to detect clock skew.
func timeErrorText(err error) string {
	if errors.Is(err, ErrFromFuture) {
		return "envelope from future"
	}
	return "very old envelope"
}

// sendConfirmation sends status-go's message response (code 12) and batch
// acknowledgement (code 11) for one code-1 packet.
func sendConfirmation(p *Peer, body []byte, report []envelopeError) error {
	batch := crypto.Keccak256Hash(body)
	errs := make([]any, len(report))
	for i, e := range report {
		errs[i] = []any{e.hash, e.code, e.desc}
	}
	if err := p2p.Send(p.rw, messageResponseCode, []any{uint(1), []any{batch, errs}}); err != nil {
		return fmt.Errorf("send message response: %w", err)
	}
	if err := p2p.Send(p.rw, batchAcknowledgedCode, batch); err != nil {
		return fmt.Errorf("send batch acknowledgement: %w", err)
	}
	return nil
}

func handlePoWRequirement(s *Service, p *Peer, msg p2p.Msg) error {
	var bits uint64
	if err := msg.Decode(&bits); err != nil {
		return fmt.Errorf("PoW requirement: %w: %w", ErrMalformedPacket, err)
	}
	pow := math.Float64frombits(bits)
	if math.IsInf(pow, 0) || math.IsNaN(pow) || pow < 0 {
		return fmt.Errorf("PoW requirement: %w: %v", ErrMalformedPacket, pow)
	}
	p.setPoW(pow)
	return nil
}

func handleBloomFilter(s *Service, p *Peer, msg p2p.Msg) error {
	var b []byte
	if err := msg.Decode(&b); err != nil {
		return fmt.Errorf("bloom filter: %w: %w", ErrMalformedPacket, err)
	}
	if len(b) != BloomFilterSize {
		return fmt.Errorf("bloom filter of %d bytes: %w", len(b), ErrBloomSize)
	}
	p.setBloom(Bloom(b))
	return nil
}

// handleBatchAcknowledged and handleMessageResponse accept status-go's confirmations.
// Nothing above the protocol tracks them yet, so they are checked and logged; a
// malformed one is ignored, as status-go ignores them from peers it did not ask.
func handleBatchAcknowledged(s *Service, p *Peer, msg p2p.Msg) error {
	var h common.Hash
	if err := msg.Decode(&h); err != nil {
		s.log.Debug("whisper malformed batch acknowledgement", "peer", p.id.TerminalString(), "err", err)
		return nil
	}
	s.log.Debug("whisper batch acknowledged", "peer", p.id.TerminalString(), "batch", h)
	return nil
}

func handleMessageResponse(s *Service, p *Peer, msg p2p.Msg) error {
	var resp struct {
		Version  uint
		Response struct {
			Hash   common.Hash
			Errors []struct {
				Hash        common.Hash
				Code        uint
				Description string
			}
		}
	}
	if err := msg.Decode(&resp); err != nil {
		s.log.Debug("whisper malformed message response", "peer", p.id.TerminalString(), "err", err)
		return nil
	}
	for _, e := range resp.Response.Errors {
		s.log.Debug("whisper peer rejected envelope", "peer", p.id.TerminalString(), "envelope", e.Hash, "code", e.Code, "reason", e.Description)
	}
	return nil
}

func handleRateLimits(s *Service, p *Peer, msg p2p.Msg) error {
	var rl []uint64
	if err := msg.Decode(&rl); err != nil || len(rl) < 3 {
		s.log.Debug("whisper malformed rate limits", "peer", p.id.TerminalString(), "err", err)
		return nil
	}
	p.mu.Lock()
	p.rateLimits = &RateLimits{IP: rl[0], PeerID: rl[1], Topic: rl[2]}
	p.mu.Unlock()
	return nil
}

func handleRequestComplete(s *Service, p *Peer, msg p2p.Msg) error {
	if !p.Trusted() || s.cfg.Completions == nil {
		return nil
	}
	body, err := readBody(msg)
	if err != nil {
		return err
	}
	s.cfg.Completions.HandleRequestComplete(p, body)
	return nil
}

func handleRequest(s *Service, p *Peer, msg p2p.Msg) error {
	if s.cfg.Requests == nil {
		return nil // not a mailserver: ignored, as in geth
	}
	body, err := readBody(msg)
	if err != nil {
		return err
	}
	if err := s.cfg.Requests.HandleRequest(p, body); err != nil {
		return fmt.Errorf("history request: %w", err)
	}
	return nil
}

func handleSyncRequest(s *Service, p *Peer, msg p2p.Msg) error {
	if s.cfg.Syncs == nil {
		return nil // not a mailserver: ignored, as in status-go
	}
	body, err := readBody(msg)
	if err != nil {
		return err
	}
	if err := s.cfg.Syncs.HandleSyncRequest(p, body); err != nil {
		return fmt.Errorf("mailserver sync request: %w", err)
	}
	return nil
}

func handleSyncResponse(s *Service, p *Peer, msg p2p.Msg) error {
	if !p.Trusted() || s.cfg.Syncs == nil {
		return nil
	}
	body, err := readBody(msg)
	if err != nil {
		return err
	}
	s.cfg.Syncs.HandleSyncResponse(p, body)
	return nil
}

// handleP2PMessage delivers direct envelopes from a trusted peer to the subscriptions
// that allow them, skipping every acceptance rule and the pool (they are not gossiped).
// The body is one envelope (geth) or a list of them (status-go); from untrusted peers it
// is ignored.
func handleP2PMessage(s *Service, p *Peer, msg p2p.Msg) error {
	if !p.Trusted() {
		return nil
	}
	body, err := readBody(msg)
	if err != nil {
		return err
	}
	var envs []*Envelope
	content, _, err := rlp.SplitList(body)
	if err != nil {
		return fmt.Errorf("direct message: %w: %w", ErrMalformedPacket, err)
	}
	// The kind probe's error must not shadow err: the decode errors below are checked after
	// the if, and a shadowed one let a nil envelope through to the workers (a panic).
	if kind, _, _, kerr := rlp.Split(content); kerr == nil && kind == rlp.List || len(content) == 0 {
		envs, err = decodeEnvelopeList(body)
	} else {
		var env *Envelope
		env, err = DecodeEnvelope(body)
		envs = []*Envelope{env}
	}
	if err != nil {
		return fmt.Errorf("direct message: %w", err)
	}
	p.direct.Add(uint64(len(envs)))
	for _, env := range envs {
		if err := s.enqueue(delivery{env: env, p2p: true}); err != nil {
			return err
		}
	}
	return nil
}
