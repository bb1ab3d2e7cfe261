package onnode

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/api"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

// Gateway benchmarks: the whole product path in one process, over real transports.
//
//   - two test/statusnet nodes connected over RLPx on loopback, both with ZeroPoW (they
//     require no PoW, so the senders' PoW settings alone decide the sealing cost);
//   - on node A the gateway, with a SQLite ledger in b.TempDir() as store.Open sets it
//     (WAL, synchronous FULL), the real puppet registry on that store and the real
//     bridges/api connector on 127.0.0.1:0, one route: chat "status" ⇄ api:status;
//   - on node B a Status user (core/status, default SendFormat both: every message is
//     one Transit and one protobuf envelope, as 2019–2020 clients send).
//
// Messages are offered at benchRate, paced by time (message i is due at start + i/rate;
// a sender that falls behind sends at once). Each latency includes one Whisper hop,
// which waits for the sending node's next 300 ms transmission cycle (uniform 0–300 ms,
// 150 ms on average): that hop is the protocol's, not the gateway's. Timings are
// reported as metrics only; a benchmark fails only when messages are lost.

// benchRate is the offered load, messages per second, of the headline figures;
// benchRates are the offered loads of the throughput curves (make bench plots them).
const benchRate = 2000

var benchRates = []int{500, 1000, 2000, 4000}

// benchUserPoW is the PoW of the Status user's envelopes: tiny, so that the sender on
// node B is not the bottleneck (its PoW is the user's cost, not the gateway's).
const benchUserPoW = 1e-9

// benchWait bounds the wait for the last message after the last one was offered.
const benchWait = 60 * time.Second

// benchEnv is the gateway on node A with the api connector, and a Status user on node B.
type benchEnv struct {
	stages  *benchStages // when each stage of the gateway saw each message
	gw      *gateway.Gateway
	st      *store.Store
	base    string // http://host:port of the api connector
	client  *http.Client
	user    *status.Chat
	userKey *ecdsa.PrivateKey
	ctx     context.Context
	nodes   []*node.Node
}

const benchToken = "bench-token-0123456789"

// newBenchEnv starts the setup above; gwPoW is the gateway's status.Config.PoW (the PoW
// of its puppets' envelopes). Everything stops in b.Cleanup, the nodes last.
func newBenchEnv(b *testing.B, gwPoW float64) *benchEnv {
	b.Helper()
	nodes := statusnet.NewNodes(b, 2, node.Config{ZeroPoW: true})
	statusnet.Connect(b, nodes[0], nodes[1])
	e := newBenchGateway(b, gwPoW, nodes)
	uc, err := status.New(nodes[1], status.Config{PoW: benchUserPoW})
	if err != nil {
		b.Fatal(err)
	}
	if e.user, err = uc.Join(e.ctx, "status"); err != nil {
		b.Fatal(err)
	}
	if e.userKey, err = crypto.GenerateKey(); err != nil {
		b.Fatal(err)
	}
	return e
}

