package main

// Waku mode of "statusgo-ref node" (-waku): status-go v0.70.1's own Waku (waku.New,
// advertising waku/0 and waku/1) instead of Whisper, as a status-go node with
// WakuConfig.Enabled builds it (node/geth_node.go createWakuService): its rate limiter
// (RegisterRateLimiter with the metrics and drop-peer handlers), its WakuMailServer, its
// light-client empty bloom. The Messenger finds no Whisper and uses Waku. The
// envelope events of Waku's feed (sent to / received from which peer) are reported, and
// its Prometheus counters can be read (op metrics).

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/event"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/status-im/status-go/mailserver"
	sgparams "github.com/status-im/status-go/params"
	"github.com/status-im/status-go/services/ext"
	"github.com/status-im/status-go/waku"
	wakucommon "github.com/status-im/status-go/waku/common"
	"github.com/status-im/status-go/whisper"
)

// wakuFlags configure -waku.
type wakuFlags struct {
	enabled       bool
	light         bool  // WakuConfig.LightClient: starts with an empty bloom filter
	full          bool  // WakuConfig.FullNode: a full bloom filter, no topic interest
	bloomMode     bool  // WakuConfig.BloomFilterMode: a bloom filter instead of topic interest
	confirmations bool  // waku.Config.EnableConfirmations
	packetLimit   int64 // packets per second per peer and per IP (0: no rate limiter)
	bytesLimit    int64 // bytes per second per peer and per IP
	tolerance     int64 // RateLimitTolerance: exceeds before a peer is dropped (0: never)
}

func (f *wakuFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&f.enabled, "waku", false, "run status-go's Waku instead of Whisper (waku.New; waku/0 and waku/1)")
	fs.BoolVar(&f.light, "waku-light", false, "WakuConfig.LightClient")
	fs.BoolVar(&f.full, "waku-full", false, "WakuConfig.FullNode")
	fs.BoolVar(&f.bloomMode, "waku-bloom", false, "WakuConfig.BloomFilterMode (a bloom filter instead of topic interest)")
	fs.BoolVar(&f.confirmations, "waku-confirmations", false, "send message confirmations (code 12)")
	fs.Int64Var(&f.packetLimit, "waku-packet-limit", 0, "rate limiter: packets per second per peer ID and per IP (0: no limiter)")
	fs.Int64Var(&f.bytesLimit, "waku-bytes-limit", 0, "rate limiter: bytes per second per peer ID and per IP")
	fs.Int64Var(&f.tolerance, "waku-rate-tolerance", 0, "RateLimitTolerance: exceeded limits before the peer is dropped (0: never)")
}

// wakuNode is the node's Waku, its mailserver and its event subscription.
type wakuNode struct {
	w      *waku.Waku
	ms     *mailserver.WakuMailServer
	events chan wakucommon.EnvelopeEvent
	sub    event.Subscription
}

// startWaku builds Waku as createWakuService does and registers it on stack.
func (n *node) startWaku(f nodeFlags, stack *gethnode.Node) error {
	cfg := &waku.Config{
		MaxMessageSize:      wakucommon.DefaultMaxMessageSize,
		MinimumAcceptedPoW:  f.minPoW,
		LightClient:         f.waku.light,
		FullNode:            f.waku.full,
		BloomFilterMode:     f.waku.bloomMode,
		EnableConfirmations: f.waku.confirmations,
	}
	w := waku.New(cfg, n.log)
	if f.waku.packetLimit > 0 || f.waku.bytesLimit > 0 {
		w.RegisterRateLimiter(wakucommon.NewPeerRateLimiter(&wakucommon.PeerRateLimiterConfig{
			PacketLimitPerSecIP: f.waku.packetLimit, PacketLimitPerSecPeerID: f.waku.packetLimit,
			BytesLimitPerSecIP: f.waku.bytesLimit, BytesLimitPerSecPeerID: f.waku.bytesLimit,
		}, &whisper.MetricsRateLimiterHandler{}, &whisper.DropPeerRateLimiterHandler{Tolerance: f.waku.tolerance}))
	}
	wn := &wakuNode{w: w, events: make(chan wakucommon.EnvelopeEvent, 4096)}
	if f.mailserver.enabled {
		pow := f.mailserver.pow
		if pow < 0 {
			pow = f.minPoW
		}
		ms := &mailserver.WakuMailServer{}
		if err := ms.Init(w, &sgparams.WakuConfig{
			Enabled:             true,
			EnableMailServer:    true,
			DataDir:             filepath.Join(n.dataDir, "mailserver"),
			MinimumPoW:          pow,
			MailServerPassword:  f.mailserver.password,
			MailServerRateLimit: f.mailserver.rateLimit,
			DatabaseConfig:      sgparams.DatabaseConfig{PGConfig: sgparams.PGConfig{Enabled: f.mailserver.postgres != "", URI: f.mailserver.postgres}},
		}); err != nil {
			return fmt.Errorf("waku mailserver: %v", err)
		}
		w.RegisterMailServer(ms)
		wn.ms = ms
	}
	if f.waku.light {
		if err := w.SetBloomFilter(make([]byte, 64)); err != nil {
			return fmt.Errorf("waku light client: %v", err)
		}
	}
	wn.sub = w.SubscribeEnvelopeEvents(wn.events)
	if err := stack.Register(func(*gethnode.ServiceContext) (gethnode.Service, error) { return w, nil }); err != nil {
		return fmt.Errorf("register waku: %v", err)
	}
	n.waku = wn
	return nil
}

