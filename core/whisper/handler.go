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

// handlers maps each packet code every wire shares to its handler; a wire adds its own
// (Wire.Handler); other codes are read and ignored, for forward compatibility (geth
// and status-go do the same).
var handlers = map[uint64]PacketHandler{
	statusCode:             handleStatusAgain,
	messagesCode:           handleMessages,
	batchAcknowledgedCode:  handleBatchAcknowledged,
	messageResponseCode:    handleMessageResponse,
	p2pSyncRequestCode:     handleSyncRequest,
	p2pSyncResponseCode:    handleSyncResponse,
	p2pRequestCompleteCode: handleRequestComplete,
	p2pRequestCode:         handleRequest,
	p2pMessageCode:         handleP2PMessage,
}

// Protocols returns the shh/6 protocol for a p2p.Server, with Config.Limits. Each
// connected peer runs on the goroutine p2p gives it, plus one broadcast goroutine that
// the handler owns and waits for.
func (s *Service) Protocols() []p2p.Protocol {
	return []p2p.Protocol{s.Protocol(ShhWire(), WireConfig{Limits: s.cfg.Limits})}
}

// Protocol registers wire w with the service and returns its protocol for a
// p2p.Server. Register every wire before the server starts; registering a wire of the
// same name and version again replaces its configuration.
func (s *Service) Protocol(w Wire, wc WireConfig) p2p.Protocol {
	e := s.register(w, wc)
	version := fmt.Sprintf("%d", w.Version())
	if w.Name() == ProtocolName {
		version = ProtocolVersionStr
	}
	return p2p.Protocol{
		Name:    w.Name(),
		Version: w.Version(),
		Length:  NumberOfMessageCodes,
		Run:     func(pp *p2p.Peer, rw p2p.MsgReadWriter) error { return s.runPeer(pp, rw, e) },
		NodeInfo: func() any {
			return map[string]any{"version": version, "minPoW": s.MinPoW(), "maxMessageSize": s.cfg.MaxMessageSize}
		},
		PeerInfo: func(id enode.ID) any {
			if p := s.Peer(id); p != nil {
				return p.Info()
			}
			return nil
		},
	}
}

func (s *Service) register(w Wire, wc WireConfig) *wireEntry {
	s.wireMu.Lock()
	defer s.wireMu.Unlock()
	limits := wc.Limits.withDefaults(s.cfg.MaxMessageSize)
	idx := -1
	for i, e := range s.wires {
		if e.wire.Name() == w.Name() {
			idx = i
			if e.wire.Version() == w.Version() {
				e.cfg, e.limits = wc, limits
				return e
			}
		}
	}
	if idx < 0 {
		idx = len(s.wires)
		if idx >= maxWires {
			panic(fmt.Sprintf("whisper: more than %d wires", maxWires))
		}
	}
	e := &wireEntry{wire: w, idx: idx, cfg: wc, limits: limits}
	s.wires = append(s.wires, e)
	return e
}

// RunPeer serves one shh/6 peer with Config.Limits: the p2p.Protocol Run function of
// Protocols, exported so tests can drive it over p2p.MsgPipe.
func (s *Service) RunPeer(pp *p2p.Peer, rw p2p.MsgReadWriter) error {
	return s.RunPeerOn(ShhWire(), WireConfig{Limits: s.cfg.Limits}, pp, rw)
}

// RunPeerOn serves one peer of wire w (registering w as Protocol does), for tests that
// drive a wire over p2p.MsgPipe.
func (s *Service) RunPeerOn(w Wire, wc WireConfig, pp *p2p.Peer, rw p2p.MsgReadWriter) error {
	return s.runPeer(pp, rw, s.register(w, wc))
}

// runPeer serves one peer until the connection fails, the peer breaks a rule, or the
// service stops: handshake, then a broadcast goroutine and the read loop.
func (s *Service) runPeer(pp *p2p.Peer, rw p2p.MsgReadWriter, we *wireEntry) (err error) {
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
	w := we.wire
	ours := s.advert(w, we.limits)
	body, err := w.EncodeStatus(ours)
	if err != nil {
		return err
	}
	theirs, err := exchangeStatus(rw, body, w.MaxStatusSize(), w.DecodeStatus, HandshakePolicy{LightNode: s.cfg.LightNode,
		RestrictLightPeers: s.cfg.RestrictLightPeers, Timeout: s.cfg.HandshakeTimeout, Abort: func() { pp.Disconnect(p2p.DiscReadTimeout) }})
	if err != nil {
		s.log.Debug("whisper handshake failed", "peer", pp.ID().TerminalString(), "protocol", w.Name(), "err", err)
		return err
	}
	p := newPeer(s, pp, rw, we, theirs, ours)
	if err := s.addPeer(p); err != nil {
		return err
	}
	defer s.removePeer(p)
	s.log.Debug("whisper peer up", "peer", p.id.TerminalString(), "protocol", p.Protocol())

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
	err = p.readLoop()
	s.log.Debug("whisper peer down", "peer", p.id.TerminalString(), "err", err)
	return err
}

