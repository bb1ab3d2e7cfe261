package main

// The mailserver family of "statusgo-ref node": status-go v0.70.1's own WhisperMailServer
// as a server (-mailserver), and its two client request paths (shhext's
// RequestMessages, the envelope form the app used, and the Messenger's
// RequestHistoricMessages, the struct form), and mailserver sync (codes 123/124).
// Everything goes through status-go's code; only shhext's unexported makeEnvelop is
// repeated here, line for line, because the shhext service needs a whole status node.

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/status-im/status-go/eth-node/types"
	"github.com/status-im/status-go/mailserver"
	sgparams "github.com/status-im/status-go/params"
	"github.com/status-im/status-go/services/ext"
	"github.com/status-im/status-go/whisper"
)

// mailserverFlags configure the node's WhisperMailServer (-mailserver).
type mailserverFlags struct {
	enabled   bool
	password  string
	pow       float64 // request PoW; negative: the node's -minpow, as status-go's config shares it
	rateLimit int     // seconds between two requests of a peer; 0: none
	postgres  string  // PostgreSQL URI; empty: LevelDB under -data
}

// startMailserver registers status-go's WhisperMailServer on the node's Whisper, as
// status-go's node does for EnableMailServer (WhisperConfig → Init → RegisterMailServer).
func (n *node) startMailserver(f mailserverFlags, minPoW float64) error {
	if !f.enabled {
		return nil
	}
	pow := f.pow
	if pow < 0 {
		pow = minPoW
	}
	cfg := &sgparams.WhisperConfig{
		Enabled:             true,
		EnableMailServer:    true,
		DataDir:             filepath.Join(n.dataDir, "mailserver"),
		MinimumPoW:          pow,
		MailServerPassword:  f.password,
		MailServerRateLimit: f.rateLimit,
		DatabaseConfig:      sgparams.DatabaseConfig{PGConfig: sgparams.PGConfig{Enabled: f.postgres != "", URI: f.postgres}},
	}
	ms := &mailserver.WhisperMailServer{}
	if err := ms.Init(n.shh, cfg); err != nil {
		return fmt.Errorf("mailserver: %v", err)
	}
	n.shh.RegisterMailServer(ms)
	n.ms = ms
	return nil
}

// deliveries counts the envelopes status-go's Whisper made available (after its own
// processing, direct deliveries included) while a request was answered, per topic and
// hash: how the tests see what a mailserver delivered, and how often. Whisper feeds an
// envelope's event before the completion that followed it on the wire (one queue,
// processP2P), so a request op counts the events on its own subscription up to its
// completion and adds them here before it replies.
type deliveries struct {
	mu     sync.Mutex
	counts map[whisper.TopicType]map[common.Hash]int
}

func (d *deliveries) add(ev whisper.EnvelopeEvent) { d.count(ev.Topic, ev.Hash) }

func (d *deliveries) count(topic whisper.TopicType, h common.Hash) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts == nil {
		d.counts = map[whisper.TopicType]map[common.Hash]int{}
	}
	if d.counts[topic] == nil {
		d.counts[topic] = map[common.Hash]int{}
	}
	d.counts[topic][h]++
}

// eventBuffer holds a request's events until its completion: a page of up to a
// thousand envelopes, and some.
const eventBuffer = 1 << 14

