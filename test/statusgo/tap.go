package main

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"

	"go.uber.org/zap"

	"github.com/status-im/status-go/eth-node/types"
	enstypes "github.com/status-im/status-go/eth-node/types/ens"
)

// tapNode is the types.Node the Messenger runs on: geth's node bridge with Whisper
// only, or (-waku) with Waku only, so that the Messenger uses that one, and a tap on its
// API (Whisper's and Waku's public APIs have the same methods).
//
// The tap does two things the Messenger has no hook for:
//   - it reports every envelope the Messenger posts (topic, key, ProtocolMessage
//     headers) as a "sent" event;
//   - it hands received envelopes to the Messenger ONE per RetrieveAll call, so that
//     every message in a RetrieveAll response is known to come from that one envelope
//     and can be reported with its topic, signer, sender installation and mode.
type tapNode struct {
	inner types.Node
	shh   *tapWhisper // nil with -waku
	waku  *tapWaku    // nil without -waku
	api   *tapAPI
}

var _ types.Node = (*tapNode)(nil)

func newTapNode(inner types.Node, useWaku bool, onSent func(envelopeInfo), hold func(types.NewMessage) ([]byte, bool, error)) (*tapNode, error) {
	if useWaku {
		w, err := inner.GetWaku(nil)
		if err != nil {
			return nil, err
		}
		api := &tapAPI{PublicWhisperAPI: w.PublicWakuAPI(), onSent: onSent, hold: hold, queues: map[string][]*types.Message{}}
		return &tapNode{inner: inner, waku: &tapWaku{Waku: w, api: api}, api: api}, nil
	}
	shh, err := inner.GetWhisper(nil)
	if err != nil {
		return nil, err
	}
	api := &tapAPI{PublicWhisperAPI: shh.PublicWhisperAPI(), onSent: onSent, hold: hold, queues: map[string][]*types.Message{}}
	return &tapNode{inner: inner, shh: &tapWhisper{Whisper: shh, api: api}, api: api}, nil
}

func (t *tapNode) NewENSVerifier(l *zap.Logger) enstypes.ENSVerifier {
	return t.inner.NewENSVerifier(l)
}
func (t *tapNode) GetWhisper(interface{}) (types.Whisper, error) {
	if t.shh == nil {
		return nil, errors.New("statusgo-ref runs Waku only (-waku)")
	}
	return t.shh, nil
}
func (t *tapNode) GetWaku(interface{}) (types.Waku, error) {
	if t.waku == nil {
		return nil, errors.New("statusgo-ref runs Whisper only")
	}
	return t.waku, nil
}
func (t *tapNode) AddPeer(url string) error    { return t.inner.AddPeer(url) }
func (t *tapNode) RemovePeer(url string) error { return t.inner.RemovePeer(url) }
func (t *tapNode) PeersCount() int             { return t.inner.PeersCount() }

// tapWhisper is the node's Whisper with the tapped API.
type tapWhisper struct {
	types.Whisper
	api *tapAPI
}

func (w *tapWhisper) PublicWhisperAPI() types.PublicWhisperAPI { return w.api }

// tapWaku is the node's Waku with the tapped API.
type tapWaku struct {
	types.Waku
	api *tapAPI
}

func (w *tapWaku) PublicWakuAPI() types.PublicWakuAPI { return w.api }

// tapAPI wraps the Whisper API the Messenger's transport posts and polls through.
type tapAPI struct {
	types.PublicWhisperAPI
	onSent func(envelopeInfo)
	// hold, when set and it takes the message (ok), seals the envelope and keeps it
	// instead of sending it (hold.go); it returns the envelope hash.
	hold func(req types.NewMessage) (hash []byte, ok bool, err error)

	mu       sync.Mutex
	queues   map[string][]*types.Message // filter id → envelopes not yet handed out
	budget   int                         // how many envelopes the current RetrieveAll may take
	released *types.Message              // the envelope handed out in this round
}

// Post posts as the Messenger asked and reports the envelope.
func (a *tapAPI) Post(ctx context.Context, req types.NewMessage) ([]byte, error) {
	hash, held, err := a.hold(req)
	if !held && err == nil {
		hash, err = a.PublicWhisperAPI.Post(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	info := classify(req.Payload, "")
	info.Hash, info.Topic = hex.EncodeToString(hash), hex.EncodeToString(req.Topic[:])
	if len(req.PublicKey) > 0 {
		info.Dst = hex.EncodeToString(req.PublicKey)
	}
	a.onSent(info)
	return hash, nil
}

// GetFilterMessages queues what the filter has and hands out at most one envelope per
// round (see open/take).
func (a *tapAPI) GetFilterMessages(id string) ([]*types.Message, error) {
	msgs, err := a.PublicWhisperAPI.GetFilterMessages(id)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		delete(a.queues, id) // the filter is gone
		return nil, err
	}
	q := append(a.queues[id], msgs...)
	if a.budget > 0 && len(q) > 0 {
		a.budget--
		a.released = q[0]
		a.queues[id] = q[1:]
		return []*types.Message{a.released}, nil
	}
	a.queues[id] = q
	return nil, nil
}

// open starts a round: the next RetrieveAll gets at most one envelope.
func (a *tapAPI) open() {
	a.mu.Lock()
	a.budget, a.released = 1, nil
	a.mu.Unlock()
}

// take ends a round and returns the envelope it handed out, or nil.
func (a *tapAPI) take() *types.Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.released
	a.budget, a.released = 0, nil
	return m
}
