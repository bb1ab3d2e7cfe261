package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/test/freeport"
)

const (
	// readyTimeout bounds a gateway start (store, node, chat join, api listen).
	readyTimeout = 30 * time.Second
	// exitTimeout bounds a gateway stop after SIGTERM, and a run expected to fail.
	exitTimeout = 30 * time.Second
	// logTail is how many lines of the gateway's log a failing test prints.
	logTail = 80
	// pollEvery is the polling interval of every wait in this package.
	pollEvery = 50 * time.Millisecond
)

// gatewayOptions are the settings of one gateway's generated configuration.
type gatewayOptions struct {
	peers []string // node.static_peers
	// trustedPeers is node.trusted_peers: mailservers the gateway catches up from.
	trustedPeers []string
	// apiListen is connectors.api.listen; "" picks a free port.
	apiListen string
	// sendFormat is gateway.send_format; "" leaves the default.
	sendFormat string
	// storeMaxBytes is store.max_bytes; 0 leaves the default (no cap).
	storeMaxBytes int64
	// dataDir is data_dir (where the database lives too); "" is "data" in the test's
	// temp dir.
	dataDir string
	// apiUnlimited turns the api connector's rate limit off (connectors.api.rate_limit:
	// 20 POSTs at once per user, then 1/s), for tests that post as fast as they can.
	apiUnlimited bool
	// retryMax is gateway.retry_max (the longest back-off between a connector's
	// sessions, and between delivery attempts); 0 leaves the default (5 min).
	retryMax time.Duration
}

// gateway is one gateway data dir and configuration, run as `bridge run` processes one
// at a time: start, stop (SIGTERM) or kill (SIGKILL), and start again on the same state.
type gateway struct {
	dir      string // the test's temp dir: config, data dir, log
	cfgPath  string
	dataDir  string
	logPath  string
	apiAddr  string
	httpAddr string
	token    string

	proc *process // the running process; nil when none
	runs int
}

// process is one `bridge run`.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // cmd.Wait's result; read after done
}

