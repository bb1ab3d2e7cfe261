package anchor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/freeport"
)

// bridgeBuild builds ./cmd/bridge once per test binary, into buildDir (removed by
// TestMain). Built lazily: `go test ./...` runs this package without benchmarks and
// must not pay for a link.
var (
	buildOnce sync.Once
	buildDir  string
	bridgeBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func bridgeBinary(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "statusgate-anchor-"); buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "bridge")
		cmd := exec.Command(goTool(), "build", "-o", bin, "github.com/statusgate/statusgate/cmd/bridge")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/bridge: %v\n%s", err, out)
			return
		}
		bridgeBin = bin
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return bridgeBin
}

// goTool returns the go command of the toolchain running the benchmark.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// ours is one `bridge run` process: a route between the Status chat #anchor, the api
// channel api:anchor and the IRC channel, on the product's defaults except the flood
// controls (below).
type ours struct {
	dir      string
	apiAddr  string
	httpAddr string
	token    string
	cmd      *exec.Cmd
	done     chan struct{}
	client   *http.Client
}

// ourNick is our gateway's IRC nick.
const ourNick = "statusgate"

// startOurs writes the configuration, runs `bridge init -keys` and `bridge run`, and
// waits for /readyz. The flood controls are opened as far as matterbridge's are
// (it has none at ingest, and its IRC writer's delay is set to its smallest): the
// gateway's per-sender rate_limit off, the api connector's rate_limit off, and the
// IRC connector's token bucket at 10⁶ lines a second. Everything else is the
// product's default: the node (no peers) posts every message into Status as both
// payload formats at its PoW, the mailserver archives them, and the SQLite ledger
// (WAL, synchronous FULL) records each event and delivery before it is acknowledged.
func startOurs(b *testing.B, ircAddr, channel string) *ours {
	b.Helper()
	bin := bridgeBinary(b)
	dir := b.TempDir()
	o := &ours{dir: dir, apiAddr: freeport.Addr(b), httpAddr: freeport.Addr(b), done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	cfgPath := filepath.Join(dir, "statusgate.yaml")
	var c strings.Builder
	fmt.Fprintf(&c, "data_dir: %s\nlog:\n  level: info\n", strconv.Quote(filepath.Join(dir, "data")))
	fmt.Fprintf(&c, "node:\n  listen_addr: %s\n  static_peers: []\n", strconv.Quote(freeport.Addr(b)))
	c.WriteString("gateway:\n  rate_limit:\n    disabled: true\n")
	fmt.Fprintf(&c, "  routes:\n    - chat: anchor\n      channels:\n        - channel: \"api:anchor\"\n        - channel: %s\n",
		strconv.Quote("bench:"+channel))
	fmt.Fprintf(&c, "http:\n  listen: %s\n", strconv.Quote(o.httpAddr))
	fmt.Fprintf(&c, "connectors:\n  api:\n    enabled: true\n    listen: %s\n    rate_limit: {disabled: true}\n", strconv.Quote(o.apiAddr))
	fmt.Fprintf(&c, "  irc:\n    - name: bench\n      server: %s\n      nick: %s\n      channels:\n        - name: %s\n",
		strconv.Quote(ircAddr), ourNick, strconv.Quote(channel))
	c.WriteString("      flood_rate: 1000000\n      flood_burst: 1000000\n")
	if err := os.WriteFile(cfgPath, []byte(c.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(bin, "init", "-keys", "-config", cfgPath).CombinedOutput(); err != nil {
		b.Fatalf("bridge init -keys: %v\n%s", err, out)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "data", "api.token"))
	if err != nil {
		b.Fatal(err)
	}
	o.token = strings.TrimSpace(string(tok))
	logf, err := os.Create(filepath.Join(dir, "bridge.log"))
	if err != nil {
		b.Fatal(err)
	}
	o.cmd = exec.Command(bin, "run", "-config", cfgPath)
	o.cmd.Stdout, o.cmd.Stderr = logf, logf
	if err := o.cmd.Start(); err != nil {
		logf.Close()
		b.Fatalf("bridge run: %v", err)
	}
	go func() { // reaps the process; every path waits on done
		_ = o.cmd.Wait()
		logf.Close()
		close(o.done)
	}()
	b.Cleanup(func() { _ = o.cmd.Process.Kill(); <-o.done })
	o.waitReady(b)
	return o
}

// waitReady polls /readyz (a separate process's readiness has no other signal) until
// it answers 200: every connector connected.
func (o *ours) waitReady(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := o.client.Get("http://" + o.httpAddr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		if time.Now().After(deadline) {
			b.Fatalf("bridge not ready within 60 s: %v\n%s", err, o.log())
		}
		select {
		case <-o.done:
			b.Fatalf("bridge run exited before it was ready\n%s", o.log())
		case <-tick.C:
		}
	}
}

func (o *ours) log() string {
	buf, _ := os.ReadFile(filepath.Join(o.dir, "bridge.log"))
	if len(buf) > 8000 {
		buf = buf[len(buf)-8000:]
	}
	return string(buf)
}

func (o *ours) name() string    { return "statusgate" }
func (o *ours) pid() int        { return o.cmd.Process.Pid }
func (o *ours) ircNick() string { return ourNick }

// post POSTs text into api:anchor as the api user user; the api connector answers 202
// once the gateway has recorded the event.
func (o *ours) post(ctx context.Context, user, text string) error {
	body, err := json.Marshal(map[string]string{"user": user, "text": text})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+o.apiAddr+"/v1/channels/anchor/messages", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+o.token)
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST: %s", resp.Status)
	}
	return nil
}

// stream follows api:anchor's SSE stream and calls fn with each message event's text
// and the time it was read, from one goroutine, until the benchmark ends.
func (o *ours) stream(b *testing.B, fn func(text string, at time.Time)) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+o.apiAddr+"/v1/channels/anchor/events", nil)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+o.token)
	resp, err := http.DefaultClient.Do(req) // no timeout: the stream is long-lived
	if err != nil {
		cancel()
		b.Fatalf("GET events: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		b.Fatalf("GET events: %s", resp.Status)
	}
	done := make(chan struct{})
	go func() { // ends when the body is closed (cleanup) or the stream ends
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		var event string
		var data []byte
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case len(line) == 0:
				if event == "message" && data != nil {
					var ev struct {
						Text string `json:"text"`
					}
					if json.Unmarshal(data, &ev) == nil {
						fn(ev.Text, time.Now())
					}
				}
				event, data = "", nil
			case strings.HasPrefix(string(line), "event: "):
				event = string(line[len("event: "):])
			case strings.HasPrefix(string(line), "data: "):
				data = append(data, line[len("data: "):]...)
			}
		}
	}()
	b.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
}
