package statusref

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

const (
	// readyTimeout bounds the wait for a process's ready line (the Messenger opens and
	// migrates its sqlcipher database before it).
	readyTimeout = 60 * time.Second
	// callTimeout bounds one request/reply exchange.
	callTimeout = 60 * time.Second
	// exitTimeout is how long a stop waits for the process after closing its stdin.
	exitTimeout = 10 * time.Second
	// stderrLimit caps how much of the process's stderr is kept for errors.
	stderrLimit = 64 << 10
	// eventBuffer is the capacity of each event channel.
	eventBuffer = 4096
)

// ErrRefused is wrapped by the errors of calls that statusgo-ref answered with an
// error (status-go refused), as opposed to harness failures.
var ErrRefused = errors.New("statusgo-ref refused the request")

// Options configures Start. Zero values are the documented defaults; Start fills in
// the random ones, and Restart reuses them all.
type Options struct {
	// Key is the chat identity; nil means a fresh random key.
	Key *ecdsa.PrivateKey
	// NodeKey is the devp2p node key; nil means a fresh random key.
	NodeKey *ecdsa.PrivateKey
	// InstallationID is this device's installation id; "" means a random UUID.
	InstallationID string
	// DataDir holds the Messenger's sqlcipher databases; "" means tb.TempDir().
	DataDir string
	// MinPoW is Whisper's MinimumAcceptedPOW; 0 means status-go's production value,
	// 0.000002 (the Messenger itself seals at 0.002).
	MinPoW float64
	// Datasync turns MVDS on (protocol.WithDatasync).
	Datasync bool
	// DeviceName is the pairing metadata name; "" means "statusgo-ref".
	DeviceName string
	// LogLevel is status-go's log level on stderr ("debug", "info", "warn", "error");
	// "" means "warn". The last 64 KiB of stderr are quoted in failures.
	LogLevel string
	// Mailserver runs status-go's WhisperMailServer in the node (-mailserver), its
	// archive in DataDir (LevelDB; kept across Restart) or in MailserverPostgres.
	Mailserver bool
	// MailserverPoW is the PoW a request must carry; 0 means the node's MinPoW, as
	// status-go's config shares one MinimumPoW.
	MailserverPoW float64
	// MailserverRateLimit is status-go's MailServerRateLimit: seconds between two
	// requests of a peer; 0 means none.
	MailserverRateLimit int
	// MailserverPostgres is a PostgreSQL URI for the archive; "" means LevelDB.
	MailserverPostgres string
	// Waku runs status-go's Waku (waku/0 and waku/1) instead of Whisper (-waku); the
	// Messenger then uses Waku. See WakuOptions.
	Waku WakuOptions
	// Port is the TCP listen port on 127.0.0.1; 0 means random for the first start.
	// Restart listens on the port of the first start, so the enode stays the same.
	Port int
}

// Node is one status-go v0.70.1 Messenger in a statusgo-ref process, on its own devp2p
// node with Whisper v6 on 127.0.0.1. Its methods may be called from several
// goroutines. Its event channels survive Restart.
type Node struct {
	bin  string
	opts Options

	mu   sync.Mutex
	p    *proc // the current process
	drop map[string]int

	messages      chan Message
	installations chan Installation
	envelopes     chan Envelope // received envelopes (drop when full, counted)
	sent          chan Envelope // sent envelopes (drop when full, counted)
	peers         chan PeerEvent
	wakuEvents    chan WakuEvent
	problems      []string
}

