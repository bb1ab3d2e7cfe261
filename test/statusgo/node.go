package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	_ "github.com/mutecomm/go-sqlcipher" // the Messenger's database driver

	gethbridge "github.com/status-im/status-go/eth-node/bridge/geth"
	"github.com/status-im/status-go/eth-node/types"
	"github.com/status-im/status-go/mailserver"
	"github.com/status-im/status-go/multiaccounts"
	"github.com/status-im/status-go/protocol"
	"github.com/status-im/status-go/protocol/common"
	"github.com/status-im/status-go/protocol/encryption/multidevice"
	"github.com/status-im/status-go/whisper"
)

const (
	// pollInterval is how often the Messenger's filters are drained when idle.
	pollInterval = 50 * time.Millisecond
	// dbKey is the sqlcipher passphrase of the Messenger's database (test data only).
	dbKey = "statusgo-ref"
)

// node is a running status-go Messenger on a devp2p node with Whisper v6, or with Waku
// (-waku; wakumode.go).
type node struct {
	stack *gethnode.Node
	shh   *whisper.Whisper // nil with -waku
	waku  *wakuNode        // nil without -waku
	tap   *tapNode
	m     *protocol.Messenger
	ms    *mailserver.WhisperMailServer // with -mailserver

	delivered deliveries // envelopes made available, per topic and hash
	out       *lineWriter
	log       *zap.Logger

	identity       *ecdsa.PrivateKey
	installationID string
	dataDir        string
	datasync       bool

	// mu serialises the Messenger calls of the poll loop with those of the ops.
	mu sync.Mutex

	// holdMu guards holding and held (hold.go).
	holdMu  sync.Mutex
	holding bool
	held    []*whisper.Envelope
}

type nodeFlags struct {
	key, nodeKey, installation, dataDir, deviceName, logLevel string
	port                                                      int
	minPoW                                                    float64
	datasync                                                  bool
	mailserver                                                mailserverFlags
	waku                                                      wakuFlags
}

// runNode parses the flags, starts the node and the Messenger and runs the JSON-lines
// loop until in reaches EOF.
func runNode(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	var f nodeFlags
	fs.StringVar(&f.key, "key", "", "chat identity private key (64 hex); random if empty")
	fs.StringVar(&f.nodeKey, "node-key", "", "devp2p node private key (64 hex); random if empty")
	fs.StringVar(&f.installation, "installation", "", "installation id; a random UUID if empty")
	fs.StringVar(&f.dataDir, "data", "", "directory of the Messenger's databases (kept: restart on it); a temporary one if empty")
	fs.StringVar(&f.deviceName, "device-name", "statusgo-ref", "this installation's device name (pairing metadata)")
	fs.StringVar(&f.logLevel, "log", "warn", "status-go log level on stderr: debug, info, warn, error")
	fs.IntVar(&f.port, "port", 0, "TCP listen port on 127.0.0.1 (0 = random)")
	fs.Float64Var(&f.minPoW, "minpow", 0.000002, "Whisper MinimumAcceptedPOW (status-go's own nodes: 0.000002; the Messenger seals at 0.002)")
	fs.BoolVar(&f.datasync, "datasync", false, "enable MVDS (protocol.WithDatasync)")
	fs.BoolVar(&f.mailserver.enabled, "mailserver", false, "run status-go's WhisperMailServer (archive under -data/mailserver)")
	fs.StringVar(&f.mailserver.password, "mailserver-password", "status-offline-inbox", "the mailserver's request password")
	fs.Float64Var(&f.mailserver.pow, "mailserver-pow", -1, "the PoW a request must carry (negative: -minpow, as status-go's config shares MinimumPoW)")
	fs.IntVar(&f.mailserver.rateLimit, "mailserver-ratelimit", 0, "seconds between two requests of a peer (MailServerRateLimit; 0: none)")
	fs.StringVar(&f.mailserver.postgres, "mailserver-postgres", "", "PostgreSQL URI for the archive (default: LevelDB)")
	f.waku.define(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	n, err := startNode(f, out)
	if err != nil {
		return err
	}
	events := make(chan *p2p.PeerEvent, 256)
	sub := n.stack.Server().SubscribeEvents(events)
	defer sub.Unsubscribe()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.pollLoop(quit) }()
	go func() { defer wg.Done(); n.peerEvents(events, quit) }()
	if n.waku != nil {
		wg.Add(1)
		go func() { defer wg.Done(); n.wakuEvents(quit) }()
	}

	n.out.emit(map[string]any{
		"type":            "ready",
		"enode":           n.stack.Server().Self().URLv4(),
		"id":              n.stack.Server().Self().ID().String(),
		"public_key":      hex.EncodeToString(crypto.FromECDSAPub(&n.identity.PublicKey)),
		"installation_id": n.installationID,
		"data":            n.dataDir,
		"mailserver":      n.ms != nil || n.waku != nil && n.waku.ms != nil,
		"waku":            n.waku != nil,
	})

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
	close(quit)
	wg.Wait()
	n.stop()
	if readErr != nil {
		return readErr
	}
	return n.out.error()
}