func opMsDelivered(n *node, line []byte) (map[string]any, error) {
	var p struct {
		Topic string `json:"topic"`
		Reset bool   `json:"reset"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	t, err := hex.DecodeString(p.Topic)
	if err != nil || len(t) != 4 {
		return nil, fmt.Errorf("topic: want 8 hex")
	}
	d := &n.delivered
	d.mu.Lock()
	defer d.mu.Unlock()
	total, most := 0, 0
	counts := d.counts[whisper.BytesToTopic(t)]
	for _, c := range counts {
		total += c
		most = max(most, c)
	}
	if p.Reset {
		delete(d.counts, whisper.BytesToTopic(t))
	}
	return map[string]any{"total": total, "distinct": len(counts), "max": most}, nil
}

// opMsArchive hands envelopes (RLP hex) to the WhisperMailServer's Archive, the hook
// Whisper calls for every new envelope: how tests fill status-go's archive with
// envelopes created in the past.
func opMsArchive(n *node, line []byte) (map[string]any, error) {
	if n.waku != nil {
		return opMsArchiveWaku(n, line)
	}
	if n.ms == nil {
		return nil, errors.New("not a mailserver (-mailserver)")
	}
	var p struct {
		Envelopes []string `json:"envelopes"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	for i, h := range p.Envelopes {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("envelope %d: %v", i, err)
		}
		var env whisper.Envelope
		if err := rlp.DecodeBytes(b, &env); err != nil {
			return nil, fmt.Errorf("envelope %d: %v", i, err)
		}
		n.ms.Archive(&env)
	}
	return map[string]any{"archived": len(p.Envelopes)}, nil
}

// makeEnvelop is services/shhext/api_geth.go's makeEnvelop (v0.70.1), unexported there.
func makeEnvelop(payload []byte, symKey []byte, publicKey *ecdsa.PublicKey, nodeID *ecdsa.PrivateKey, pow float64, now time.Time) (*whisper.Envelope, error) {
	mp := whisper.MessageParams{
		PoW:      pow,
		Payload:  payload,
		WorkTime: 5, // shhext's defaultWorkTime
		Src:      nodeID,
	}
	if len(symKey) > 0 {
		mp.KeySym = symKey
	} else if publicKey != nil {
		mp.Dst = publicKey
	}
	message, err := whisper.NewSentMessage(&mp)
	if err != nil {
		return nil, err
	}
	return message.Wrap(&mp, now)
}

// opMsRequest is shhext's RequestMessages (services/shhext/api_geth.go, v0.70.1): the
// envelope form every app from 1.0 on used, with the payload from
// ext.MakeMessagesRequestPayload; then it waits for the completion as
// RequestMessagesSync does.
func opMsRequest(n *node, line []byte) (map[string]any, error) {
	if n.waku != nil {
		return opMsRequestWaku(n, line)
	}
	var p struct {
		Mailserver string   `json:"mailserver"`
		From       uint32   `json:"from"`
		To         uint32   `json:"to"`
		Limit      uint32   `json:"limit"`
		Cursor     string   `json:"cursor"`
		Topic      string   `json:"topic"`
		Topics     []string `json:"topics"`
		Password   *string  `json:"password"` // nil: status-offline-inbox; "": asymmetric to the mailserver's node key
		PoW        *float64 `json:"pow"`      // nil: the node's MinPow, as shhext seals
		Payload    string   `json:"payload"`  // hex: sent instead of the encoded request
		Timeout    int      `json:"timeout"`  // seconds; 0: 30
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	nd, err := enode.ParseV4(p.Mailserver)
	if err != nil {
		return nil, fmt.Errorf("mailserver: %v", err)
	}
	r := ext.MessagesRequest{MailServerPeer: p.Mailserver, From: p.From, To: p.To, Limit: p.Limit, Cursor: p.Cursor,
		Timeout: time.Duration(p.Timeout)}
	if p.Topic != "" {
		if r.Topic, err = parseTopic(p.Topic); err != nil {
			return nil, err
		}
	}
	for _, s := range p.Topics {
		t, err := parseTopic(s)
		if err != nil {
			return nil, err
		}
		r.Topics = append(r.Topics, t)
	}
	now := n.shh.GetCurrentTime()
	r.SetDefaults(now)
	if r.From > r.To {
		return nil, fmt.Errorf("Query range is invalid: from > to (%d > %d)", r.From, r.To)
	}
	var symKey []byte
	var pub *ecdsa.PublicKey
	password := "status-offline-inbox"
	if p.Password != nil {
		password = *p.Password
	}
	if password != "" {
		id, err := n.shh.AddSymKeyFromPassword(password)
		if err != nil {
			return nil, err
		}
		if symKey, err = n.shh.GetSymKey(id); err != nil {
			return nil, err
		}
	} else {
		pub = nd.Pubkey()
	}
	payload, err := ext.MakeMessagesRequestPayload(r)
	if err != nil {
		return nil, err
	}
	if p.Payload != "" {
		if payload, err = hex.DecodeString(p.Payload); err != nil {
			return nil, fmt.Errorf("payload: %v", err)
		}
	}
	pow := n.shh.MinPow()
	if p.PoW != nil {
		pow = *p.PoW
	}
	env, err := makeEnvelop(payload, symKey, pub, n.stack.Server().PrivateKey, pow, now)
	if err != nil {
		return nil, err
	}
	events := make(chan whisper.EnvelopeEvent, eventBuffer)
	sub := n.shh.SubscribeEnvelopeEvents(events)
	defer sub.Unsubscribe()
	timeout := r.Timeout * time.Second
	if err := n.shh.RequestHistoricMessagesWithTimeout(nd.ID().Bytes(), env, timeout); err != nil {
		return nil, err
	}
	resp, err := n.waitCompleted(events, func(h common.Hash) bool { return h == env.Hash() }, timeout+5*time.Second)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"request_id": hex.EncodeToString(env.Hash().Bytes()), "pow": env.PoW(),
		"cursor": hex.EncodeToString(resp.Cursor), "last_envelope": hex.EncodeToString(resp.LastEnvelopeHash.Bytes())}
	if resp.Error != nil {
		out["refused"] = resp.Error.Error() // the mailserver's ERROR= text ("error" is the harness's)
	}
	return out, nil
}

