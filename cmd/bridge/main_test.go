package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
)

func TestLoadConfig_embeddedExample(t *testing.T) {
	c, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("embedded defaults: %+v", c)
	}
	checkNodeDefaults(t, c, filepath.Join("data", "nodekey"))
	checkStoreAndMailserverDefaults(t, c, filepath.Join("data", "statusgate.db"))
}

// checkStoreAndMailserverDefaults checks the store and mailserver settings an empty
// file gets, which config.example.yaml documents.
func checkStoreAndMailserverDefaults(t *testing.T, c *Config, dbPath string) {
	t.Helper()
	if s := c.Store; s.Driver != "sqlite" || s.Path != dbPath || s.DSN != "" {
		t.Errorf("store defaults: %+v, want sqlite at %s", s, dbPath)
	}
	m := c.Mailserver
	if m.Enabled == nil || !*m.Enabled || m.Password != "status-offline-inbox" || m.MinPoW == nil || *m.MinPoW != 0.000002 ||
		m.RetentionDays != 30 || m.DefaultLimit != 2000 || m.MaxLimit != 10000 || m.RequestsPerSecond != 2 || m.RequestBurst != 20 ||
		m.MaxResponseBytes != 8<<20 || m.GlobalRequestsPerSecond != 20 || m.GlobalRequestBurst != 50 {
		t.Errorf("mailserver defaults: %+v", m)
	}
	sc := m.serverConfig(nil, nil)
	if sc.Retention != 30*24*time.Hour || sc.MinPoW != 0.000002 || sc.MaxLimit != 10000 || sc.MaxResponseBytes != 8<<20 ||
		sc.GlobalRequestsPerSecond != 20 || sc.GlobalRequestBurst != 50 {
		t.Errorf("mailserver server config: %+v", sc)
	}
}