// Start builds (see Build) and starts a statusgo-ref node with opts and waits for its
// Messenger to be started. tb's cleanup stops it (EOF on stdin, kill after 10 s) and
// fails the test if the message or installation channels overflowed.
func Start(tb testing.TB, opts Options) *Node {
	tb.Helper()
	bin := Build(tb)
	var err error
	if opts.Key == nil {
		if opts.Key, err = crypto.GenerateKey(); err != nil {
			tb.Fatal(err)
		}
	}
	if opts.NodeKey == nil {
		if opts.NodeKey, err = crypto.GenerateKey(); err != nil {
			tb.Fatal(err)
		}
	}
	if opts.InstallationID == "" {
		opts.InstallationID = randomUUID(tb)
	}
	if opts.DataDir == "" {
		opts.DataDir = tb.TempDir()
	}
	n := &Node{
		bin:           bin,
		opts:          opts,
		drop:          map[string]int{},
		messages:      make(chan Message, eventBuffer),
		installations: make(chan Installation, eventBuffer),
		envelopes:     make(chan Envelope, eventBuffer),
		sent:          make(chan Envelope, eventBuffer),
		peers:         make(chan PeerEvent, eventBuffer),
		wakuEvents:    make(chan WakuEvent, eventBuffer),
	}
	tb.Cleanup(func() {
		n.mu.Lock()
		p := n.p
		n.p = nil
		n.mu.Unlock()
		if p != nil {
			if err := p.close(); err != nil {
				tb.Error(err)
			}
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, pr := range n.problems {
			tb.Errorf("statusgo-ref: %s", pr)
		}
	})
	p, err := n.startProc()
	if err != nil {
		tb.Fatalf("start statusgo-ref: %v", err)
	}
	n.mu.Lock()
	n.p = p
	if n.opts.Port == 0 {
		n.opts.Port = p.port
	}
	n.mu.Unlock()
	return n
}

// Restart stops the process (EOF on stdin: the Messenger shuts down and closes its
// database) and starts it again with the same identity, installation, node key, port
// and database. Pending events stay in the channels.
func (n *Node) Restart(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	old := n.p
	n.p = nil
	n.mu.Unlock()
	if old != nil {
		if err := old.close(); err != nil {
			tb.Fatalf("restart statusgo-ref: stop: %v", err)
		}
	}
	p, err := n.startProc()
	if err != nil {
		tb.Fatalf("restart statusgo-ref: %v", err)
	}
	n.mu.Lock()
	n.p = p
	n.mu.Unlock()
}

func (n *Node) startProc() (*proc, error) {
	o := n.opts
	args := []string{"node",
		"-key", hex.EncodeToString(crypto.FromECDSA(o.Key)),
		"-node-key", hex.EncodeToString(crypto.FromECDSA(o.NodeKey)),
		"-installation", o.InstallationID,
		"-data", o.DataDir,
		"-port", strconv.Itoa(o.Port),
	}
	if o.MinPoW != 0 {
		args = append(args, "-minpow", strconv.FormatFloat(o.MinPoW, 'g', -1, 64))
	}
	if o.Datasync {
		args = append(args, "-datasync")
	}
	if o.DeviceName != "" {
		args = append(args, "-device-name", o.DeviceName)
	}
	if o.LogLevel != "" {
		args = append(args, "-log", o.LogLevel)
	}
	if o.Mailserver {
		args = append(args, "-mailserver")
		if o.MailserverPoW != 0 {
			args = append(args, "-mailserver-pow", strconv.FormatFloat(o.MailserverPoW, 'g', -1, 64))
		}
		if o.MailserverRateLimit != 0 {
			args = append(args, "-mailserver-ratelimit", strconv.Itoa(o.MailserverRateLimit))
		}
		if o.MailserverPostgres != "" {
			args = append(args, "-mailserver-postgres", o.MailserverPostgres)
		}
	}
	args = append(args, o.Waku.args()...)
	return startProc(n, n.bin, args)
}

// Key returns the chat identity's private key.
func (n *Node) Key() *ecdsa.PrivateKey { return n.opts.Key }

// PublicKey returns the chat identity's public key.
func (n *Node) PublicKey() *ecdsa.PublicKey { return &n.opts.Key.PublicKey }

// InstallationID returns this device's installation id.
func (n *Node) InstallationID() string { return n.opts.InstallationID }

// DataDir returns the directory of the Messenger's databases.
func (n *Node) DataDir() string { return n.opts.DataDir }

// Enode returns the node's enode URL (stable across Restart).
func (n *Node) Enode() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ""
	}
	return n.p.enode
}

