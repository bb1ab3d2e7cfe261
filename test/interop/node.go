package interop

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

const (
	// nodeReadyTimeout bounds the wait for a node's ready line.
	nodeReadyTimeout = 10 * time.Second
	// nodeEventBuffer is the capacity of the message and peer event channels.
	nodeEventBuffer = 1024
)

// RefNodeOptions configures StartRefNode.
type RefNodeOptions struct {
	// Key is the node's 32-byte secp256k1 private key; nil means random.
	Key []byte
	// MinPoW is whisper's MinimumAcceptedPOW; 0 means the node's default,
	// 0.001.
	MinPoW float64
	// MailserverPassword, when not empty, makes the node a geth v6
	// mailserver: mailserver.WMailServer.Init(shh, <temp LevelDB>,
	// MailserverPassword, MailserverPoW), registered with
	// shh.RegisterServer before the node starts. It archives every envelope
	// its pool accepts and answers code-126 requests (see RequestHistory).
	MailserverPassword string
	// MailserverPoW is the minimum PoW of a history request; 0 means no check.
	MailserverPoW float64
}

// NodeMessage is a message delivered to one of a node's filters.
type NodeMessage struct {
	Filter  string
	Payload []byte
	Signer  []byte // 65-byte uncompressed public key; nil if unsigned
	Topic   [4]byte
	Hash    [32]byte // envelope hash
	PoW     float64
	TTL     uint32
	Sent    uint32
}

// PeerEvent is a p2p peer event of a node.
type PeerEvent struct {
	Event string // "add" or "drop"
	ID    string // enode ID, hex
	Error string
}

// RefNode is one running "whisper-ref node" process: geth v1.9.20 whisper v6
// on a p2p server listening on 127.0.0.1. Its methods may be called from
// several goroutines.
type RefNode struct {
	enode string
	id    string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	stderr *limitedBuffer
	done   chan struct{} // closed when the process has exited
	// waitErr is cmd.Wait's result; read it only after done is closed.
	waitErr    error
	readerDone chan struct{} // closed when the reader goroutine returns

	writeMu sync.Mutex // serialises writes to stdin

	mu       sync.Mutex
	nextID   int64
	pending  map[int64]chan json.RawMessage
	readErr  error // set when the reader stops; later calls fail with it
	overflow []string
	closed   bool

	messages chan NodeMessage
	peers    chan PeerEvent
	found    chan FoundEvent
}

// StartRefNode builds (see BuildReference) and starts a whisper-ref node and
// waits up to 10 s for it to listen. tb's cleanup closes its stdin, waits
// for it to exit (killing it after 5 s) and reports event overflows.
func StartRefNode(tb testing.TB, opts RefNodeOptions) *RefNode {
	tb.Helper()
	bin := BuildReference(tb)
	args := []string{"node", "-port", "0"}
	if opts.Key != nil {
		args = append(args, "-key", hex.EncodeToString(opts.Key))
	}
	if opts.MinPoW != 0 {
		args = append(args, "-minpow", fmt.Sprint(opts.MinPoW))
	}
	if opts.MailserverPassword != "" {
		args = append(args, "-mailserver-password", opts.MailserverPassword,
			"-mailserver-pow", fmt.Sprint(opts.MailserverPoW))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		tb.Fatalf("start whisper-ref node: %v", err)
	}
	n := &RefNode{
		cmd:        exec.Command(bin, args...),
		stdout:     pr,
		stderr:     &limitedBuffer{limit: stderrLimit},
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		pending:    make(map[int64]chan json.RawMessage),
		messages:   make(chan NodeMessage, nodeEventBuffer),
		peers:      make(chan PeerEvent, nodeEventBuffer),
		found:      make(chan FoundEvent, nodeEventBuffer),
	}
	n.cmd.Stdout = pw
	n.cmd.Stderr = n.stderr
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		pr.Close()
		pw.Close()
		tb.Fatalf("start whisper-ref node: %v", err)
	}
	if err := n.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		tb.Fatalf("start whisper-ref node: %v", err)
	}
	pw.Close()
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.done)
	}()
	ready := make(chan struct{})
	go n.read(ready)
	tb.Cleanup(func() {
		for _, err := range n.close() {
			tb.Error(err)
		}
	})
	select {
	case <-ready:
	case <-n.readerDone:
		tb.Fatalf("whisper-ref node exited before ready: %v; stderr: %s", n.err(), n.stderr)
	case <-time.After(nodeReadyTimeout):
		tb.Fatalf("whisper-ref node not ready within %v; stderr: %s", nodeReadyTimeout, n.stderr)
	}
	return n
}

// Enode returns the node's enode URL (enode://<pubkey>@127.0.0.1:<port>...).
func (n *RefNode) Enode() string { return n.enode }