func startNode(f nodeFlags, out io.Writer) (*node, error) {
	identity, err := keyOrRandom("key", f.key)
	if err != nil {
		return nil, err
	}
	nodeKey, err := keyOrRandom("node-key", f.nodeKey)
	if err != nil {
		return nil, err
	}
	if f.installation == "" {
		f.installation = randomUUID()
	}
	if f.dataDir == "" {
		if f.dataDir, err = os.MkdirTemp("", "statusgo-ref-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return nil, err
	}
	logger, err := newLogger(f.logLevel)
	if err != nil {
		return nil, err
	}
	n := &node{
		out:            &lineWriter{w: bufio.NewWriter(out)},
		log:            logger,
		identity:       identity,
		installationID: f.installation,
		dataDir:        f.dataDir,
		datasync:       f.datasync,
	}

	stack, err := gethnode.New(&gethnode.Config{
		Name:    "statusgo-ref",
		NoUSB:   true,
		DataDir: "", // in memory: the Messenger keeps its state in its own database
		P2P: p2p.Config{
			PrivateKey:  nodeKey,
			ListenAddr:  fmt.Sprintf("127.0.0.1:%d", f.port),
			MaxPeers:    50,
			NoDiscovery: true,
			Name:        "statusgo-ref",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("new node: %v", err)
	}
	if f.waku.enabled {
		if err := n.startWaku(f, stack); err != nil {
			return nil, err
		}
	} else {
		cfg := whisper.DefaultConfig
		cfg.MinimumAcceptedPOW = f.minPoW
		n.shh = whisper.New(&cfg)
		if err := n.startMailserver(f.mailserver, f.minPoW); err != nil {
			return nil, err
		}
		if err := stack.Register(func(*gethnode.ServiceContext) (gethnode.Service, error) { return n.shh, nil }); err != nil {
			return nil, fmt.Errorf("register whisper: %v", err)
		}
	}
	if err := stack.Start(); err != nil {
		return nil, fmt.Errorf("start node: %v", err)
	}
	n.stack = stack
	if n.tap, err = newTapNode(gethbridge.NewNodeBridge(stack), f.waku.enabled, n.onSent, n.holdPost); err != nil {
		stack.Stop()
		return nil, fmt.Errorf("node bridge: %v", err)
	}
	if err := n.startMessenger(f.deviceName); err != nil {
		stack.Stop()
		return nil, err
	}
	return n, nil
}

// startMessenger builds the Messenger as status-go's own tests do (newMessengerWithKey),
// on a database in the data directory, then Init and Start.
func (n *node) startMessenger(deviceName string) error {
	madb, err := multiaccounts.InitializeDB(filepath.Join(n.dataDir, "multiaccounts.sql"))
	if err != nil {
		return fmt.Errorf("multiaccounts db: %v", err)
	}
	keyUID := sha256.Sum256(crypto.FromECDSAPub(&n.identity.PublicKey))
	opts := []protocol.Option{
		protocol.WithCustomLogger(n.log),
		protocol.WithDatabaseConfig(filepath.Join(n.dataDir, "messenger.sql"), dbKey),
		protocol.WithMultiAccounts(madb),
		protocol.WithAccount(&multiaccounts.Account{KeyUID: types.EncodeHex(keyUID[:]), Timestamp: time.Now().Unix()}),
	}
	if n.datasync {
		opts = append(opts, protocol.WithDatasync())
	}
	m, err := protocol.NewMessenger(n.identity, n.tap, n.installationID, opts...)
	if err != nil {
		return fmt.Errorf("new messenger: %v", err)
	}
	if err := m.Init(); err != nil {
		return fmt.Errorf("messenger init: %v", err)
	}
	if _, err := m.Start(); err != nil {
		return fmt.Errorf("messenger start: %v", err)
	}
	if err := m.SetInstallationMetadata(n.installationID, &multidevice.InstallationMetadata{Name: deviceName, DeviceType: "statusgo-ref"}); err != nil {
		return fmt.Errorf("installation metadata: %v", err)
	}
	n.m = m
	return nil
}

func (n *node) stop() {
	stopDiscovery(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.m.Shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "statusgo-ref: messenger shutdown: %v\n", err)
	}
	if err := n.stack.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "statusgo-ref: node stop: %v\n", err)
	}
	if n.ms != nil {
		n.ms.Close() // closes its database, so a restart on -data opens it again
	}
	if n.waku != nil && n.waku.ms != nil {
		n.waku.ms.Close()
	}
	_ = n.log.Sync()
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

// onSent reports an envelope the Messenger posted.
func (n *node) onSent(info envelopeInfo) {
	n.out.emit(map[string]any{"type": "sent", "envelope": info})
}

// pollLoop retrieves until quit: one envelope per RetrieveAll (see tapAPI), so every
// reported message carries the envelope it came in; idle rounds wait pollInterval.
func (n *node) pollLoop(quit <-chan struct{}) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		for n.pollOnce() {
			select {
			case <-quit:
				return
			default:
			}
		}
		select {
		case <-quit:
			return
		case <-t.C:
		}
	}
}