// ID returns the node's enode ID in hex, as PeerEvent.ID.
func (n *Node) ID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ""
	}
	return n.p.id
}

// ChatID returns status-go's 1:1 chat id for pub: "0x" + hex of the uncompressed key.
func ChatID(pub *ecdsa.PublicKey) string { return "0x" + hex.EncodeToString(crypto.FromECDSAPub(pub)) }

// Messages delivers the messages the Messenger's RetrieveAll returned, each with the
// envelope it came in, in order of arrival. Buffered (4096); when full, further
// messages are dropped and the test fails at cleanup.
func (n *Node) Messages() <-chan Message { return n.messages }

// InstallationEvents delivers the installations RetrieveAll reported (new devices of
// the same identity, after a pair message). Buffered like Messages.
func (n *Node) InstallationEvents() <-chan Installation { return n.installations }

// Envelopes delivers every envelope the Messenger retrieved, whether or not it gave a
// message (bundle-only messages, contact codes, its own echoes). Buffered (4096);
// when full, further envelopes are dropped and counted, not failed: read it only in
// tests about envelopes, and drain it first.
func (n *Node) Envelopes() <-chan Envelope { return n.envelopes }

// SentEnvelopes delivers every envelope the Messenger posted, with the same overflow
// policy as Envelopes.
func (n *Node) SentEnvelopes() <-chan Envelope { return n.sent }

// PeerEvents delivers the devp2p peer add/drop events (buffered, dropped when full).
func (n *Node) PeerEvents() <-chan PeerEvent { return n.peers }

// WaitMessage returns the next message, failing tb if none arrives within timeout.
func (n *Node) WaitMessage(tb testing.TB, timeout time.Duration) Message {
	tb.Helper()
	select {
	case m := <-n.messages:
		return m
	case <-time.After(timeout):
		tb.Fatalf("statusgo-ref %s: no message within %v", n.opts.InstallationID, timeout)
		return Message{}
	}
}

// WaitPeer waits for a peer add event for the enode ID id (hex), failing tb after
// timeout. Other peer events are discarded.
func (n *Node) WaitPeer(tb testing.TB, id string, timeout time.Duration) {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-n.peers:
			if ev.Event == "add" && ev.ID == id {
				return
			}
		case <-deadline:
			tb.Fatalf("statusgo-ref: peer %s not added within %v", id, timeout)
		}
	}
}

func (n *Node) problem(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.problems) < 10 {
		n.problems = append(n.problems, s)
	}
}

func (n *Node) dropped(kind string) {
	n.mu.Lock()
	n.drop[kind]++
	n.mu.Unlock()
}

// Dropped returns how many envelope, sent and peer events were dropped because their
// channel was full.
func (n *Node) Dropped() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]int, len(n.drop))
	for k, v := range n.drop {
		out[k] = v
	}
	return out
}

// proc is one statusgo-ref process.
type proc struct {
	n      *Node
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	stderr *limitedBuffer
	done   chan struct{} // closed when the process has exited
	// waitErr is cmd.Wait's result; read it only after done is closed.
	waitErr    error
	readerDone chan struct{}

	enode, id string
	port      int

	writeMu sync.Mutex

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan json.RawMessage
	readErr error
	closed  bool
}