// ID returns the node's enode ID in hex, as in PeerEvent.ID and Peers.
func (n *RefNode) ID() string { return n.id }

// Messages delivers the messages of all the node's filters, in order of
// arrival. It is buffered (1024); when full, further messages are dropped
// and the test fails at cleanup.
func (n *RefNode) Messages() <-chan NodeMessage { return n.messages }

// PeerEvents delivers the node's peer add/drop events (buffered, 1024).
func (n *RefNode) PeerEvents() <-chan PeerEvent { return n.peers }

// WaitMessage returns the next message, failing tb if none arrives within
// timeout.
func (n *RefNode) WaitMessage(tb testing.TB, timeout time.Duration) NodeMessage {
	tb.Helper()
	select {
	case m := <-n.messages:
		return m
	case <-time.After(timeout):
		tb.Fatalf("whisper-ref node: no message within %v", timeout)
		return NodeMessage{}
	}
}

func (n *RefNode) err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.readErr
}

// read demultiplexes stdout until EOF. It never blocks on a consumer.
func (n *RefNode) read(ready chan<- struct{}) {
	defer close(n.readerDone)
	r := bufio.NewReaderSize(n.stdout, 1<<20)
	isReady := false
	fail := func(err error) {
		n.mu.Lock()
		if n.readErr == nil {
			n.readErr = err
		}
		for id, ch := range n.pending {
			close(ch)
			delete(n.pending, id)
		}
		n.mu.Unlock()
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var head struct {
				Type  string          `json:"type"`
				ID    json.RawMessage `json:"id"`
				Enode string          `json:"enode"`
			}
			if jerr := json.Unmarshal(line, &head); jerr != nil {
				n.noteOverflow(fmt.Sprintf("unreadable line %q: %v", line, jerr))
			} else {
				switch head.Type {
				case "ready":
					if !isReady {
						var id string
						_ = json.Unmarshal(head.ID, &id)
						n.enode, n.id = head.Enode, id
						isReady = true
						close(ready)
					}
				case "reply":
					var id int64
					if json.Unmarshal(head.ID, &id) == nil {
						n.mu.Lock()
						ch := n.pending[id]
						delete(n.pending, id)
						n.mu.Unlock()
						if ch != nil {
							ch <- append(json.RawMessage(nil), line...) // buffered, never blocks
						}
					}
				case "message":
					n.handleMessage(line)
				case "peer":
					var ev PeerEvent
					var raw struct {
						Event string `json:"event"`
						ID    string `json:"id"`
						Error string `json:"error"`
					}
					if json.Unmarshal(line, &raw) == nil {
						ev = PeerEvent{Event: raw.Event, ID: raw.ID, Error: raw.Error}
						select {
						case n.peers <- ev:
						default:
							n.noteOverflow("peer event channel full, event dropped")
						}
					}
				case "found":
					var ev FoundEvent
					if json.Unmarshal(line, &ev) == nil {
						select {
						case n.found <- ev:
						default:
							n.noteOverflow("found event channel full, event dropped")
						}
					}
				default:
					n.noteOverflow(fmt.Sprintf("unknown line type %q", head.Type))
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				fail(errors.New("whisper-ref node closed its stdout"))
			} else {
				fail(fmt.Errorf("read whisper-ref node: %w", err))
			}
			return
		}
	}
}