// wakuEvents reports Waku's envelope events with a peer (sent to it, received from it)
// as "waku" lines until quit.
func (n *node) wakuEvents(quit <-chan struct{}) {
	defer n.waku.sub.Unsubscribe()
	for {
		select {
		case <-quit:
			return
		case ev := <-n.waku.events:
			if ev.Event != wakucommon.EventEnvelopeSent && ev.Event != wakucommon.EventEnvelopeReceived {
				continue
			}
			n.out.emit(map[string]any{"type": "waku", "event": string(ev.Event), "hash": hex.EncodeToString(ev.Hash[:]),
				"topic": hex.EncodeToString(ev.Topic[:]), "peer": ev.Peer.String()})
		}
	}
}

// opPost seals an envelope with status-go's Waku code (wakucommon.NewSentMessage and
// Wrap, as PublicWakuAPI.Post does) and sends it: symmetric with the key of password,
// on topic, at PoW pow.
func opPost(n *node, line []byte) (map[string]any, error) {
	if n.waku == nil {
		return nil, errors.New("post: Waku only (-waku)")
	}
	var p struct {
		Topic    string  `json:"topic"`
		Password string  `json:"password"`
		Payload  string  `json:"payload"`
		PoW      float64 `json:"pow"`
		TTL      uint32  `json:"ttl"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	topic, err := parseTopic(p.Topic)
	if err != nil {
		return nil, err
	}
	payload, err := hex.DecodeString(p.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload: %v", err)
	}
	id, err := n.waku.w.AddSymKeyFromPassword(p.Password)
	if err != nil {
		return nil, err
	}
	key, err := n.waku.w.GetSymKey(id)
	if err != nil {
		return nil, err
	}
	if p.TTL == 0 {
		p.TTL = 15
	}
	mp := &wakucommon.MessageParams{TTL: p.TTL, KeySym: key, Topic: wakucommon.TopicType(topic), Payload: payload, PoW: p.PoW, WorkTime: 10}
	msg, err := wakucommon.NewSentMessage(mp)
	if err != nil {
		return nil, err
	}
	env, err := msg.Wrap(mp, n.waku.w.CurrentTime())
	if err != nil {
		return nil, err
	}
	if err := n.waku.w.Send(env); err != nil {
		return nil, err
	}
	h := env.Hash()
	return map[string]any{"hash": hex.EncodeToString(h[:]), "pow": env.PoW()}, nil
}

// opMetrics returns status-go's Waku Prometheus counters (waku_*), keyed by name and
// labels: "waku_rate_limits_exceeded_total{type=peer_id}".
func opMetrics(n *node, _ []byte) (map[string]any, error) {
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, fam := range families {
		if !strings.HasPrefix(fam.GetName(), "waku_") {
			continue
		}
		for _, m := range fam.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			name := fam.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return map[string]any{"metrics": out}, nil
}

func (n *node) setPoWWaku(pow float64) error { return n.waku.w.SetMinimumPoW(pow, true) }

// opMsArchiveWaku is opMsArchive on the WakuMailServer.
func opMsArchiveWaku(n *node, line []byte) (map[string]any, error) {
	if n.waku.ms == nil {
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
		var env wakucommon.Envelope
		if err := rlp.DecodeBytes(b, &env); err != nil {
			return nil, fmt.Errorf("envelope %d: %v", i, err)
		}
		n.waku.ms.Archive(&env)
	}
	return map[string]any{"archived": len(p.Envelopes)}, nil
}

// makeEnvelopWaku is services/wakuext/api.go's makeEnvelop (v0.70.1), unexported there.
func makeEnvelopWaku(payload []byte, symKey []byte, publicKey *ecdsa.PublicKey, nodeID *ecdsa.PrivateKey, pow float64, now time.Time) (*wakucommon.Envelope, error) {
	mp := wakucommon.MessageParams{PoW: pow, Payload: payload, WorkTime: 5, Src: nodeID}
	if len(symKey) > 0 {
		mp.KeySym = symKey
	} else if publicKey != nil {
		mp.Dst = publicKey
	}
	message, err := wakucommon.NewSentMessage(&mp)
	if err != nil {
		return nil, err
	}
	return message.Wrap(&mp, now)
}

// opMsRequestWaku is opMsRequest over Waku: wakuext's RequestMessages (the envelope
// form, ext.MakeMessagesRequestPayload) and the wait for its completion.
func opMsRequestWaku(n *node, line []byte) (map[string]any, error) {
	var p struct {
		Mailserver string   `json:"mailserver"`
		From       uint32   `json:"from"`
		To         uint32   `json:"to"`
		Limit      uint32   `json:"limit"`
		Cursor     string   `json:"cursor"`
		Topic      string   `json:"topic"`
		Topics     []string `json:"topics"`
		Password   *string  `json:"password"`
		PoW        *float64 `json:"pow"`
		Payload    string   `json:"payload"`
		Timeout    int      `json:"timeout"`
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
	w := n.waku.w
	now := w.CurrentTime()
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
		id, err := w.AddSymKeyFromPassword(password)
		if err != nil {
			return nil, err
		}
		if symKey, err = w.GetSymKey(id); err != nil {
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
	pow := w.MinPow()
	if p.PoW != nil {
		pow = *p.PoW
	}
	env, err := makeEnvelopWaku(payload, symKey, pub, n.stack.Server().PrivateKey, pow, now)
	if err != nil {
		return nil, err
	}
	events := make(chan wakucommon.EnvelopeEvent, eventBuffer)
	sub := w.SubscribeEnvelopeEvents(events)
	defer sub.Unsubscribe()
	timeout := r.Timeout * time.Second
	if err := w.RequestHistoricMessagesWithTimeout(nd.ID().Bytes(), env, timeout); err != nil {
		return nil, err
	}
	resp, err := n.waitCompletedWaku(events, func(h common.Hash) bool { return h == env.Hash() }, timeout+5*time.Second)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"request_id": hex.EncodeToString(env.Hash().Bytes()), "pow": env.PoW(),
		"cursor": hex.EncodeToString(resp.Cursor), "last_envelope": hex.EncodeToString(resp.LastEnvelopeHash.Bytes())}
	if resp.Error != nil {
		out["refused"] = resp.Error.Error()
	}
	return out, nil
}

// waitCompletedWaku is waitCompleted over Waku's events.
func (n *node) waitCompletedWaku(events <-chan wakucommon.EnvelopeEvent, match func(common.Hash) bool, timeout time.Duration) (*waku.MailServerResponse, error) {
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-events:
			if ev.Event == wakucommon.EventEnvelopeAvailable {
				n.delivered.count(whisper.TopicType(ev.Topic), ev.Hash)
				continue
			}
			if !match(ev.Hash) {
				continue
			}
			switch ev.Event {
			case wakucommon.EventMailServerRequestCompleted:
				resp, ok := ev.Data.(*waku.MailServerResponse)
				if !ok {
					return nil, fmt.Errorf("completion data %T", ev.Data)
				}
				return resp, nil
			case wakucommon.EventMailServerRequestExpired:
				return nil, errors.New("request expired: no completion from the mailserver")
			}
		case <-deadline:
			return nil, fmt.Errorf("no completion within %v", timeout)
		}
	}
}

// opMsMessengerRequestWaku is opMsMessengerRequest over Waku (the Messenger's
// transport sends Waku's MessagesRequest).
func opMsMessengerRequestWaku(n *node, line []byte) (map[string]any, error) {
	var p struct {
		Mailserver string `json:"mailserver"`
		From       uint32 `json:"from"`
		To         uint32 `json:"to"`
		Cursor     string `json:"cursor"`
		Timeout    int    `json:"timeout"`
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
	events := make(chan wakucommon.EnvelopeEvent, eventBuffer)
	sub := n.waku.w.SubscribeEnvelopeEvents(events)
	defer sub.Unsubscribe()
	id := nd.ID()
	n.m.SetMailserver(id[:])
	next, err := n.m.RequestHistoricMessages(ctx, p.From, p.To, cursor)
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	if _, werr := n.waitCompletedWaku(events, func(common.Hash) bool { return true }, time.Second); werr != nil {
		return nil, fmt.Errorf("completion not seen after the Messenger's: %v", werr)
	}
	if err != nil {
		return map[string]any{"refused": err.Error()}, nil
	}
	return map[string]any{"cursor": hex.EncodeToString(next)}, nil
}