func (p *Peer) readLoop() error {
	s := p.s
	for {
		msg, err := p.rw.ReadMsg()
		if err != nil {
			return err
		}
		if msg.Size > s.cfg.MaxMessageSize {
			msg.Discard()
			return fmt.Errorf("packet %d of %d bytes: %w", msg.Code, msg.Size, ErrPacketTooLarge)
		}
		h, settings := handlers[msg.Code], false
		if h == nil {
			h, settings = p.wire.Handler(msg.Code), true
		}
		if h == nil {
			msg.Discard()
			continue
		}
		if !p.allow(msg.Size, settings) {
			p.dropped.Add(1)
			msg.Discard()
			continue
		}
		err = h(p, msg)
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

func handleStatusAgain(p *Peer, _ p2p.Msg) error {
	s := p.s
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
// alone do not disconnect, and a lenient wire (Waku) disconnects for none.
func handleMessages(p *Peer, msg p2p.Msg) error {
	s := p.s
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
	timeCode, otherCode := p.wire.EnvelopeErrorCodes()
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
		if err != nil && !errors.Is(err, ErrNotRunning) && !errors.Is(err, ErrPoolFull) {
			p.rejected.Add(1)
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
			report = append(report, envelopeError{env.hash, otherCode, err.Error()})
		case IsTimeError(err):
			report = append(report, envelopeError{env.hash, timeCode, timeErrorText(err)})
			if !s.cfg.SoftTimeErrors && fatal == nil {
				fatal = err
			}
		default:
			report = append(report, envelopeError{env.hash, otherCode, err.Error()})
			if fatal == nil {
				fatal = err
			}
		}
	}
	if p.wire.LenientEnvelopes() {
		fatal = nil
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
	w := countingWriter{p}
	if err := p2p.Send(w, messageResponseCode, []any{uint(1), []any{batch, errs}}); err != nil {
		return fmt.Errorf("send message response: %w", err)
	}
	if err := p2p.Send(w, batchAcknowledgedCode, batch); err != nil {
		return fmt.Errorf("send batch acknowledgement: %w", err)
	}
	return nil
}

func handlePoWRequirement(p *Peer, msg p2p.Msg) error {
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

func handleBloomFilter(p *Peer, msg p2p.Msg) error {
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
func handleBatchAcknowledged(p *Peer, msg p2p.Msg) error {
	s := p.s
	var h common.Hash
	if err := msg.Decode(&h); err != nil {
		s.log.Debug("whisper malformed batch acknowledgement", "peer", p.id.TerminalString(), "err", err)
		return nil
	}
	s.log.Debug("whisper batch acknowledged", "peer", p.id.TerminalString(), "batch", h)
	return nil
}

func handleMessageResponse(p *Peer, msg p2p.Msg) error {
	s := p.s
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

func handleRateLimits(p *Peer, msg p2p.Msg) error {
	var rl []uint64
	if err := msg.Decode(&rl); err != nil || len(rl) < 3 {
		p.s.log.Debug("whisper malformed rate limits", "peer", p.id.TerminalString(), "err", err)
		return nil
	}
	p.Apply(PeerSettings{PacketLimits: &RateLimits{IP: rl[0], PeerID: rl[1], Topic: rl[2]}})
	return nil
}

func handleRequestComplete(p *Peer, msg p2p.Msg) error {
	s := p.s
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

func handleRequest(p *Peer, msg p2p.Msg) error {
	s := p.s
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

func handleSyncRequest(p *Peer, msg p2p.Msg) error {
	s := p.s
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

func handleSyncResponse(p *Peer, msg p2p.Msg) error {
	s := p.s
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
func handleP2PMessage(p *Peer, msg p2p.Msg) error {
	s := p.s
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
