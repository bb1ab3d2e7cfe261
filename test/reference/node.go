package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/whisper/whisperv6"
)

const (
	// pollInterval is how often installed filters are drained.
	pollInterval = 50 * time.Millisecond
	// trustRetry bounds how long a "trusted" add_peer keeps trying to mark
	// the peer trusted: whisper only knows a peer after its handshake.
	trustRetry = 10 * time.Second
	// stopTimeout bounds the wait for whisper to stop at exit.
	stopTimeout = time.Second
)

// nodeRequest is one node-mode request: serve's fields plus an id and the
// node-only fields.
type nodeRequest struct {
	request
	ID      json.RawMessage `json:"id"`
	Enode   string          `json:"enode"`
	Trusted bool            `json:"trusted"`
	Bloom   string          `json:"bloom"`

	// request_history
	Peer     string `json:"peer"`
	Password string `json:"password"`
	Lower    uint32 `json:"lower"`
	Upper    uint32 `json:"upper"`

	// discv5
	Bootnodes []string `json:"bootnodes"`
	Period    int64    `json:"period_ms"`
	MaxDial   int      `json:"max_dial"`
}

// lineWriter writes whole JSON lines to stdout, one writer at a time.
type lineWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func (lw *lineWriter) emit(v map[string]any) {
	line, err := json.Marshal(v)
	if err != nil {
		line, _ = json.Marshal(map[string]any{"type": v["type"], "id": v["id"], "error": fmt.Sprintf("encode: %v", err)})
	}
	line = append(line, '\n')
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return
	}
	if _, err := lw.w.Write(line); err != nil {
		lw.err = err
		return
	}
	lw.err = lw.w.Flush()
}

// node is a running p2p server with whisper v6 on it.
type node struct {
	srv  *p2p.Server
	w    *whisperv6.Whisper
	out  *lineWriter
	mail *countingMailServer // nil unless -mailserver-password is given
	disc *refDiscv5          // nil until discv5_start

	mu      sync.Mutex
	filters map[string]*whisperv6.Filter
	trusted map[enode.ID]time.Time // peers to mark trusted, with a deadline
}

// runNode parses the node flags, starts the node and runs the JSON-lines
// loop until in reaches EOF.
func runNode(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	keyHex := fs.String("key", "", "node private key (64 hex); random if empty")
	port := fs.Int("port", 0, "TCP listen port on 127.0.0.1 (0 = random)")
	minPoW := fs.Float64("minpow", 0.001, "whisper MinimumAcceptedPOW")
	mailPassword := fs.String("mailserver-password", "", "run geth's WMailServer with this password (empty = no mailserver)")
	mailPoW := fs.Float64("mailserver-pow", 0, "the mailserver's minimum PoW for requests (0 = no check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		return err
	}
	if *keyHex != "" {
		if key, err = decodePriv("key", *keyHex); err != nil {
			return err
		}
	}
	cfg := whisperv6.DefaultConfig
	cfg.MinimumAcceptedPOW = *minPoW
	w := whisperv6.StandaloneWhisperService(&cfg)
	srv := &p2p.Server{Config: p2p.Config{
		PrivateKey:  key,
		MaxPeers:    50,
		Name:        "whisper-ref",
		ListenAddr:  fmt.Sprintf("127.0.0.1:%d", *port),
		NoDiscovery: true,
		Protocols:   w.Protocols(),
	}}
	n := &node{
		srv:     srv,
		w:       w,
		out:     &lineWriter{w: bufio.NewWriter(out)},
		filters: make(map[string]*whisperv6.Filter),
		trusted: make(map[enode.ID]time.Time),
	}
	if *mailPassword != "" {
		// Registered before Start, as geth's node does: RegisterServer is
		// an unsynchronised field write read by every peer loop.
		if n.mail, err = newMailServer(w, *mailPassword, *mailPoW); err != nil {
			return err
		}
		defer n.mail.close()
		w.RegisterServer(n.mail)
	}
	events := make(chan *p2p.PeerEvent, 256)
	sub := srv.SubscribeEvents(events)
	defer sub.Unsubscribe()

	if err := w.Start(); err != nil {
		return fmt.Errorf("start whisper: %v", err)
	}
	if err := srv.Start(); err != nil {
		w.Stop()
		return fmt.Errorf("start p2p server: %v", err)
	}

	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.peerEvents(events, quit) }()
	go func() { defer wg.Done(); n.poll(quit) }()

	n.out.emit(map[string]any{"type": "ready", "enode": srv.Self().URLv4(), "id": srv.Self().ID().String()})

	r := bufio.NewReaderSize(in, 1<<20)
	var readErr error
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			n.out.emit(n.handle(line))
		}
		if err != nil {
			if err != io.EOF {
				readErr = fmt.Errorf("read request: %w", err)
			}
			break
		}
	}
	n.mu.Lock()
	disc := n.disc
	n.mu.Unlock()
	if disc != nil {
		disc.close()
	}
	srv.Stop()
	// Whisper.Stop waits for the goroutines that SetMinimumPoW and
	// SetBloomFilter start, which sleep for the 10 s sync allowance; do not
	// wait for them.
	stopped := make(chan struct{})
	go func() { w.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopTimeout):
	}
	close(quit)
	wg.Wait()
	n.pollOnce() // deliver anything that arrived during shutdown
	if readErr != nil {
		return readErr
	}
	n.out.mu.Lock()
	defer n.out.mu.Unlock()
	if n.out.err != nil {
		return fmt.Errorf("write: %v", n.out.err)
	}
	return nil
}

