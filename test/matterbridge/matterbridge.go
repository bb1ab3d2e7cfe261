// Package matterbridge runs matterbridge (github.com/42wim/matterbridge, the relay loop
// users pick to join IRC, Slack, Matrix and others) as a separate process on 127.0.0.1,
// for the anchor benchmark beside our gateway (test/anchor): Start writes a TOML
// configuration relaying one IRC channel and matterbridge's own HTTP `api` bridge,
// starts the process and waits until it logs that its gateway relays; Post and Stream
// speak that api bridge.
//
// The binary is built from the pinned module on first use and cached by version
// outside the repository (see BinDir), under an exclusive file lock, so parallel test
// binaries build once; none of matterbridge's code is committed here. The module cannot
// be required by ours: the module proxy refuses one of its requirements
// (gomod.garykim.dev/nc-talk v0.3.0, its Nextcloud Talk bridge: 403), so it cannot be
// tidied. It is built like test/homeserver builds Dendrite: `go mod download` of the
// module, then `go build -tags nonctalk …` inside its directory with -mod=mod. A cold
// build takes about 105 s (75 s of CPU) on the 2-core machine with the modules already
// downloaded, which is why the package's smoke test runs from `make bench`, not `make
// test` (it is behind the build tag "anchor").
//
// It must not be imported by non-test code. A failed build fails the caller; it never
// skips silently.
package matterbridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/statusgate/statusgate/test/buildonce"
	"github.com/statusgate/statusgate/test/freeport"
)

// Version is the pinned matterbridge release (module github.com/42wim/matterbridge).
const Version = "v1.26.0"

// Module is matterbridge's module path.
const Module = "github.com/42wim/matterbridge"

// Tags are the build tags: nonctalk leaves out the Nextcloud Talk bridge, whose module
// the proxy refuses (without it the build cannot load its packages); the others leave
// out bridges no harness configures, which halves the cold build. The IRC, api, Matrix
// and Slack bridges stay.
const Tags = "nonctalk nodiscord nogitter noharmony nokeybase nomattermost nomsteams nomumble " +
	"norocketchat nosshchat nosteam notelegram novk nowhatsapp noxmpp nozulip"

// startTimeout bounds the wait for matterbridge to log that it relays (it connects to
// IRC and waits for the server's end of MOTD before it joins).
const startTimeout = 60 * time.Second

// readyLine ends what matterbridge logs once every bridge of its gateways is connected
// and joined ("Gateway(s) started succesfully. Now relaying messages", spelt so).
const readyLine = "Now relaying messages"

// BinDir returns the directory holding the cached binary: $STATUSGATE_MATTERBRIDGE_DIR
// if set, else <user cache dir>/statusgate/matterbridge-<Version>
// (~/.cache/statusgate/matterbridge-v1.26.0 on Linux).
func BinDir() (string, error) {
	if d := os.Getenv("STATUSGATE_MATTERBRIDGE_DIR"); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find user cache dir: %w", err)
	}
	return filepath.Join(c, "statusgate", "matterbridge-"+Version), nil
}

// Binary returns the path of the matterbridge binary after making sure BinDir holds
// it, building it if not. An exclusive flock on BinDir+".lock" serialises builders
// across processes: the first builds, the others wait and reuse.
func Binary(t testing.TB) string {
	t.Helper()
	dir, err := BinDir()
	if err != nil {
		t.Fatalf("matterbridge: %v", err)
	}
	bin := filepath.Join(dir, "matterbridge")
	start := time.Now()
	built, err := buildonce.Do(dir+".lock", func() bool { return buildonce.Executable(bin) }, func() error {
		t.Logf("matterbridge: building %s into %s (about 105 s cold, once per machine)", Version, dir)
		return build(dir)
	})
	if err != nil {
		t.Fatalf("matterbridge: build %s: %v", Version, err)
	}
	if built {
		t.Logf("matterbridge: built in %s", time.Since(start).Round(time.Second))
	}
	return bin
}