func startProc(n *Node, bin string, args []string) (*proc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p := &proc{
		n:          n,
		cmd:        exec.Command(bin, args...),
		stdout:     pr,
		stderr:     &limitedBuffer{limit: stderrLimit},
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		pending:    map[int64]chan json.RawMessage{},
	}
	p.cmd.Stdout = pw
	p.cmd.Stderr = p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close()
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	ready := make(chan struct{})
	go p.read(ready)
	select {
	case <-ready:
		return p, nil
	case <-p.readerDone:
		err = fmt.Errorf("exited before ready: %v; stderr: %s", p.err(), p.stderr)
	case <-time.After(readyTimeout):
		err = fmt.Errorf("not ready within %v; stderr: %s", readyTimeout, p.stderr)
	}
	p.cmd.Process.Kill()
	<-p.done
	<-p.readerDone
	p.stdout.Close()
	return nil, err
}

func (p *proc) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readErr
}

// read demultiplexes stdout until EOF. It never blocks on a consumer.
func (p *proc) read(ready chan<- struct{}) {
	defer close(p.readerDone)
	r := bufio.NewReaderSize(p.stdout, 1<<20)
	isReady := false
	fail := func(err error) {
		p.mu.Lock()
		if p.readErr == nil {
			p.readErr = err
		}
		for id, ch := range p.pending {
			close(ch)
			delete(p.pending, id)
		}
		p.mu.Unlock()
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			p.dispatch(line, &isReady, ready)
		}
		if err != nil {
			if err == io.EOF {
				fail(errors.New("statusgo-ref closed its stdout"))
			} else {
				fail(fmt.Errorf("read statusgo-ref: %w", err))
			}
			return
		}
	}
}