// newBenchGateway starts the gateway of the setup above on nodes[0], without the user.
func newBenchGateway(b *testing.B, gwPoW float64, nodes []*node.Node) *benchEnv {
	b.Helper()
	secret, err := identity.GenerateSecret(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(b.TempDir(), "gw.db")})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	sc, err := status.New(nodes[0], status.Config{PoW: gwPoW})
	if err != nil {
		b.Fatal(err)
	}
	// The load comes from few api users: the api limit is off too.
	conn, err := api.New(api.Config{Listen: "127.0.0.1:0", Token: benchToken, Channels: []string{"status"},
		RateLimit: api.RateLimit{Disabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	ch, _ := bridges.NewChannelID("api", "status")
	stages := &benchStages{}
	// One Status user sends the whole load: flood control off (it measures the path).
	gw, err := gateway.New(gateway.Config{Routes: []gateway.Route{{Chat: "status",
		Channels: []gateway.RouteChannel{{Channel: ch}}}}, RateLimit: gateway.RateLimit{Disabled: true}},
		gateway.Deps{Ledger: st, Status: timedNet{gateway.StatusOver(sc), stages}, Puppets: puppet.New(secret, st, nil),
			Connectors: []bridges.Connector{timedConn{conn, stages}}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	e := &benchEnv{stages: stages, gw: gw, st: st, ctx: ctx, nodes: nodes,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	b.Cleanup(func() {
		e.client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			b.Errorf("gateway Run: %v", err)
		}
		st.Close()
	})
	select {
	case <-conn.Ready():
	case err := <-done:
		b.Fatalf("gateway Run: %v", err)
	case <-time.After(statusnet.WaitTimeout):
		b.Fatal("api connector not listening")
	}
	e.base = "http://" + conn.Addr().String()
	// The outboxes poll the connector state; start once it is connected.
	deadline := time.Now().Add(statusnet.WaitTimeout)
	for gw.States()["api"].State != bridges.StateConnected {
		if time.Now().After(deadline) {
			b.Fatal("api connector not connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	<-gw.Ready()
	return e
}

// recoveries returns the signer recoveries (libsecp256k1) done so far by each node's
// subscriptions and their Status clients (whisper.Signers): node A's (the gateway's)
// and node B's (the user's).
func (e *benchEnv) recoveries() [2]uint64 {
	return [2]uint64{e.nodes[0].Signers().Stats().Recovered, e.nodes[1].Signers().Stats().Recovered}
}

// reportRecoveries sets gw-recover/msg and user-recover/msg: the recoveries of node A
// and node B since since, per message.
func (e *benchEnv) reportRecoveries(b *testing.B, since [2]uint64) {
	now := e.recoveries()
	b.ReportMetric(float64(now[0]-since[0])/float64(b.N), "gw-recover/msg")
	b.ReportMetric(float64(now[1]-since[1])/float64(b.N), "user-recover/msg")
}

// readUser calls f for each message of the user's chat, on one goroutine, until the
// benchmark ends (its Cleanup leaves the chat and waits for the goroutine).
func (e *benchEnv) readUser(b *testing.B, f func(*status.Message)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range e.user.Messages() {
			f(m)
		}
	}()
	b.Cleanup(func() { e.user.Leave(); <-done })
}

// benchSeq reads the sequence number from the end of a text "… m <n>"; -1 if none.
func benchSeq(text string) int {
	i := strings.LastIndex(text, "m ")
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(text[i+2:])
	if err != nil {
		return -1
	}
	return n
}

// benchLog records when each of n messages was sent and first received.
type benchLog struct {
	sent, recv []time.Time
	mu         sync.Mutex
	got        int
	all        chan struct{} // closed when every message was received
}

func newBenchLog(n int) *benchLog {
	return &benchLog{sent: make([]time.Time, n), recv: make([]time.Time, n), all: make(chan struct{})}
}

// received records message i at t; duplicates and strangers are ignored.
func (l *benchLog) received(i int, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < 0 || i >= len(l.recv) || !l.recv[i].IsZero() {
		return
	}
	l.recv[i] = t
	if l.got++; l.got == len(l.recv) {
		close(l.all)
	}
}

// wait waits until every message was received or benchWait passed; it returns how
// many were not received.
func (l *benchLog) wait() int {
	select {
	case <-l.all:
	case <-time.After(benchWait):
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recv) - l.got
}

// report sets p50-ms and p99-ms (send → receipt) and msg/s: the messages received
// over the longer of the send span (first to last send) and the receive span (first to
// last receipt). Whisper delivers in bursts, one per 300 ms transmission cycle, so the
// receive span alone could be shorter than the send span; when the gateway falls
// behind, the receive span grows and the rate drops. Call it after wait, with the
// timer stopped.
func (l *benchLog) report(b *testing.B) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lat := make([]float64, 0, len(l.recv))
	var sent0, sent1, recv0, recv1 time.Time
	for i, r := range l.recv {
		s := l.sent[i]
		if r.IsZero() || s.IsZero() {
			continue
		}
		lat = append(lat, float64(r.Sub(s))/1e6)
		if sent0.IsZero() || s.Before(sent0) {
			sent0 = s
		}
		sent1 = later(sent1, s)
		if recv0.IsZero() || r.Before(recv0) {
			recv0 = r
		}
		recv1 = later(recv1, r)
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	if d := max(sent1.Sub(sent0), recv1.Sub(recv0)).Seconds(); d > 0 {
		b.ReportMetric(float64(len(lat))/d, "msg/s")
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// benchStages records when the gateway's own stages saw each message "… m <n>", so that
// the gateway's share of the latency is reported apart from sealing (PoW) and the
// Whisper hop. Each stage keeps the first time it saw a message. The hooks are thin
// wrappers (timedConn, timedNet) around the real connector and the real Status side:
//
//   - deliver: the api connector calls Host.Deliver (the POST is parsed);
//   - post, posted: the gateway's Status outbox calls StatusChat.Post, and it returns
//     (signing, encryption and PoW of both payloads, and the node taking them);
//   - next: the gateway's Status reader gets the message from its chat (the hop, node
//     A's decryption and recovery and the chat's decoding are behind it);
//   - send: the gateway's api outbox calls the connector's Send.
type benchStages struct {
	mu                                sync.Mutex
	deliver, post, posted, next, send []time.Time
}

// reset sizes every stage for n messages and forgets earlier runs.
func (s *benchStages) reset(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range []*[]time.Time{&s.deliver, &s.post, &s.posted, &s.next, &s.send} {
		*st = make([]time.Time, n)
	}
}

// mark records now in stage for the message whose text ends in "m <n>".
func (s *benchStages) mark(stage *[]time.Time, text string) {
	now := time.Now()
	i := benchSeq(text)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= 0 && i < len(*stage) && (*stage)[i].IsZero() {
		(*stage)[i] = now
	}
}

// report sets <name>-p50-ms and <name>-p99-ms: the distribution of to − from over the
// messages both stages saw. Call it with the timer stopped.
func (s *benchStages) report(b *testing.B, name string, from, to []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lat []float64
	for i := range min(len(from), len(to)) {
		if !from[i].IsZero() && !to[i].IsZero() {
			lat = append(lat, float64(to[i].Sub(from[i]))/1e6)
		}
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.50), name+"-p50-ms")
	b.ReportMetric(q(0.99), name+"-p99-ms")
}

// timedConn is the api connector with Host.Deliver and Send timed.
type timedConn struct {
	*api.Connector
	st *benchStages
}

func (c timedConn) Run(ctx context.Context, h bridges.Host) error {
	return c.Connector.Run(ctx, timedHost{h, c.st})
}

func (c timedConn) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	c.st.mark(&c.st.send, out.Event.Text)
	return c.Connector.Send(ctx, out)
}

type timedHost struct {
	bridges.Host
	st *benchStages
}

func (h timedHost) Deliver(ctx context.Context, ev bridges.Event) error {
	h.st.mark(&h.st.deliver, ev.Text)
	return h.Host.Deliver(ctx, ev)
}

// timedNet is the gateway's Status side with the chats' Next and Post timed.
type timedNet struct {
	gateway.StatusNet
	st *benchStages
}

func (n timedNet) Join(ctx context.Context, name string) (gateway.StatusChat, error) {
	ch, err := n.StatusNet.Join(ctx, name)
	if err != nil {
		return nil, err
	}
	return timedChat{ch, n.st}, nil
}

type timedChat struct {
	gateway.StatusChat
	st *benchStages
}

func (c timedChat) Next(ctx context.Context) (gateway.StatusMessage, bool) {
	m, ok := c.StatusChat.Next(ctx)
	if ok {
		c.st.mark(&c.st.next, m.Text)
	}
	return m, ok
}

func (c timedChat) Post(ctx context.Context, p gateway.StatusPost, key *ecdsa.PrivateKey) (gateway.StatusPosted, error) {
	c.st.mark(&c.st.post, p.Text)
	r, err := c.StatusChat.Post(ctx, p, key)
	c.st.mark(&c.st.posted, p.Text)
	return r, err
}

// pace sleeps until message i of a run started at start, offered at rate per second,
// is due.
func pace(start time.Time, i, rate int) {
	if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
		time.Sleep(d)
	}
}

// sseReader follows the channel's SSE stream, recording each message event "m <n>" in
// l, until ctx ends; a stream that ends early (a slow subscriber is disconnected) is
// resumed with Last-Event-ID. ready is closed once the first stream is open.
func (e *benchEnv) sseReader(ctx context.Context, l *benchLog, ready chan<- struct{}, reconnects *atomic.Int64) error {
	last := ""
	for first := true; ctx.Err() == nil; first = false {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/v1/channels/status/events", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+benchToken)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("open SSE stream: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("open SSE stream: %s", resp.Status)
		}
		if first {
			close(ready)
		} else {
			reconnects.Add(1)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case bytes.HasPrefix(line, []byte("id: ")):
				last = string(line[4:])
			case bytes.HasPrefix(line, []byte("data: ")):
				now := time.Now()
				var ev struct {
					Kind string `json:"kind"`
					Text string `json:"text"`
				}
				if json.Unmarshal(line[6:], &ev) == nil && ev.Kind == "message" {
					l.received(benchSeq(ev.Text), now)
				}
			}
		}
		resp.Body.Close()
	}
	return nil
}

// BenchmarkGateway_StatusToAPI: a Status user on node B sends b.N messages at
// benchRate; one SSE client of the api connector reads them. Latency is from the
// user's Send returning (envelopes pooled on node B) to the SSE event's arrival, so it
// holds the B→A Whisper hop, the gateway's Status reader, the group-committed ingest,
// the api outbox, the api connector and the SSE write. ns/op and allocs/op are the
// whole process's (both nodes, the user, the gateway, the HTTP client) per message;
// with pacing, ns/op is about 1/rate as long as the gateway keeps up.
func BenchmarkGateway_StatusToAPI(b *testing.B) {
	for _, rate := range benchRates {
		b.Run(fmt.Sprint("rate=", rate), func(b *testing.B) { benchStatusToAPI(b, rate) })
	}
}

func benchStatusToAPI(b *testing.B, rate int) {
	e := newBenchEnv(b, 0)
	l := newBenchLog(b.N)
	// The user's chat also delivers the user's own messages; a full chat buffer would
	// block node B's Whisper workers (the chat's overflow policy), so drain it.
	e.readUser(b, func(*status.Message) {})
	ctx, cancel := context.WithCancel(e.ctx)
	ready := make(chan struct{})
	var reconnects atomic.Int64
	errc := make(chan error, 1)
	go func() { errc <- e.sseReader(ctx, l, ready, &reconnects) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			b.Error(err)
		}
	}()
	select {
	case <-ready:
	case err := <-errc:
		errc <- err
		b.Fatal(err)
	}
	e.stages.reset(b.N)
	rec0 := e.recoveries()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i := range b.N {
		pace(start, i, rate)
		if _, err := e.user.Send(context.Background(), "m "+strconv.Itoa(i), e.userKey); err != nil {
			b.Fatal(err)
		}
		l.sent[i] = time.Now()
	}
	lost := l.wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(b.N), "cpu-us/msg")
	e.reportRecoveries(b, rec0)
	l.report(b)
	// gw: the gateway's share (reader to the connector's Send: ingest, outbox); in:
	// the user's Send returning to the gateway's reader (hop and node A's opening).
	e.stages.report(b, "gw", e.stages.next, e.stages.send)
	e.stages.report(b, "in", l.sent, e.stages.next)
	b.ReportMetric(float64(rate), "offered-msg/s")
	b.ReportMetric(float64(reconnects.Load()), "reconnects")
	if lost > 0 {
		b.Errorf("%d of %d messages did not reach the SSE client within %v", lost, b.N, benchWait)
	}
}

// BenchmarkGateway_APIToStatus: clients POST b.N messages at benchRate into the api
// connector (64 concurrent keep-alive connections, users cycled over 50 distinct
// ones, so 50 puppets), and the Status user on node B receives them. Latency is from
// the POST being issued to the message's arrival at the user (which shows each
// message once, though the gateway sends both formats: two signed, sealed envelopes
// per message). pow=0 gives the gateway a tiny PoW (1e-9); pow=0.002 is the default
// and the Status specification's value. msg/s is what was achieved: below benchRate
// when the gateway does not keep up.
func BenchmarkGateway_APIToStatus(b *testing.B) {
	for _, v := range []struct {
		name string
		pow  float64
	}{{"pow=0", 1e-9}, {"pow=0.002", status.DefaultPoW}} {
		for _, rate := range benchRates {
			if v.pow < status.DefaultPoW && rate != benchRate {
				continue // the curve is drawn at the default PoW; pow=0 shows PoW's share
			}
			b.Run(fmt.Sprintf("%s/rate=%d", v.name, rate), func(b *testing.B) { benchAPIToStatus(b, v.pow, 50, rate) })
		}
	}
}

// BenchmarkGateway_Sustained: both directions at benchRate for as long as b.N makes it
// (make bench runs 120,000 messages: 60 s each), at the default PoW: whether the
// gateway holds the rate, not only a burst of it.
func BenchmarkGateway_Sustained(b *testing.B) {
	b.Run(fmt.Sprintf("APIToStatus/pow=0.002/rate=%d", benchRate), func(b *testing.B) {
		benchAPIToStatus(b, status.DefaultPoW, 50, benchRate)
	})
	b.Run(fmt.Sprintf("StatusToAPI/rate=%d", benchRate), func(b *testing.B) { benchStatusToAPI(b, benchRate) })
}

func benchAPIToStatus(b *testing.B, pow float64, users, rate int) {
	e := newBenchEnv(b, pow)
	l := newBenchLog(b.N)
	e.readUser(b, func(m *status.Message) { l.received(benchSeq(m.Text), time.Now()) })
	e.stages.reset(b.N)
	rec0 := e.recoveries()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	lost := e.post(b, l, b.N, users, rate, "b")
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(b.N), "cpu-us/msg")
	e.reportRecoveries(b, rec0)
	l.report(b)
	// gw: the gateway's share (Deliver to its Status outbox's Post: ingest, outbox);
	// seal: Post (signing, encryption, PoW of both payloads); out: Post returning to the
	// user's chat (the hop and node B's opening).
	e.stages.report(b, "gw", e.stages.deliver, e.stages.post)
	e.stages.report(b, "seal", e.stages.post, e.stages.posted)
	e.stages.report(b, "out", e.stages.posted, l.recv)
	b.ReportMetric(float64(rate), "offered-msg/s")
	if lost > 0 {
		b.Errorf("%d of %d messages did not reach the Status user within %v", lost, b.N, benchWait)
	}
}