// handle answers one request line; it never panics.
func (n *node) handle(line []byte) (reply map[string]any) {
	var req nodeRequest
	defer func() {
		if p := recover(); p != nil {
			reply = map[string]any{"error": fmt.Sprintf("panic in geth: %v", p)}
		}
		reply["type"] = "reply"
		if len(req.ID) > 0 {
			reply["id"] = req.ID
		} else {
			reply["id"] = nil
		}
	}()
	if err := json.Unmarshal(line, &req); err != nil {
		req.ID = nil
		// Recover the id if only other fields were malformed.
		var idOnly struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(line, &idOnly) == nil {
			req.ID = idOnly.ID
		}
		return map[string]any{"error": fmt.Sprintf("bad request: %v", err)}
	}
	var err error
	switch req.Op {
	case "add_peer":
		reply, err = n.addPeer(&req)
	case "peers":
		reply = n.peers()
	case "subscribe":
		reply, err = n.subscribe(&req)
	case "post":
		reply, err = n.post(&req)
	case "set_pow":
		err = n.w.SetMinimumPoW(req.PoW)
	case "set_bloom":
		var b []byte
		if b, err = decodeFixed("bloom", req.Bloom, whisperv6.BloomFilterSize); err == nil {
			err = n.w.SetBloomFilter(b)
		}
	case "send_raw":
		var env *whisperv6.Envelope
		if env, err = decodeEnvelope(req.Envelope); err == nil {
			err = n.w.Send(env)
		}
	case "mailserver_stats":
		reply, err = n.mailserverStats()
	case "request_history":
		reply, err = n.requestHistory(&req)
	case "discv5_start":
		reply, err = n.discv5Start(&req)
	case "register_topic", "unregister_topic", "search_topic", "stop_search", "discv5_stats":
		reply, err = n.discv5Op(&req)
	case "":
		err = errors.New("missing op")
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	if reply == nil {
		reply = map[string]any{"ok": true}
	}
	return reply
}

func (n *node) addPeer(req *nodeRequest) (map[string]any, error) {
	nd, err := enode.ParseV4(req.Enode)
	if err != nil {
		return nil, fmt.Errorf("enode: %v", err)
	}
	if req.Trusted {
		n.mu.Lock()
		n.trusted[nd.ID()] = time.Now().Add(trustRetry)
		n.mu.Unlock()
	}
	n.srv.AddPeer(nd)
	return map[string]any{"ok": true}, nil
}

type peerInfo struct {
	ID    string `json:"id"`
	Enode string `json:"enode"`
}

func (n *node) peers() map[string]any {
	list := []peerInfo{}
	for _, p := range n.srv.Peers() {
		list = append(list, peerInfo{ID: p.ID().String(), Enode: p.Node().URLv4()})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return map[string]any{"peers": list}
}

func (n *node) subscribe(req *nodeRequest) (map[string]any, error) {
	topic, err := decodeTopic(req.Topic)
	if err != nil {
		return nil, err
	}
	f := &whisperv6.Filter{
		Topics:   [][]byte{topic[:]},
		PoW:      req.PoW,
		AllowP2P: true,
	}
	switch {
	case req.SymKey != "" && req.Priv != "":
		return nil, errors.New("give sym_key or priv, not both")
	case req.SymKey != "":
		if f.KeySym, err = decodeHex("sym_key", req.SymKey); err != nil {
			return nil, err
		}
	case req.Priv != "":
		if f.KeyAsym, err = decodePriv("priv", req.Priv); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("missing sym_key or priv")
	}
	id, err := n.w.Subscribe(f)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %v", err)
	}
	n.mu.Lock()
	n.filters[id] = f
	n.mu.Unlock()
	return map[string]any{"filter": id}, nil
}

func (n *node) post(req *nodeRequest) (map[string]any, error) {
	sealed, err := (&server{}).seal(&req.request)
	if err != nil {
		return nil, err
	}
	sr := sealed.(sealReply)
	env, err := decodeEnvelope(sr.Envelope)
	if err != nil {
		return nil, err
	}
	if err := n.w.Send(env); err != nil {
		return nil, fmt.Errorf("send: %v", err)
	}
	return map[string]any{"hash": sr.Hash, "envelope": sr.Envelope}, nil
}

// poll drains every installed filter every pollInterval until quit.
func (n *node) poll(quit <-chan struct{}) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
			n.pollOnce()
			n.markTrusted()
		}
	}
}