func TestLoadConfig_storeAndMailserver(t *testing.T) {
	dir := t.TempDir()
	c, err := loadConfig(writeConfig(t, "data_dir: "+dir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkStoreAndMailserverDefaults(t, c, filepath.Join(dir, "statusgate.db"))

	c, err = loadConfig(writeConfig(t, `
store:
  driver: postgres
  dsn: postgres://gate:s3cret@db.example:5432/statusgate
mailserver:
  enabled: false
  password: other
  min_pow: 0
  retention_days: 7
  default_limit: 10
  max_limit: 100
  requests_per_second: 0.5
  request_burst: 2
  max_response_bytes: 1048576
  global_requests_per_second: 3
  global_request_burst: 4
  sync_peers: ["enode://1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace24351232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439@127.0.0.1:30303"]
  sync_window_hours: 48
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Path != "" || c.Store.DSN == "" {
		t.Errorf("postgres store: %+v", c.Store)
	}
	if attrs := c.Store.LogValue().String(); strings.Contains(attrs, "s3cret") || !strings.Contains(attrs, "db.example") {
		t.Errorf("store log attributes %q: want the host and no password", attrs)
	}
	m := c.Mailserver
	if *m.Enabled {
		t.Error("mailserver.enabled: false ignored")
	}
	sc := m.serverConfig(nil, nil)
	if sc.Password != "other" || sc.MinPoW >= 0 || sc.Retention != 7*24*time.Hour || sc.DefaultLimit != 10 ||
		sc.MaxLimit != 100 || sc.RequestsPerSecond != 0.5 || sc.RequestBurst != 2 || sc.MaxResponseBytes != 1<<20 ||
		sc.GlobalRequestsPerSecond != 3 || sc.GlobalRequestBurst != 4 || sc.SyncWindow != 48*time.Hour || len(m.SyncPeers) != 1 {
		t.Errorf("mailserver server config: %+v (min_pow 0 must disable the check)", sc)
	}
}

// TestLoadConfig_nodeDefaults checks that an empty file gets the same node settings as
// the example documents, and that the key file follows data_dir.
func TestLoadConfig_nodeDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := loadConfig(writeConfig(t, "data_dir: "+dir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkNodeDefaults(t, c, filepath.Join(dir, "nodekey"))
	nc := c.Node.nodeConfig(nil)
	if nc.ZeroPoW || nc.Whisper.MinPoW != node.DefaultMinPoW || nc.Discovery.V4 || nc.Discovery.TopicsOn() || nc.Whisper.LightNode {
		t.Errorf("node config: %+v", nc)
	}
}

func checkNodeDefaults(t *testing.T, c *Config, keyFile string) {
	t.Helper()
	n := c.Node
	if n.ListenAddr != ":30303" || n.MaxPeers != 25 || n.MinPoW == nil || *n.MinPoW != 0.001 ||
		n.KeyFile != keyFile || n.MaxMessageSize != whisper.DefaultMaxMessageSize ||
		n.Discovery.V4 || n.Discovery.TopicsOn() || n.Light || n.Confirmations || n.SoftTimeErrors ||
		len(n.StaticPeers)+len(n.TrustedPeers)+len(n.BootNodes) != 0 {
		t.Errorf("node defaults: %+v (min_pow %v), want key file %s", n, n.MinPoW, keyFile)
	}
}

func TestLoadConfig_nodeSettings(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `
node:
  listen_addr: 127.0.0.1:0
  min_pow: 0
  max_peers: 3
  key_file: /tmp/elsewhere/key
  light: true
  confirmations: true
  soft_time_errors: true
  max_message_size: 2048
  protocols: [waku]
  limits:
    waku: {packets_per_second: 10, packet_burst: 20, bytes_per_second: 65536}
  waku:
    versions: [1]
`))
	if err != nil {
		t.Fatal(err)
	}
	nc := c.Node.nodeConfig(nil)
	if len(nc.Protocols) != 1 || nc.Protocols[0] != "waku" || nc.Limits["waku"].PacketsPerSecond != 10 || nc.Limits["waku"].PacketBurst != 20 ||
		nc.Limits["waku"].BytesPerSecond != 65536 || len(nc.Waku.Versions) != 1 || !nc.Whisper.TopicBloom {
		t.Errorf("protocols, limits, waku, light: %+v", nc)
	}
	if !nc.ZeroPoW || nc.Whisper.MinPoW != 0 {
		t.Errorf("min_pow 0: ZeroPoW %v, MinPoW %v", nc.ZeroPoW, nc.Whisper.MinPoW)
	}
	if nc.ListenAddr != "127.0.0.1:0" || nc.MaxPeers != 3 || c.Node.KeyFile != "/tmp/elsewhere/key" ||
		!nc.Whisper.LightNode || !nc.Whisper.Confirmations || !nc.Whisper.SoftTimeErrors || nc.Whisper.MaxMessageSize != 2048 {
		t.Errorf("node config: %+v", nc)
	}
}

func TestLoadConfig_rejects(t *testing.T) {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	good := enode.NewV4(&k.PublicKey, net.IPv4(127, 0, 0, 1), 30303, 30303).URLv4()
	cases := []rejectCase{
		{"unknown key", "data_dirr: x\n", "data_dirr"},
		{"bad level", "log: {level: loud}\n", "log.level"},
		{"bad format", "log: {format: xml}\n", "log.format"},
		{"not yaml", "data_dir: [\n", ""},
		{"unknown node key", "node: {listen: x}\n", "listen"},
		{"bad static peer", "node: {static_peers: [nope]}\n", "node.static_peers[0]"},
		{"bad trusted peer", "node: {trusted_peers: [" + good + ", 'enode://x@1.2.3.4:1']}\n", "node.trusted_peers[1]"},
		{"bad bootnode", "node: {bootnodes: [http://x]}\n", "node.bootnodes[0]"},
		{"bad listen addr", "node: {listen_addr: localhost}\n", "node.listen_addr"},
		{"negative max peers", "node: {max_peers: -1}\n", "node.max_peers"},
		{"negative min pow", "node: {min_pow: -0.5}\n", "node.min_pow"},
		{"nan min pow", "node: {min_pow: .nan}\n", "node.min_pow"},
		{"huge messages", "node: {max_message_size: 20000000}\n", "node.max_message_size"},
		{"unknown protocol", "node: {protocols: [shh, les]}\n", "node.protocols[1]"},
		{"no protocol", "node: {protocols: []}\n", "node.protocols"},
		{"limits of no protocol", "node: {limits: {eth: {}}}\n", "node.limits.eth"},
		{"negative waku limit", "node: {limits: {waku: {packets_per_second: -1}}}\n", "node.limits.waku"},
		{"unknown limits key", "node: {limits: {waku: {pps: 1}}}\n", "pps"},
		{"waku version 2", "node: {waku: {versions: [2]}}\n", "node.waku.versions[0]"},
		{"bad store driver", "store: {driver: mysql}\n", "store.driver"},
		{"postgres without dsn", "store: {driver: postgres}\n", "store.dsn"},
		{"postgres with path", "store: {driver: postgres, dsn: 'host=x', path: /x.db}\n", "store.path"},
		{"sqlite with dsn", "store: {dsn: 'host=x'}\n", "store.dsn"},
		{"blank store path", "store: {path: ' '}\n", "store.path"},
		{"unknown store key", "store: {file: x}\n", "file"},
		{"blank password", "mailserver: {password: ' '}\n", "mailserver.password"},
		{"negative mailserver pow", "mailserver: {min_pow: -1}\n", "mailserver.min_pow"},
		{"negative retention", "mailserver: {retention_days: -1}\n", "mailserver.retention_days"},
		{"default above max", "mailserver: {default_limit: 20, max_limit: 10}\n", "mailserver.default_limit"},
		{"negative rate", "mailserver: {requests_per_second: -1}\n", "mailserver.requests_per_second"},
		{"negative burst", "mailserver: {request_burst: -1}\n", "mailserver.request_burst"},
		{"tiny response budget", "mailserver: {max_response_bytes: 1000}\n", "mailserver.max_response_bytes"},
		{"negative global rate", "mailserver: {global_requests_per_second: -1}\n", "mailserver.global_requests_per_second"},
		{"negative global burst", "mailserver: {global_request_burst: -1}\n", "mailserver.global_request_burst"},
		{"bad sync peer", "mailserver: {sync_peers: [http://x]}\n", "mailserver.sync_peers[0]"},
		{"negative sync window", "mailserver: {sync_window_hours: -1}\n", "mailserver.sync_window_hours"},
		{"unknown mailserver key", "mailserver: {enable: true}\n", "enable"},
	}
	checkRejects(t, cases)
}

func TestRun_commands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "statusgate ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	if code := run(context.Background(), nil, nil, &out, &errb); code != exitUsage {
		t.Errorf("no args: %d", code)
	}
	if code := run(context.Background(), []string{"nope"}, nil, &out, &errb); code != exitUsage {
		t.Errorf("unknown command: %d", code)
	}
	if code := run(context.Background(), []string{"run", "-config", "/nonexistent.yaml"}, nil, &out, &errb); code != exitConfig {
		t.Errorf("missing config: %d", code)
	}
}

// TestRun_nodeStartsAndStops runs the gateway on a fresh data dir until its node
// listens, checks what it created, then cancels and waits for a clean exit.
func TestRun_nodeStartsAndStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := writeConfig(t, "data_dir: "+dir+"\nnode:\n  listen_addr: 127.0.0.1:0\n  min_pow: 0\n")
	logs := newLogWatch("node started")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"run", "-config", p}, nil, &bytes.Buffer{}, logs) }()

	select {
	case <-logs.seen:
	case c := <-code:
		t.Fatalf("run exited with %d before the node started:\n%s", c, logs)
	case <-time.After(startupTimeout):
		t.Fatalf("node not started within %v:\n%s", startupTimeout, logs)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v %v", st, err)
	}
	keyFile := filepath.Join(dir, "nodekey")
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("node key mode %v, want 0600", st.Mode().Perm())
	}
	key, err := node.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "statusgate.db")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("SQLite store not created under the data dir: %v %v", st, err)
	}
	out := logs.String()
	if !strings.Contains(out, "mailserver on") || !strings.Contains(out, "driver=sqlite") {
		t.Errorf("store and mailserver not logged as on:\n%s", out)
	}
	if !strings.Contains(out, `enode="enode://`) {
		t.Errorf("enode URL not logged:\n%s", out)
	}
	if priv := hex.EncodeToString(crypto.FromECDSA(key)); strings.Contains(out, priv) {
		t.Error("the private key appears in the log")
	}

	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("run: exit %d:\n%s", c, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10 s of cancel")
	}
	if !strings.Contains(logs.String(), "node stopped") {
		t.Errorf("no clean stop logged:\n%s", logs)
	}
}

func TestRun_refusesExposedNodeKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "nodekey")
	if err := os.WriteFile(key, []byte(strings.Repeat("11", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	p := writeConfig(t, "data_dir: "+dir+"\nnode: {listen_addr: '127.0.0.1:0'}\n")
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"run", "-config", p}, nil, &bytes.Buffer{}, &errb); code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(errb.String(), "chmod 600") {
		t.Errorf("error does not say how to fix the key file: %s", errb.String())
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logWatch collects log output from the gateway's goroutines and closes seen when the
// output first contains want.
type logWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func newLogWatch(want string) *logWatch {
	return &logWatch{want: want, seen: make(chan struct{})}
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case <-w.seen:
	default:
		if strings.Contains(w.buf.String(), w.want) {
			close(w.seen)
		}
	}
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