// waitCompleted waits for the completion (or expiry) of the request whose id matches,
// as ext.WaitForExpiredOrCompleted does, counting the envelopes made available before it.
func (n *node) waitCompleted(events <-chan whisper.EnvelopeEvent, match func(common.Hash) bool, timeout time.Duration) (*whisper.MailServerResponse, error) {
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-events:
			if ev.Event == whisper.EventEnvelopeAvailable {
				n.delivered.add(ev)
				continue
			}
			if !match(ev.Hash) {
				continue
			}
			switch ev.Event {
			case whisper.EventMailServerRequestCompleted:
				resp, ok := ev.Data.(*whisper.MailServerResponse)
				if !ok {
					return nil, fmt.Errorf("completion data %T", ev.Data)
				}
				return resp, nil
			case whisper.EventMailServerRequestExpired:
				return nil, errors.New("request expired: no completion from the mailserver")
			}
		case <-deadline:
			return nil, fmt.Errorf("no completion within %v", timeout)
		}
	}
}

// opMsMessengerRequest is the Messenger's own request path (Messenger.SetMailserver and
// RequestHistoricMessages → transport.SendMessagesRequest): the MessagesRequest struct
// form, limit 100, the bloom of all the Messenger's filters. It returns the next cursor.
func opMsMessengerRequest(n *node, line []byte) (map[string]any, error) {
	if n.waku != nil {
		return opMsMessengerRequestWaku(n, line)
	}
	var p struct {
		Mailserver string `json:"mailserver"`
		From       uint32 `json:"from"`
		To         uint32 `json:"to"`
		Cursor     string `json:"cursor"`
		Timeout    int    `json:"timeout"` // seconds; 0: 30
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	nd, err := enode.ParseV4(p.Mailserver)
	if err != nil {
		return nil, fmt.Errorf("mailserver: %v", err)
	}
	cursor, err := hex.DecodeString(p.Cursor)
	if err != nil {
		return nil, fmt.Errorf("cursor: %v", err)
	}
	if p.Timeout == 0 {
		p.Timeout = 30
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.Timeout)*time.Second)
	defer cancel()
	events := make(chan whisper.EnvelopeEvent, eventBuffer)
	sub := n.shh.SubscribeEnvelopeEvents(events)
	defer sub.Unsubscribe()
	id := nd.ID()
	n.m.SetMailserver(id[:])
	next, err := n.m.RequestHistoricMessages(ctx, p.From, p.To, cursor)
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	// The Messenger saw the completion on its subscription, so it is in ours too, after
	// the envelopes it followed; its request ID is the Messenger's secret: take the first.
	if _, werr := n.waitCompleted(events, func(common.Hash) bool { return true }, time.Second); werr != nil {
		return nil, fmt.Errorf("completion not seen after the Messenger's: %v", werr)
	}
	if err != nil {
		return map[string]any{"refused": err.Error()}, nil
	}
	return map[string]any{"cursor": hex.EncodeToString(next)}, nil
}