func (n *node) pollOnce() {
	n.mu.Lock()
	ids := make([]string, 0, len(n.filters))
	for id := range n.filters {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		n.mu.Lock()
		f := n.filters[id]
		n.mu.Unlock()
		msgs := f.Retrieve()
		sort.Slice(msgs, func(i, j int) bool { return msgs[i].Sent < msgs[j].Sent })
		for _, m := range msgs {
			signer := ""
			if m.Src != nil {
				signer = hex.EncodeToString(crypto.FromECDSAPub(m.Src))
			}
			n.out.emit(map[string]any{
				"type":    "message",
				"filter":  id,
				"payload": hex.EncodeToString(m.Payload),
				"signer":  signer,
				"topic":   hex.EncodeToString(m.Topic[:]),
				"hash":    hex.EncodeToString(m.EnvelopeHash.Bytes()),
				"pow":     jsonFloat(m.PoW),
				"ttl":     m.TTL,
				"sent":    m.Sent,
			})
		}
	}
}

// markTrusted retries AllowP2PMessagesFromPeer for peers added with
// "trusted": whisper knows a peer only after the shh handshake.
func (n *node) markTrusted() {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	for id, deadline := range n.trusted {
		if n.w.AllowP2PMessagesFromPeer(id[:]) == nil {
			delete(n.trusted, id)
			continue
		}
		if now.After(deadline) {
			delete(n.trusted, id)
			fmt.Fprintf(os.Stderr, "whisper-ref: could not mark peer %s trusted within %v\n", id, trustRetry)
		}
	}
}

// peerEvents prints p2p peer add/drop events until quit.
func (n *node) peerEvents(events <-chan *p2p.PeerEvent, quit <-chan struct{}) {
	for {
		select {
		case <-quit:
			return
		case ev := <-events:
			if ev.Type != p2p.PeerEventTypeAdd && ev.Type != p2p.PeerEventTypeDrop {
				continue
			}
			msg := map[string]any{"type": "peer", "event": string(ev.Type), "id": ev.Peer.String()}
			if ev.Error != "" {
				msg["error"] = ev.Error
			}
			n.out.emit(msg)
		}
	}
}