// pollOnce runs one RetrieveAll round and reports what it produced; it says whether an
// envelope was handed out (then there may be more).
func (n *node) pollOnce() bool {
	n.mu.Lock()
	n.tap.api.open()
	resp, err := n.m.RetrieveAll()
	env := n.tap.api.take()
	n.mu.Unlock()
	if err != nil {
		n.out.emit(map[string]any{"type": "error", "error": "retrieve: " + err.Error()})
		return env != nil
	}
	if env == nil {
		return false
	}
	info := classify(env.Payload, n.installationID)
	info.Hash, info.Topic, info.P2P = hex.EncodeToString(env.Hash), hex.EncodeToString(env.Topic[:]), env.P2P
	info.Signer, info.Dst = hex.EncodeToString(env.Sig), hex.EncodeToString(env.Dst)
	ev := map[string]any{"type": "envelope", "envelope": info, "messages": len(resp.Messages)}
	n.out.emit(ev)
	// With a reply, RetrieveAll also returns the message it answers, pulled from the
	// database (pullMessagesAndResponsesFromDB): that one did not come in this envelope.
	answered := map[string]bool{}
	for _, m := range resp.Messages {
		if m.ResponseTo != "" {
			answered[m.ResponseTo] = true
		}
	}
	for _, m := range resp.Messages {
		if !answered[m.ID] {
			n.out.emit(messageEvent(m, info))
		}
	}
	for _, inst := range resp.Installations {
		n.out.emit(installationEvent(inst))
	}
	return true
}

func messageEvent(m *common.Message, env envelopeInfo) map[string]any {
	return map[string]any{
		"type":              "message",
		"id":                trim0x(m.ID),
		"from":              trim0x(m.From),
		"chat_id":           m.ChatId,
		"local_chat_id":     m.LocalChatID,
		"text":              m.Text,
		"clock":             m.Clock,
		"timestamp":         m.Timestamp,
		"whisper_timestamp": m.WhisperTimestamp,
		"message_type":      m.MessageType.String(),
		"content_type":      m.ContentType.String(),
		"response_to":       trim0x(m.ResponseTo),
		"envelope":          env,
	}
}

// lineWriter writes whole JSON lines, one writer at a time.
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

func (lw *lineWriter) error() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return fmt.Errorf("write: %v", lw.err)
	}
	return nil
}

// handle answers one request line; it never panics.
func (n *node) handle(line []byte) (reply map[string]any) {
	var head struct {
		Op string          `json:"op"`
		ID json.RawMessage `json:"id"`
	}
	defer func() {
		if p := recover(); p != nil {
			reply = map[string]any{"error": fmt.Sprintf("panic in status-go: %v", p)}
		}
		reply["type"] = "reply"
		if len(head.ID) > 0 {
			reply["id"] = head.ID
		} else {
			reply["id"] = nil
		}
	}()
	if err := json.Unmarshal(line, &head); err != nil {
		return map[string]any{"error": fmt.Sprintf("bad request: %v", err)}
	}
	if head.Op == "" {
		return map[string]any{"error": "missing op"}
	}
	o, ok := ops[head.Op]
	if !ok {
		return map[string]any{"error": fmt.Sprintf("unknown op %q", head.Op)}
	}
	reply, err := o(n, line)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	if reply == nil {
		reply = map[string]any{"ok": true}
	}
	return reply
}

func newLogger(level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log: %v", err)
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.OutputPaths, cfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	return cfg.Build()
}

func keyOrRandom(name, s string) (*ecdsa.PrivateKey, error) {
	if s == "" {
		return crypto.GenerateKey()
	}
	return decodePriv(name, s)
}

func decodePriv(name, s string) (*ecdsa.PrivateKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	k, err := crypto.ToECDSA(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return k, nil
}

func decodePub(name, s string) (*ecdsa.PublicKey, error) {
	b, err := hex.DecodeString(trim0x(s))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(b) == 33 {
		return crypto.DecompressPubkey(b)
	}
	k, err := crypto.UnmarshalPubkey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return k, nil
}

func trim0x(s string) string {
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return s[2:]
	}
	return s
}

func randomUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var errNoChat = errors.New("no such chat (open_chat or join_public first)")