// opMsSync is shhext's SyncMessages (services/shhext/api_geth.go, v0.70.1): this
// mailserver asks another for [from, to] with codes 123/124, following the cursor when
// follow is set. The peer must be trusted for its 124s to count; SyncMessages'
// documentation leaves that to the caller (shh_markTrustedPeer), done here first.
func opMsSync(n *node, line []byte) (map[string]any, error) {
	if n.waku != nil {
		return nil, errors.New("ms_sync: Whisper only (status-go's Waku has no mailserver sync)")
	}
	var p struct {
		Mailserver string   `json:"mailserver"`
		From       uint32   `json:"from"`
		To         uint32   `json:"to"`
		Limit      uint32   `json:"limit"`
		Cursor     string   `json:"cursor"`
		Topics     []string `json:"topics"`
		Follow     bool     `json:"follow"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	nd, err := enode.ParseV4(p.Mailserver)
	if err != nil {
		return nil, fmt.Errorf("mailserver: %v", err)
	}
	id := nd.ID()
	if err := n.shh.AllowP2PMessagesFromPeer(id[:]); err != nil {
		return nil, fmt.Errorf("mark trusted: %v", err)
	}
	var topics []types.TopicType
	for _, s := range p.Topics {
		t, err := parseTopic(s)
		if err != nil {
			return nil, err
		}
		topics = append(topics, t)
	}
	var bloom []byte
	if len(topics) > 0 {
		bloom = ext.TopicsToBloom(topics...)
	} else {
		bloom = types.MakeFullNodeBloom()
	}
	cursor, err := hex.DecodeString(p.Cursor)
	if err != nil {
		return nil, fmt.Errorf("cursor: %v", err)
	}
	req := whisper.SyncMailRequest{Lower: p.From, Upper: p.To, Bloom: bloom, Limit: p.Limit, Cursor: cursor}
	rounds := 0
	for {
		resp, err := n.syncOnce(id[:], req)
		if err != nil {
			return nil, err
		}
		rounds++
		if resp.Error != "" || len(resp.Cursor) == 0 || !p.Follow {
			out := map[string]any{"cursor": hex.EncodeToString(resp.Cursor), "rounds": rounds}
			if resp.Error != "" {
				out["refused"] = resp.Error
			}
			return out, nil
		}
		req.Cursor = resp.Cursor
	}
}

// syncOnce is shhext Service.SyncMessages: one 123 request, then the 124 marked final
// (or carrying an error), within 30 s.
func (n *node) syncOnce(peer []byte, req whisper.SyncMailRequest) (whisper.SyncEventResponse, error) {
	events := make(chan whisper.EnvelopeEvent, 1024)
	sub := n.shh.SubscribeEnvelopeEvents(events)
	defer sub.Unsubscribe()
	if err := n.shh.SyncMessages(peer, req); err != nil {
		return whisper.SyncEventResponse{}, err
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Event != whisper.EventMailServerSyncFinished {
				continue
			}
			resp, ok := ev.Data.(whisper.SyncEventResponse)
			if !ok {
				return resp, fmt.Errorf("sync event data %T", ev.Data)
			}
			return resp, nil
		case <-deadline:
			return whisper.SyncEventResponse{}, errors.New("no final sync response within 30 s")
		}
	}
}

func parseTopic(s string) (types.TopicType, error) {
	b, err := hex.DecodeString(trim0x(s))
	if err != nil || len(b) != 4 {
		return types.TopicType{}, fmt.Errorf("topic %q: want 8 hex", s)
	}
	return types.BytesToTopic(b), nil
}
