package waku

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/p2p"

	"github.com/statusgate/statusgate/core/whisper"
)

// Wire returns the Waku wire of version v (V1 or V0) for whisper.Service.Protocol.
func Wire(v uint) whisper.Wire { return wire{v: v} }

type wire struct{ v uint }

var _ whisper.Wire = wire{}

func (w wire) Name() string         { return Name }
func (w wire) Version() uint        { return w.v }
func (wire) MaxStatusSize() uint32  { return maxStatusSize }
func (wire) TopicInterest() bool    { return true }
func (wire) LenientEnvelopes() bool { return true }
func (wire) EnvelopeErrorCodes() (uint, uint) {
	return envelopeTimeErrorCode, envelopeOtherErrorCode
}

// options is the option list of our advert a, as status-go's StatusOptionsFromHost
// builds it: every option, and the topic interest instead of the bloom filter when we
// have one.
func options(a whisper.Advert) Options {
	o := Options{PoW: &a.PoW, LightNode: &a.LightNode, Confirmations: &a.Confirmations,
		PacketLimits: &a.PacketLimits, ByteLimits: &a.ByteLimits}
	if a.Topics != nil {
		o.TopicInterest, o.HasTopics = a.Topics, true
	} else {
		o.BloomFilter = &a.Bloom
	}
	return o
}

func (w wire) EncodeStatus(ours whisper.Advert) ([]byte, error) {
	return EncodeStatus(options(ours), w.v)
}

// DecodeStatus parses the peer's handshake and fills in what it left out as status-go
// does (StatusOptions.WithDefaults): PoW 0.001, not light, no confirmations, no rate
// limits, a full bloom filter (unless it gave a topic interest).
func (w wire) DecodeStatus(body []byte) (whisper.PeerSettings, error) {
	o, err := DecodeStatus(body, w.v)
	if err != nil {
		return whisper.PeerSettings{}, fmt.Errorf("waku/%d status: %w: %w", w.v, whisper.ErrHandshake, err)
	}
	if o.PoW == nil {
		pow := DefaultMinPoW
		o.PoW = &pow
	}
	if o.LightNode == nil {
		o.LightNode = new(bool)
	}
	if o.Confirmations == nil {
		o.Confirmations = new(bool)
	}
	if o.PacketLimits == nil {
		o.PacketLimits = &whisper.RateLimits{}
	}
	if o.ByteLimits == nil {
		o.ByteLimits = &whisper.RateLimits{}
	}
	if o.BloomFilter == nil {
		full := whisper.FullBloom()
		o.BloomFilter = &full
	}
	return o.settings(), nil
}

// settings converts the options into what the peer asks of us.
func (o Options) settings() whisper.PeerSettings {
	return whisper.PeerSettings{PoW: o.PoW, Bloom: o.BloomFilter, Topics: o.TopicInterest, HasTopics: o.HasTopics,
		LightNode: o.LightNode, Confirmations: o.Confirmations, PacketLimits: o.PacketLimits, ByteLimits: o.ByteLimits}
}

// SendUpdate sends a Status Update with what changed: the PoW requirement, and the topic
// interest or the bloom filter, whichever we advertise now.
func (w wire) SendUpdate(mw p2p.MsgWriter, sent, now whisper.Advert) error {
	var o Options
	changed := false
	if now.PoW != sent.PoW {
		o.PoW, changed = &now.PoW, true
	}
	switch {
	case now.Topics != nil && !whisper.SameTopics(now.Topics, sent.Topics):
		o.TopicInterest, o.HasTopics, changed = now.Topics, true, true
	case now.Topics == nil && (sent.Topics != nil || now.Bloom != sent.Bloom):
		o.BloomFilter, changed = &now.Bloom, true
	}
	if !changed {
		return nil
	}
	body, err := EncodeOptions(o, w.v)
	if err != nil {
		return err
	}
	if err := mw.WriteMsg(p2p.Msg{Code: statusUpdateCode, Size: uint32(len(body)), Payload: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("send status update: %w", err)
	}
	return nil
}

func (w wire) Handler(code uint64) whisper.PacketHandler {
	if code == statusUpdateCode {
		return w.handleStatusUpdate
	}
	return nil
}

// handleStatusUpdate applies a peer's changed options (code 22). A malformed update
// disconnects the peer, as a malformed PoW or bloom packet does on shh/6 (status-go logs
// it and keeps the peer).
func (w wire) handleStatusUpdate(p *whisper.Peer, msg p2p.Msg) error {
	body := make([]byte, msg.Size)
	if _, err := io.ReadFull(msg.Payload, body); err != nil {
		return fmt.Errorf("read status update: %w", err)
	}
	o, err := DecodeOptions(body, w.v)
	if err != nil {
		return fmt.Errorf("status update: %w: %w", whisper.ErrMalformedPacket, err)
	}
	if o.LightNode != nil && *o.LightNode && p.Service().RefusesLightPeers() {
		return fmt.Errorf("status update: %w", ErrLightPeers)
	}
	p.Apply(o.settings())
	return nil
}