func (p *proc) dispatch(line []byte, isReady *bool, ready chan<- struct{}) {
	var head struct {
		Type  string          `json:"type"`
		ID    json.RawMessage `json:"id"`
		Enode string          `json:"enode"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		p.n.problem(fmt.Sprintf("unreadable line %q: %v", line, err))
		return
	}
	switch head.Type {
	case "ready":
		if !*isReady {
			var id string
			_ = json.Unmarshal(head.ID, &id)
			p.enode, p.id = head.Enode, id
			if u, err := url.Parse(head.Enode); err == nil {
				p.port, _ = strconv.Atoi(u.Port())
			}
			*isReady = true
			close(ready)
		}
	case "reply":
		var id int64
		if json.Unmarshal(head.ID, &id) == nil {
			p.mu.Lock()
			ch := p.pending[id]
			delete(p.pending, id)
			p.mu.Unlock()
			if ch != nil {
				ch <- append(json.RawMessage(nil), line...) // buffered, never blocks
			}
		}
	case "message":
		var w wireMessage
		if err := json.Unmarshal(line, &w); err != nil {
			p.n.problem(fmt.Sprintf("bad message event %q: %v", line, err))
			return
		}
		m, err := w.decode()
		if err != nil {
			p.n.problem(fmt.Sprintf("bad message event %q: %v", line, err))
			return
		}
		select {
		case p.n.messages <- m:
		default:
			p.n.problem("message channel full, message dropped")
		}
	case "installation":
		var i Installation
		if err := json.Unmarshal(line, &i); err != nil {
			p.n.problem(fmt.Sprintf("bad installation event %q: %v", line, err))
			return
		}
		select {
		case p.n.installations <- i:
		default:
			p.n.problem("installation channel full, event dropped")
		}
	case "waku":
		p.n.dispatchWaku(line)
	case "envelope", "sent":
		var w struct {
			Envelope wireEnvelope `json:"envelope"`
		}
		if err := json.Unmarshal(line, &w); err != nil {
			p.n.problem(fmt.Sprintf("bad %s event %q: %v", head.Type, line, err))
			return
		}
		e, err := w.Envelope.decode()
		if err != nil {
			p.n.problem(fmt.Sprintf("bad %s event %q: %v", head.Type, line, err))
			return
		}
		ch := p.n.envelopes
		if head.Type == "sent" {
			ch = p.n.sent
		}
		select {
		case ch <- e:
		default:
			p.n.dropped(head.Type)
		}
	case "peer":
		var ev PeerEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			p.n.problem(fmt.Sprintf("bad peer event %q: %v", line, err))
			return
		}
		select {
		case p.n.peers <- ev:
		default:
			p.n.dropped("peer")
		}
	case "error":
		p.n.problem(fmt.Sprintf("reported: %s", bytes.TrimSpace(line)))
	default:
		p.n.problem(fmt.Sprintf("unknown line type %q", head.Type))
	}
}

// close ends the process: EOF on stdin, then a kill if it lingers.
func (p *proc) close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.writeMu.Lock()
	p.stdin.Close()
	p.writeMu.Unlock()
	var errs []error
	killed := false
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		killed = true
		p.cmd.Process.Kill()
		<-p.done
		errs = append(errs, fmt.Errorf("statusgo-ref did not exit within %v of stdin closing, killed; stderr: %s", exitTimeout, p.stderr))
	}
	<-p.readerDone
	p.stdout.Close()
	if p.waitErr != nil && !killed {
		errs = append(errs, fmt.Errorf("statusgo-ref: %v; stderr: %s", p.waitErr, p.stderr))
	}
	return errors.Join(errs...)
}

// call sends one request (fields plus "op" and "id") and decodes its reply into resp.
// A reply with an "error" gives an error wrapping ErrRefused.
func (n *Node) call(op string, fields map[string]any, resp any) error {
	n.mu.Lock()
	p := n.p
	n.mu.Unlock()
	if p == nil {
		return fmt.Errorf("statusgo-ref %s: not running", op)
	}
	return p.call(op, fields, resp)
}

func (p *proc) call(op string, fields map[string]any, resp any) error {
	ch := make(chan json.RawMessage, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fmt.Errorf("statusgo-ref %s: closed", op)
	}
	if p.readErr != nil {
		err := p.readErr
		p.mu.Unlock()
		return fmt.Errorf("statusgo-ref %s: %w; stderr: %s", op, err, p.stderr)
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.mu.Unlock()

	req := map[string]any{"op": op, "id": id}
	for k, v := range fields {
		req[k] = v
	}
	line, err := json.Marshal(req)
	if err != nil {
		p.forget(id)
		return fmt.Errorf("statusgo-ref %s: encode request: %w", op, err)
	}
	p.writeMu.Lock()
	_, err = p.stdin.Write(append(line, '\n'))
	p.writeMu.Unlock()
	if err != nil {
		p.forget(id)
		return fmt.Errorf("statusgo-ref %s: write: %w; stderr: %s", op, err, p.stderr)
	}
	var reply json.RawMessage
	var ok bool
	select {
	case reply, ok = <-ch:
		if !ok {
			return fmt.Errorf("statusgo-ref %s: %w; stderr: %s", op, p.err(), p.stderr)
		}
	case <-time.After(callTimeout):
		p.forget(id)
		return fmt.Errorf("statusgo-ref %s: no reply within %v", op, callTimeout)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(reply, &e); err != nil {
		return fmt.Errorf("statusgo-ref %s: bad reply %s: %w", op, reply, err)
	}
	if e.Error != "" {
		return fmt.Errorf("statusgo-ref %s: %w: %s", op, ErrRefused, e.Error)
	}
	if resp != nil {
		if err := json.Unmarshal(reply, resp); err != nil {
			return fmt.Errorf("statusgo-ref %s: bad reply %s: %w", op, reply, err)
		}
	}
	return nil
}

func (p *proc) forget(id int64) {
	p.mu.Lock()
	delete(p.pending, id)
	p.mu.Unlock()
}

// limitedBuffer keeps the last limit bytes written to it (status-go's last words are
// the useful ones); it is safe for concurrent use.
type limitedBuffer struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

// Write implements io.Writer; it never fails.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns what was kept, trimmed, or "(empty)".
func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(string(b.buf))
	if s == "" {
		return "(empty)"
	}
	return s
}