// build downloads the pinned module and builds it into a temporary sibling of dir,
// then renames that into place, so an interrupted build leaves no half cache.
func build(dir string) error {
	work, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// -mod=mod: the module zip has no vendor tree (only vendor/modules.txt), so the build
	// resolves its requirements from go.mod and go.sum; GOWORK=off: outside any workspace.
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	dl := exec.Command("go", "mod", "download", "-json", Module+"@"+Version)
	dl.Dir, dl.Env = work, env // outside any module: a plain module download
	out, err := dl.Output()
	if err != nil {
		return fmt.Errorf("go mod download: %w: %s", err, stderrOf(err))
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download: no module dir (%v %s)", err, mod.Error)
	}
	bin := filepath.Join(work, "bin")
	cmd := exec.Command("go", "build", "-tags", Tags, "-o", filepath.Join(bin, "matterbridge"), ".")
	cmd.Dir, cmd.Env = mod.Dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	_ = os.RemoveAll(dir)
	return os.Rename(bin, dir)
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// Config is what the harness relays: one IRC channel and the api bridge, in one
// matterbridge gateway.
type Config struct {
	// IRCServer is the IRC server, "127.0.0.1:port".
	IRCServer string
	// IRCChannel is the relayed channel, such as "#anchor".
	IRCChannel string
	// Nick is matterbridge's IRC nick. Default "matterbridge".
	Nick string
	// MessageDelay is the IRC bridge's pause between two lines it writes, in
	// milliseconds: matterbridge's flood control (default 1300; 0 here means 1, the
	// smallest it takes, since it reads 0 as its default).
	MessageDelay int
	// MessageQueue is how many lines the IRC bridge queues before it drops what comes
	// (matterbridge's default 30). Default here 20,000.
	MessageQueue int
	// Token is the api bridge's bearer token. Default "anchor-token".
	Token string
}

// Gateway is the name of the harness's matterbridge gateway: api POSTs name it.
const Gateway = "anchor"

// RemoteNickFormat is how matterbridge prefixes a relayed line on IRC: the api user
// "alice" writes "[api] <alice> text".
const RemoteNickFormat = "[{PROTOCOL}] <{NICK}> "

func (c *Config) withDefaults() {
	if c.Nick == "" {
		c.Nick = "matterbridge"
	}
	if c.MessageDelay <= 0 {
		c.MessageDelay = 1
	}
	if c.MessageQueue <= 0 {
		c.MessageQueue = 20_000
	}
	if c.Token == "" {
		c.Token = "anchor-token"
	}
}

// toml renders the configuration; apiAddr is the api bridge's listen address.
func (c Config) toml(apiAddr string) string {
	var b strings.Builder
	b.WriteString("[general]\nMediaDownloadSize=0\n\n")
	fmt.Fprintf(&b, "[irc.anchor]\nServer=%q\nNick=%q\nMessageDelay=%d\nMessageQueue=%d\n", c.IRCServer, c.Nick, c.MessageDelay, c.MessageQueue)
	fmt.Fprintf(&b, "RemoteNickFormat=%q\nColorNicks=false\nNoSendJoinPart=true\nMessageSplit=true\n\n", RemoteNickFormat)
	fmt.Fprintf(&b, "[api.anchor]\nBindAddress=%q\nToken=%q\nBuffer=1000\nRemoteNickFormat=\"{NICK}\"\n\n", apiAddr, c.Token)
	fmt.Fprintf(&b, "[[gateway]]\nname=%q\nenable=true\n\n", Gateway)
	fmt.Fprintf(&b, "[[gateway.inout]]\naccount=\"irc.anchor\"\nchannel=%q\n\n", c.IRCChannel)
	b.WriteString("[[gateway.inout]]\naccount=\"api.anchor\"\nchannel=\"api\"\n")
	return b.String()
}

// Process is one running matterbridge. Its methods are safe for concurrent use.
type Process struct {
	t       testing.TB
	cfg     Config
	apiAddr string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	client  *http.Client

	mu  sync.Mutex
	err error // the process's exit, once done
}

// Start runs matterbridge on cfg and waits until it logs that it relays, failing t if
// it exits first or startTimeout passes. The process is killed in t.Cleanup.
func Start(t testing.TB, cfg Config) *Process {
	t.Helper()
	cfg.withDefaults()
	bin := Binary(t)
	dir := t.TempDir()
	p := &Process{t: t, cfg: cfg, apiAddr: freeport.Addr(t), logPath: filepath.Join(dir, "matterbridge.log"),
		done: make(chan struct{}), client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	conf := filepath.Join(dir, "matterbridge.toml")
	if err := os.WriteFile(conf, []byte(cfg.toml(p.apiAddr)), 0o600); err != nil {
		t.Fatalf("matterbridge: write config: %v", err)
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatalf("matterbridge: create log: %v", err)
	}
	out, w, err := os.Pipe()
	if err != nil {
		logf.Close()
		t.Fatalf("matterbridge: pipe: %v", err)
	}
	p.cmd = exec.Command(bin, "-conf", conf)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		out.Close()
		w.Close()
		t.Fatalf("matterbridge: start: %v", err)
	}
	ready := make(chan struct{})
	copied := make(chan struct{})
	go func() { // copies the output into the log until the process's pipe closes
		defer close(copied)
		defer logf.Close()
		defer out.Close()
		var once sync.Once
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if strings.Contains(line, readyLine) {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { // reaps the process; every path waits on done
		err := p.cmd.Wait()
		w.Close()
		<-copied
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(p.Stop)
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("matterbridge exited before relaying: %v\n%s", p.exitErr(), p.Log())
	case <-timer.C:
		t.Fatalf("matterbridge did not log %q within %v:\n%s", readyLine, startTimeout, p.Log())
	}
	return p
}

func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop kills matterbridge (SIGKILL) and waits for it to exit. Stopping a stopped
// process does nothing.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Pid returns the process ID, for CPU and memory readings under /proc.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Log returns matterbridge's output so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// APIAddr returns the api bridge's "127.0.0.1:port".
func (p *Process) APIAddr() string { return p.apiAddr }

// Message is one message of matterbridge's api bridge (its config.Message, the fields
// the harness reads).
type Message struct {
	Text     string `json:"text"`
	Channel  string `json:"channel"`
	Username string `json:"username"`
	Account  string `json:"account"`
	Event    string `json:"event"`
	Protocol string `json:"protocol"`
	Gateway  string `json:"gateway"`
}

// Post sends text into the gateway as the api user username (POST /api/message with
// the bearer token), as a program using matterbridge's api would.
func (p *Process) Post(ctx context.Context, username, text string) error {
	body, err := json.Marshal(map[string]string{"text": text, "username": username, "gateway": Gateway})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.apiAddr+"/api/message", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("matterbridge api: POST: %w", err)
	}
	defer resp.Body.Close()
	var sink [512]byte
	for {
		if _, err := resp.Body.Read(sink[:]); err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("matterbridge api: POST: %s", resp.Status)
	}
	return nil
}

// Token returns the api bridge's bearer token.
func (p *Process) Token() string { return p.cfg.Token }

// Stream reads the api bridge's websocket (/api/websocket: matterbridge broadcasts
// every message the gateway relays to the api there as it sends it) and calls fn with
// each relayed message and the time it was read, from one goroutine, until the test
// ends. It returns once the greeting (event "api_connected") arrived, so nothing
// relayed after it is missed. matterbridge's other reader, /api/stream, hands out one
// message each 200 ms (a sleep in its loop), so it cannot carry a benchmark.
func (p *Process) Stream(t testing.TB, fn func(Message, time.Time)) {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+p.cfg.Token)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.Dial("ws://"+p.apiAddr+"/api/websocket", h)
	if err != nil {
		t.Fatalf("matterbridge api: websocket: %v", err)
	}
	resp.Body.Close()
	greeted := make(chan error, 1)
	done := make(chan struct{})
	go func() { // ends when the connection is closed (cleanup) or fails
		defer close(done)
		first := true
		for {
			_, data, err := conn.ReadMessage()
			now := time.Now()
			if err != nil {
				if first {
					greeted <- err
				}
				return
			}
			var m Message
			if err := json.Unmarshal(data, &m); err != nil {
				m.Text = fmt.Sprintf("(undecodable message %q: %v)", data, err)
			}
			if first {
				first = false
				if m.Event != "api_connected" {
					greeted <- fmt.Errorf("first websocket message %q, want the api_connected greeting", data)
					return
				}
				greeted <- nil
				continue
			}
			fn(m, now)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	select {
	case err := <-greeted:
		if err != nil {
			t.Fatalf("matterbridge api: websocket: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("matterbridge api: no websocket greeting within 10 s")
	}
}