// newGateway writes a configuration in a fresh temp dir and runs `bridge init -keys` on
// it. It starts nothing; t's cleanup kills a process still running and, when t failed,
// prints the tail of the log.
func newGateway(t *testing.T, opts gatewayOptions) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{
		dir:      dir,
		cfgPath:  filepath.Join(dir, "statusgate.yaml"),
		dataDir:  cmp.Or(opts.dataDir, filepath.Join(dir, "data")),
		logPath:  filepath.Join(dir, "bridge.log"),
		apiAddr:  opts.apiListen,
		httpAddr: freeAddr(t),
	}
	if g.apiAddr == "" {
		g.apiAddr = freeAddr(t)
	}
	writeFile(t, g.cfgPath, g.config(freeAddr(t), opts))
	out, code := runBridge(t, "init", "-keys", "-config", g.cfgPath)
	if code != 0 {
		t.Fatalf("bridge init -keys: exit %d\n%s", code, out)
	}
	for _, f := range []string{"nodekey", "gateway.secret", "api.token"} {
		if !strings.Contains(out, filepath.Join(g.dataDir, f)) {
			t.Fatalf("bridge init -keys did not report creating %s:\n%s", f, out)
		}
	}
	tok, err := os.ReadFile(filepath.Join(g.dataDir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	g.token = strings.TrimSpace(string(tok))
	t.Cleanup(func() {
		if g.proc != nil {
			g.proc.cmd.Process.Kill()
			<-g.proc.done
			g.proc = nil
		}
		if t.Failed() {
			t.Logf("last %d lines of %s:\n%s", logTail, g.logPath, g.tail(logTail))
		}
	})
	return g
}

// config is the YAML of the gateway: one route, Status #status ↔ api:status.
func (g *gateway) config(nodeAddr string, opts gatewayOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\n", strconv.Quote(g.dataDir))
	b.WriteString("log:\n  level: info\n")
	b.WriteString("node:\n")
	fmt.Fprintf(&b, "  listen_addr: %s\n", strconv.Quote(nodeAddr))
	b.WriteString("  static_peers:\n")
	for _, p := range opts.peers {
		fmt.Fprintf(&b, "    - %s\n", strconv.Quote(p))
	}
	if len(opts.peers) == 0 {
		b.WriteString("    []\n")
	}
	if len(opts.trustedPeers) > 0 {
		b.WriteString("  trusted_peers:\n")
		for _, p := range opts.trustedPeers {
			fmt.Fprintf(&b, "    - %s\n", strconv.Quote(p))
		}
	}
	if opts.storeMaxBytes > 0 {
		fmt.Fprintf(&b, "store:\n  max_bytes: %d\n", opts.storeMaxBytes)
	}
	b.WriteString("mailserver:\n  enabled: true\n")
	b.WriteString("gateway:\n")
	if opts.sendFormat != "" {
		fmt.Fprintf(&b, "  send_format: %s\n", opts.sendFormat)
	}
	if opts.retryMax > 0 {
		fmt.Fprintf(&b, "  retry_max: %s\n", opts.retryMax)
	}
	b.WriteString("  routes:\n    - chat: status\n      channels:\n        - channel: \"api:status\"\n")
	fmt.Fprintf(&b, "http:\n  listen: %s\n", strconv.Quote(g.httpAddr))
	fmt.Fprintf(&b, "connectors:\n  api:\n    enabled: true\n    listen: %s\n", strconv.Quote(g.apiAddr))
	if opts.apiUnlimited {
		b.WriteString("    rate_limit: {disabled: true}\n")
	}
	return b.String()
}

// secret reads the gateway secret `bridge init` created.
func (g *gateway) secret(t *testing.T) *identity.Secret {
	t.Helper()
	return readSecret(t, filepath.Join(g.dataDir, "gateway.secret"))
}

func readSecret(t *testing.T, path string) *identity.Secret {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := identity.ParseSecret(string(b))
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return s
}

// start starts `bridge run` on the configuration, its output appended to the log.
func (g *gateway) start(t *testing.T) {
	t.Helper()
	if g.proc != nil {
		t.Fatal("gateway already running")
	}
	g.runs++
	f, err := os.OpenFile(g.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "=== e2e: bridge run #%d at %s\n", g.runs, time.Now().Format(time.RFC3339Nano))
	p := &process{cmd: exec.Command(bridgeBin, "run", "-config", g.cfgPath), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start bridge run: %v", err)
	}
	go func() { // ends when the process exits; every path waits on done
		p.err = p.cmd.Wait()
		fmt.Fprintf(f, "=== e2e: bridge run #%d exited: %v\n", g.runs, p.err)
		f.Close()
		close(p.done)
	}()
	g.proc = p
}

// waitReady waits until /readyz answers 200, failing t when the process exits first or
// readyTimeout passes.
func (g *gateway) waitReady(t *testing.T) readiness {
	t.Helper()
	var last readiness
	var lastCode int
	var lastErr error
	ok := g.poll(t, readyTimeout, func() bool {
		last, lastCode, lastErr = g.readyz()
		return lastCode == http.StatusOK
	})
	if !ok {
		t.Fatalf("gateway not ready within %v: last /readyz %d %+v (%v)", readyTimeout, lastCode, last, lastErr)
	}
	return last
}

// poll calls cond every pollEvery until it returns true (true), timeout passes (false)
// or the process exits (fails t).
func (g *gateway) poll(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		var exited chan struct{} // nil (never ready) when no process runs
		if g.proc != nil {
			exited = g.proc.done
		}
		select {
		case <-exited:
			t.Fatalf("bridge run exited unexpectedly: %v", g.proc.err)
		case <-time.After(pollEvery):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit (status 0).
func (g *gateway) stop(t *testing.T) {
	t.Helper()
	p := g.proc
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		t.Fatalf("bridge run did not exit within %v of SIGTERM", exitTimeout)
	}
	g.proc = nil
	if p.err != nil {
		t.Fatalf("bridge run after SIGTERM: %v, want exit status 0", p.err)
	}
}

// kill kills the process (SIGKILL) and waits for it.
func (g *gateway) kill(t *testing.T) {
	t.Helper()
	p := g.proc
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-p.done
	g.proc = nil
}

// tail returns the last n lines of the log.
func (g *gateway) tail(n int) string {
	b, err := os.ReadFile(g.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readiness is the body of /readyz.
type readiness struct {
	Ready      bool                      `json:"ready"`
	Gateway    bool                      `json:"gateway"`
	Peers      int                       `json:"peers"`
	Connectors map[string]connectorReady `json:"connectors"`
	Queues     map[string]int64          `json:"queues"`
}

type connectorReady struct {
	State string `json:"state"`
	Error string `json:"error"`
}

var adminClient = &http.Client{Timeout: 5 * time.Second}

// readyz fetches /readyz.
func (g *gateway) readyz() (readiness, int, error) {
	var r readiness
	resp, err := adminClient.Get("http://" + g.httpAddr + "/readyz")
	if err != nil {
		return r, 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, resp.StatusCode, fmt.Errorf("decode /readyz: %w", err)
	}
	return r, resp.StatusCode, nil
}

// waitPeer waits until the gateway and ref each count the other as a peer.
func (g *gateway) waitPeer(t *testing.T, sp *statusPeer) {
	t.Helper()
	var r readiness
	ok := g.poll(t, readyTimeout, func() bool {
		r, _, _ = g.readyz()
		if r.Peers < 1 {
			return false
		}
		ids, err := sp.ref.Peers()
		return err == nil && len(ids) > 0
	})
	if !ok {
		t.Fatalf("gateway and reference node not peered within %v (gateway peers %d)", readyTimeout, r.Peers)
	}
}

// metrics fetches /metrics and returns the samples of family name: labels → value.
func (g *gateway) metrics(t *testing.T, name string) map[string]float64 {
	t.Helper()
	resp, err := adminClient.Get("http://" + g.httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		series, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		labels := strings.TrimPrefix(series, name)
		if labels != "" && labels[0] != '{' { // another family sharing the prefix
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[labels] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	return out
}

// postBody is the JSON body of POST /v1/channels/{name}/messages.
type postBody struct {
	User    string `json:"user"`
	Name    string `json:"name,omitempty"`
	Text    string `json:"text"`
	ID      string `json:"id,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
}

var apiClient = &http.Client{Timeout: 15 * time.Second}

// post posts raw to channel's messages endpoint with token and returns the status code
// and body.
func (g *gateway) post(ctx context.Context, channel, token string, raw []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.apiAddr+"/v1/channels/"+channel+"/messages", bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// mustPost posts m to api:status and fails t unless it is accepted (202).
func (g *gateway) mustPost(t *testing.T, m postBody) {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := g.post(context.Background(), "status", g.token, raw)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("POST %+v: %d %s (%v), want 202", m, code, body, err)
	}
}

// wireEvent is the data of one SSE event of the api connector.
type wireEvent struct {
	Seq    string `json:"-"` // the SSE id line
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Origin struct {
		Network string `json:"network"`
		Channel string `json:"channel"`
		ID      string `json:"id"`
	} `json:"origin"`
	Sender struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"sender"`
	Text string `json:"text"`
}

// subscribe follows channel's SSE stream from the start of the replay ring
// (Last-Event-ID: 0) until the test ends; every message event is sent on the returned
// channel. The stream must open with 200 and text/event-stream.
func (g *gateway) subscribe(t *testing.T, channel string) <-chan wireEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.apiAddr+"/v1/channels/"+channel+"/events", nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req) // no timeout: the stream is long-lived
	if err != nil {
		cancel()
		t.Fatalf("GET events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		t.Fatalf("GET events: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	events := make(chan wireEvent, 1024)
	done := make(chan struct{})
	go func() { // ends when the body is closed (cleanup) or the stream ends
		defer close(done)
		defer close(events)
		readSSE(resp.Body, func(id, event string, data []byte) bool {
			if event != "message" {
				return true
			}
			var ev wireEvent
			if err := json.Unmarshal(data, &ev); err != nil {
				ev.Text = fmt.Sprintf("(undecodable event %q: %v)", data, err)
			}
			ev.Seq = id
			select {
			case events <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return events
}

// readSSE parses a text/event-stream, calling fn for each event until fn returns false
// or the stream ends.
func readSSE(r io.Reader, fn func(id, event string, data []byte) bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	var id, event string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil && !fn(id, event, data) {
				return
			}
			id, event, data = "", "", nil
		case strings.HasPrefix(line, ":"): // comment (ping)
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):]...)
		}
	}
}

// waitEvent returns the first event of events that matches, failing t after timeout.
func waitEvent(t *testing.T, events <-chan wireEvent, timeout time.Duration, what string, match func(wireEvent) bool) wireEvent {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("SSE stream ended before %s; seen %q", what, seen)
			}
			if match(ev) {
				return ev
			}
			seen = append(seen, ev.Text)
		case <-timer.C:
			t.Fatalf("no SSE event %s within %v; seen %q", what, timeout, seen)
		}
	}
}

// runBridge runs the bridge binary with args to completion (at most exitTimeout) and
// returns its combined output and exit code.
func runBridge(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bridgeBin, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("bridge %v did not exit within %v; output:\n%s", args, exitTimeout, out)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("bridge %v: %v", args, err)
		return "", -1
	}
}

// freeAddr returns a loopback TCP address reserved for this test process.
func freeAddr(t *testing.T) string { return freeport.Addr(t) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