// post POSTs n messages "m <i>" with client ids idPrefix+i from users cycled over users
// distinct ones, paced at rate per second when rate > 0 (else as fast as the clients
// go), and waits for l to see them all; it returns how many it did not.
func (e *benchEnv) post(b *testing.B, l *benchLog, n, users, rate int, idPrefix string) int {
	const workers = 64
	jobs := make(chan int, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				body := fmt.Sprintf(`{"user":"u%d","text":"m %d","id":"%s%d"}`, i%users, i, idPrefix, i)
				req, err := http.NewRequest(http.MethodPost, e.base+"/v1/channels/status/messages", strings.NewReader(body))
				if err != nil {
					panic(err) // a constant URL
				}
				req.Header.Set("Authorization", "Bearer "+benchToken)
				req.Header.Set("Content-Type", "application/json")
				l.sent[i] = time.Now()
				resp, err := e.client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("POST: %s", resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	start := time.Now()
	for i := range n {
		if rate > 0 {
			pace(start, i, rate)
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d POSTs failed, the first: %v", f, firstErr.Load())
	}
	return l.wait()
}

// BenchmarkGateway_Puppets10K: the memory of a gateway that has spoken for 10,000
// remote users, measured in a process that holds the gateway alone. The gateway and its
// node run in the benchmark's process (newBenchGateway: node A, the SQLite ledger, the
// puppet registry, the api connector); the Status user and its node run in a child
// process (startUserProcess), so neither the user's node nor its envelope pool is in
// the figures. Each iteration POSTs one message from each of 10,000 distinct api users
// (as fast as 64 clients can) and waits until the user received all of them, so the
// gateway derived and recorded 10,000 puppets, holding their keys in the registry's
// LRU (puppet.DefaultCacheSize = 10,000) and their chat keys in its loop-prevention set.
//
// Three points, each after runtime.GC, with the HTTP clients' idle connections closed:
//
//   - base: after setup, before the first message (base-RSS-MB, base-heap-MB);
//   - burst: as soon as the last message reached the user, while node A's envelope
//     pool still holds the messages' envelopes (two per message, within their 15 s
//     TTL; pooled-envelopes says how many): RSS-MB (VmRSS, the goal's figure),
//     heap-MB (MemStats.HeapInuse), unreturned-MB (heap the GC freed that the runtime
//     has not returned yet), file-RSS-MB (the executable's mapped pages), then
//     settled-RSS-MB (after debug.FreeOSMemory); peak-RSS-MB is VmHWM, the most the
//     process held at any time;
//   - drained: once the pool's expiry dropped those envelopes: drained-RSS-MB and
//     drained-heap-MB (after debug.FreeOSMemory).
//
// From the live heap (MemStats.HeapAlloc) at the three points: pool-heap-MB and
// pool-B/env are what the pooled envelopes cost (burst − drained: their bytes, the
// pool's bookkeeping and whatever else the gateway keeps for them until they expire),
// puppet-B what one puppet costs once they are gone (drained − base, over 10,000).
func BenchmarkGateway_Puppets10K(b *testing.B) {
	const users = 10_000
	nodes := statusnet.NewNodes(b, 1, node.Config{ZeroPoW: true})
	var cur atomic.Pointer[benchLog]
	cur.Store(newBenchLog(0))
	url := startUserProcess(b, func(n int) { cur.Load().received(n, time.Now()) })
	connectUserProcess(b, nodes[0], url)
	e := newBenchGateway(b, 1e-9, nodes)
	w := nodes[0].Whisper()
	logs := make([]*benchLog, b.N) // the harness's, allocated before base
	for it := range logs {
		logs[it] = newBenchLog(users)
	}
	base := measureMem(b)
	prof := os.Getenv("STATUSGATE_BENCH_HEAPPROFILE") // a directory: heap profiles of the three points
	if prof != "" {
		writeHeapProfile(b, filepath.Join(prof, "puppets10k-base.heap"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for it, l := range logs {
		cur.Store(l)
		// The same 10,000 users every iteration, with fresh message ids.
		if lost := e.post(b, l, users, users, 0, fmt.Sprintf("p%d-", it)); lost > 0 {
			b.Fatalf("%d of %d messages did not reach the Status user within %v", lost, users, benchWait)
		}
	}
	b.StopTimer()
	// The HTTP clients are the harness, not the gateway: their connections go.
	e.client.CloseIdleConnections()
	st := w.Stats()
	burst := measureMem(b)
	b.ReportMetric(burst.rss, "RSS-MB")
	b.ReportMetric(burst.heap, "heap-MB")
	b.ReportMetric(burst.unreturned, "unreturned-MB")
	b.ReportMetric(procStatusMB(b, "RssFile:"), "file-RSS-MB")
	b.ReportMetric(procStatusMB(b, "VmHWM:"), "peak-RSS-MB")
	b.ReportMetric(float64(st.Envelopes), "pooled-envelopes")
	b.ReportMetric(float64(st.PoolBytes)/(1<<20), "pool-MB")
	if prof != "" {
		writeHeapProfile(b, filepath.Join(prof, "puppets10k-burst.heap"))
	}
	debug.FreeOSMemory()
	b.ReportMetric(procStatusMB(b, "VmRSS:"), "settled-RSS-MB")
	b.ReportMetric(base.rss, "base-RSS-MB")
	b.ReportMetric(base.heap, "base-heap-MB")
	// The pool drops an envelope within an ExpirationCycle of its expiry: wait for it.
	deadline := time.Now().Add(time.Duration(status.DefaultTTL)*time.Second + benchWait)
	for w.Stats().Envelopes > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("node A still pools %d envelopes %v after the burst", w.Stats().Envelopes, benchWait)
		}
		time.Sleep(250 * time.Millisecond)
	}
	drained := measureMem(b)
	debug.FreeOSMemory()
	b.ReportMetric(procStatusMB(b, "VmRSS:"), "drained-RSS-MB")
	b.ReportMetric(drained.heap, "drained-heap-MB")
	b.ReportMetric((burst.live-drained.live)/(1<<20), "pool-heap-MB")
	if st.Envelopes > 0 {
		b.ReportMetric((burst.live-drained.live)/float64(st.Envelopes), "pool-B/env")
	}
	b.ReportMetric((drained.live-base.live)/users, "puppet-B")
	if n, err := e.st.CountPuppets(context.Background()); err != nil || n != users {
		b.Errorf("%d puppets recorded (%v), want %d", n, err, users)
	}
	if prof != "" {
		writeHeapProfile(b, filepath.Join(prof, "puppets10k-drained.heap"))
	}
}

// benchMemPoint is the process's memory at one point, after runtime.GC: rss and heap
// (HeapInuse) and unreturned (HeapIdle − HeapReleased) in MiB, live (HeapAlloc) in bytes.
type benchMemPoint struct {
	rss, heap, unreturned, live float64
}

func measureMem(b *testing.B) benchMemPoint {
	b.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return benchMemPoint{rss: procStatusMB(b, "VmRSS:"), heap: float64(ms.HeapInuse) / (1 << 20),
		unreturned: float64(ms.HeapIdle-ms.HeapReleased) / (1 << 20), live: float64(ms.HeapAlloc)}
}

// writeHeapProfile writes the heap profile (as of the last GC) to path.
func writeHeapProfile(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the CPU time the process has used (user and system, every thread), in ns:
// per message, the cost of the whole path whatever else the machine runs (both nodes,
// the user, the gateway and the HTTP clients share the process).
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// procStatusMB returns the field of /proc/self/status named by key (a kB figure), in MiB.
func procStatusMB(b *testing.B, key string) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatalf("read %s: %v", key, err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				b.Fatalf("parse %q: %v", line, err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/self/status", key)
	return 0
}