func (n *RefNode) handleMessage(line []byte) {
	var raw struct {
		Filter  string    `json:"filter"`
		Payload string    `json:"payload"`
		Signer  string    `json:"signer"`
		Topic   string    `json:"topic"`
		Hash    string    `json:"hash"`
		PoW     wireFloat `json:"pow"`
		TTL     uint32    `json:"ttl"`
		Sent    uint32    `json:"sent"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		n.noteOverflow(fmt.Sprintf("bad message event %q: %v", line, err))
		return
	}
	m := NodeMessage{Filter: raw.Filter, PoW: float64(raw.PoW), TTL: raw.TTL, Sent: raw.Sent}
	var d hexDecoder
	m.Payload = d.bytes("payload", raw.Payload)
	m.Signer = d.bytes("signer", raw.Signer)
	d.fixed("topic", raw.Topic, m.Topic[:])
	d.fixed("hash", raw.Hash, m.Hash[:])
	if d.err != nil {
		n.noteOverflow(fmt.Sprintf("bad message event: %v", d.err))
		return
	}
	select {
	case n.messages <- m:
	default:
		n.noteOverflow("message channel full, message dropped")
	}
}

// noteOverflow records a problem of the reader, reported at cleanup.
func (n *RefNode) noteOverflow(msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.overflow) < 10 {
		n.overflow = append(n.overflow, msg)
	}
}

// close ends the process and returns the problems to report.
func (n *RefNode) close() []error {
	var errs []error
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.writeMu.Lock()
	n.stdin.Close()
	n.writeMu.Unlock()
	killed := false
	select {
	case <-n.done:
	case <-time.After(exitTimeout):
		killed = true
		n.cmd.Process.Kill()
		<-n.done
		errs = append(errs, fmt.Errorf("whisper-ref node did not exit within %v of stdin closing, killed; stderr: %s", exitTimeout, n.stderr))
	}
	<-n.readerDone
	n.stdout.Close()
	if n.waitErr != nil && !killed {
		errs = append(errs, fmt.Errorf("whisper-ref node: %v; stderr: %s", n.waitErr, n.stderr))
	}
	n.mu.Lock()
	for _, o := range n.overflow {
		errs = append(errs, fmt.Errorf("whisper-ref node: %s", o))
	}
	n.mu.Unlock()
	return errs
}

// call sends one request (a JSON object; "op" and "id" are added) and
// decodes its reply into resp. A reply with an "error" gives an error
// wrapping ErrRefused.
func (n *RefNode) call(op string, fields map[string]any, resp any) error {
	ch := make(chan json.RawMessage, 1)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return fmt.Errorf("whisper-ref node %s: closed", op)
	}
	if n.readErr != nil {
		err := n.readErr
		n.mu.Unlock()
		return fmt.Errorf("whisper-ref node %s: %w", op, err)
	}
	n.nextID++
	id := n.nextID
	n.pending[id] = ch
	n.mu.Unlock()

	req := map[string]any{"op": op, "id": id}
	for k, v := range fields {
		req[k] = v
	}
	line, err := json.Marshal(req)
	if err != nil {
		n.forget(id)
		return fmt.Errorf("whisper-ref node %s: encode request: %w", op, err)
	}
	n.writeMu.Lock()
	_, err = n.stdin.Write(append(line, '\n'))
	n.writeMu.Unlock()
	if err != nil {
		n.forget(id)
		return fmt.Errorf("whisper-ref node %s: write: %w; stderr: %s", op, err, n.stderr)
	}
	var reply json.RawMessage
	var ok bool
	select {
	case reply, ok = <-ch:
		if !ok {
			return fmt.Errorf("whisper-ref node %s: %w; stderr: %s", op, n.err(), n.stderr)
		}
	case <-time.After(callTimeout):
		n.forget(id)
		return fmt.Errorf("whisper-ref node %s: no reply within %v", op, callTimeout)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(reply, &e); err != nil {
		return fmt.Errorf("whisper-ref node %s: bad reply %s: %w", op, reply, err)
	}
	if e.Error != "" {
		return refused(op, e.Error)
	}
	if resp != nil {
		if err := json.Unmarshal(reply, resp); err != nil {
			return fmt.Errorf("whisper-ref node %s: bad reply %s: %w", op, reply, err)
		}
	}
	return nil
}

func (n *RefNode) forget(id int64) {
	n.mu.Lock()
	delete(n.pending, id)
	n.mu.Unlock()
}

// AddPeer dials enode. trusted also marks the peer trusted in whisper
// (AllowP2PMessagesFromPeer) once its handshake is done, so that it may
// send expired envelopes.
func (n *RefNode) AddPeer(enode string, trusted bool) error {
	return n.call("add_peer", map[string]any{"enode": enode, "trusted": trusted}, nil)
}

// Peers returns the enode IDs (hex) of the node's connected peers, sorted.
func (n *RefNode) Peers() ([]string, error) {
	var out struct {
		Peers []struct {
			ID    string `json:"id"`
			Enode string `json:"enode"`
		} `json:"peers"`
	}
	if err := n.call("peers", nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out.Peers))
	for _, p := range out.Peers {
		ids = append(ids, p.ID)
	}
	return ids, nil
}

// Subscribe installs a whisper filter on topic with either symKey or priv
// (exactly one non-nil) and a minimum PoW; it returns the filter ID.
func (n *RefNode) Subscribe(topic [4]byte, symKey, priv []byte, pow float64) (string, error) {
	if (symKey == nil) == (priv == nil) {
		return "", errors.New("whisper-ref node subscribe: give exactly one of symKey and priv")
	}
	f := map[string]any{"topic": hex.EncodeToString(topic[:]), "pow": pow}
	if symKey != nil {
		f["sym_key"] = hex.EncodeToString(symKey)
	} else {
		f["priv"] = hex.EncodeToString(priv)
	}
	var out struct {
		Filter string `json:"filter"`
	}
	if err := n.call("subscribe", f, &out); err != nil {
		return "", err
	}
	return out.Filter, nil
}

// Post seals a message as Reference.Seal does and sends it with whisper's
// Send; it returns the envelope hash and RLP encoding.
func (n *RefNode) Post(req SealRequest) (hash [32]byte, envelope []byte, err error) {
	f := req.fields()
	var out struct {
		Hash     string `json:"hash"`
		Envelope string `json:"envelope"`
	}
	if err := n.call("post", f, &out); err != nil {
		return hash, nil, err
	}
	var d hexDecoder
	d.fixed("hash", out.Hash, hash[:])
	envelope = d.bytes("envelope", out.Envelope)
	if d.err != nil {
		return [32]byte{}, nil, fmt.Errorf("whisper-ref node post: %w", d.err)
	}
	return hash, envelope, nil
}

// SetPoW is whisper's SetMinimumPoW.
func (n *RefNode) SetPoW(pow float64) error {
	return n.call("set_pow", map[string]any{"pow": pow}, nil)
}

// SetBloom is whisper's SetBloomFilter.
func (n *RefNode) SetBloom(bloom [64]byte) error {
	return n.call("set_bloom", map[string]any{"bloom": hex.EncodeToString(bloom[:])}, nil)
}

// SendRaw decodes env (RLP) and hands it to whisper's Send; geth's refusal
// (for example low PoW) is an error wrapping ErrRefused.
func (n *RefNode) SendRaw(env []byte) error {
	return n.call("send_raw", map[string]any{"envelope": hex.EncodeToString(env)}, nil)
}

// MailserverStats returns how many envelopes the node's mailserver has
// archived (WMailServer.Archive calls: every envelope newly accepted into the
// pool, including the node's own posts) and how many history requests
// (code-126 packets) it has received, valid or not. It fails unless the node
// was started with RefNodeOptions.MailserverPassword.
func (n *RefNode) MailserverStats() (archived, requests int64, err error) {
	var out struct {
		Archived int64 `json:"archived"`
		Requests int64 `json:"requests"`
	}
	if err := n.call("mailserver_stats", nil, &out); err != nil {
		return 0, 0, err
	}
	return out.Archived, out.Requests, nil
}

// HistoryRequest is a geth v6 mailserver request (RefNode.RequestHistory).
type HistoryRequest struct {
	// Peer is the mailserver: its enode ID in hex (RefNode.ID) or its
	// enode URL.
	Peer string
	// Password gives the symmetric key by PBKDF2 (geth
	// AddSymKeyFromPassword); alternatively SymKey gives it directly.
	// Exactly one must be set.
	Password string
	SymKey   []byte
	// Lower and Upper bound the envelopes' created time (Expiry - TTL),
	// both inclusive. geth's server computes Upper+1 in uint32, so Upper
	// 0xFFFFFFFF matches nothing.
	Lower, Upper uint32
	// Bloom is the 64-byte topic bloom filter; nil sends the 8-byte
	// payload, for which the server uses the full-node bloom (match all).
	Bloom []byte
	// PoW is the request envelope's PoW target (the server drops requests
	// below its MailserverPoW); 0 skips sealing.
	PoW float64
	// SrcPriv signs the request; nil means the node's own key.
	SrcPriv []byte
	// TTL of the request envelope; 0 means geth's default, 50.
	TTL uint32
	// WorkTime bounds sealing, in seconds; 0 means cmd/wnode's 5.
	WorkTime uint32
}

// RequestHistory sends a history request the way go-ethereum's cmd/wnode
// does (payload BE(lower) ‖ BE(upper) [‖ bloom], zero topic, signed,
// AES-GCM, sealed) with shh.RequestHistoricMessages, which also marks the
// peer trusted so that its code-127 replies are accepted. The node retries
// for up to 10 s while whisper does not know the peer yet. The replies, one
// code-127 packet per matching envelope, oldest first, arrive as messages
// of the node's subscriptions; geth sends no completion signal. It returns
// the request envelope's hash.
func (n *RefNode) RequestHistory(req HistoryRequest) ([32]byte, error) {
	var hash [32]byte
	f := map[string]any{
		"peer":      req.Peer,
		"lower":     req.Lower,
		"upper":     req.Upper,
		"pow":       req.PoW,
		"ttl":       req.TTL,
		"work_time": req.WorkTime,
	}
	if req.Password != "" {
		f["password"] = req.Password
	}
	for k, v := range map[string][]byte{"sym_key": req.SymKey, "bloom": req.Bloom, "src_priv": req.SrcPriv} {
		if len(v) > 0 {
			f[k] = hex.EncodeToString(v)
		}
	}
	var out struct {
		Hash string `json:"hash"`
	}
	if err := n.call("request_history", f, &out); err != nil {
		return hash, err
	}
	var d hexDecoder
	d.fixed("hash", out.Hash, hash[:])
	if d.err != nil {
		return [32]byte{}, fmt.Errorf("whisper-ref node request_history: %w", d.err)
	}
	return hash, nil
}
