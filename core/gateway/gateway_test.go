package gateway_test

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/gateway/gatewaytest"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/records"
	"github.com/statusgate/statusgate/store"
)

// The gateway's tests run it on a real SQLite ledger and puppet registry, with the
// Status side in memory (memNet: no nodes, no proof of work) and scripted connectors
// (gatewaytest.Conn). The tests on real Status nodes are in core/gateway/onnode.

var _ gateway.Ledger = (*store.Store)(nil)

// watchLedger is the store with a signal: changed closes after every write, so that a
// test waits for the ledger to reach a state instead of polling it.
type watchLedger struct {
	*store.Store
	mu      sync.Mutex
	changed chan struct{}
}

func (l *watchLedger) signal() {
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *watchLedger) wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *watchLedger) IngestEvents(ctx context.Context, batch []records.Ingest) ([]records.Ingested, error) {
	defer l.signal()
	return l.Store.IngestEvents(ctx, batch)
}

func (l *watchLedger) MarkDeliveredBatch(ctx context.Context, batch []records.Delivery) error {
	defer l.signal()
	return l.Store.MarkDeliveredBatch(ctx, batch)
}

func (l *watchLedger) MarkRetry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	defer l.signal()
	return l.Store.MarkRetry(ctx, id, attempts, next, lastErr)
}

func (l *watchLedger) MarkFailed(ctx context.Context, id int64, attempts int, lastErr string, at time.Time) error {
	defer l.signal()
	return l.Store.MarkFailed(ctx, id, attempts, lastErr, at)
}

// env is a gateway with one route "status" ⇄ test:room, and a Status user in the chat.
type env struct {
	gw      *gateway.Gateway
	st      *store.Store
	led     *watchLedger
	net     *memNet
	conn    *gatewaytest.Conn
	host    bridges.Host
	userKey *ecdsa.PrivateKey
	user    *memSub
	secret  *identity.Secret
	stop    func()
}

type envOpts struct {
	dbPath string
	secret *identity.Secret
	net    *memNet // the Status network; shared by the runs of a restart test
	conn   *gatewaytest.Conn
	extra  []bridges.Connector
	cfg    func(*gateway.Config)
	routes bool // keep the route table in the store (Deps.Routes)
	// wrap, if set, is the connector the gateway runs in place of conn itself (conn with
	// more capabilities).
	wrap bridges.Connector
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.dbPath == "" {
		o.dbPath = filepath.Join(t.TempDir(), "gw.db")
	}
	if o.secret == nil {
		var err error
		if o.secret, err = identity.GenerateSecret(rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if o.net == nil {
		o.net = newMemNet()
	}
	if o.conn == nil {
		o.conn = gatewaytest.NewConn("test")
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: o.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	led := &watchLedger{Store: st, changed: make(chan struct{})}
	room, _ := bridges.NewChannelID("test", "room")
	cfg := gateway.Config{Routes: []gateway.Route{{Chat: "status",
		Channels: []gateway.RouteChannel{{Channel: room}}}},
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, MaxAttempts: 4}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	var first bridges.Connector = o.conn
	if o.wrap != nil {
		first = o.wrap
	}
	deps := gateway.Deps{Ledger: led, Status: o.net,
		Puppets: puppet.New(o.secret, st, nil), Connectors: append([]bridges.Connector{first}, o.extra...)}
	if o.routes {
		deps.Routes = led
	}
	gw, err := gateway.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	e := &env{gw: gw, st: st, led: led, net: o.net, conn: o.conn, secret: o.secret}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway Run: %v", err)
			}
			st.Close()
		})
	}
	t.Cleanup(e.stop)
	e.host = o.conn.Host(t)
	e.user = o.net.user(t, "status")
	e.userKey, _ = crypto.GenerateKey()
	return e
}

// until waits until cond holds, looking again after every ledger write and every
// change of a queue depth or connector state; it fails the test, naming what, after
// 20 s.
func (e *env) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		written, changed := e.led.wait(), e.gw.Changed()
		if cond() {
			return
		}
		select {
		case <-written:
		case <-changed:
		case <-deadline:
			t.Fatalf("no %s within 20 s", what)
		}
	}
}

func remoteEvent(t *testing.T, id, user, name, text string) bridges.Event {
	t.Helper()
	ch, _ := bridges.NewChannelID("test", "room")
	mid, err := bridges.NewRemoteMsgID("test", id)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := bridges.NewRemoteUserID("test", user)
	return bridges.Event{Kind: bridges.KindMessage, Origin: bridges.Origin{Network: "test", Channel: ch, ID: mid},
		Sender: bridges.Sender{ID: uid, Name: name}, Text: text, Time: time.Now()}
}

// TestGateway_statusToConnector: a Status user's message reaches the connector once,
// with the author's alias, the route's channel and an idempotency key. (On real nodes,
// with both payload generations: core/gateway/onnode.)
func TestGateway_statusToConnector(t *testing.T) {
	e := newEnv(t, envOpts{})
	if _, err := e.user.Send(context.Background(), "hello bridge", e.userKey); err != nil {
		t.Fatal(err)
	}
	out := e.conn.Next(t)
	if out.Event.Text != "hello bridge" || out.Channel != "test:room" || out.Event.Origin.Network != "status" ||
		out.Event.Origin.Channel != "status:status" || out.Event.Sender.ID != bridges.RemoteUserID("status:"+identity.ChatKey(&e.userKey.PublicKey)) ||
		out.Event.Sender.Name == "" || len(out.Key) != 32 {
		t.Fatalf("outbound %+v", out)
	}
	if out.Key != bridges.IdempotencyKey(out.Event.Origin, out.Channel) {
		t.Fatal("key is not the event's idempotency key")
	}
}

// TestGateway_connectorToStatusAsPuppet: a remote user's message arrives in Status
// signed by that user's puppet key, with the nick prefix; the echo of the puppet's
// own envelope is not relayed back; delivering the same event again is a no-op.
func TestGateway_connectorToStatusAsPuppet(t *testing.T) {
	e := newEnv(t, envOpts{})
	ev := remoteEvent(t, "r1", "alice-id", "Alice", "hi from the other side")
	if err := e.host.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := nextStatus(t, e.user)
	want, err := e.secret.PuppetKey(identity.PuppetID{Network: "test", Account: "test", User: "alice-id"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Author.Equal(&want.PublicKey) {
		t.Fatalf("signed by %s, want alice's puppet %s", m.AuthorKey, identity.ChatKey(&want.PublicKey))
	}
	if m.Text != "[test] <Alice> hi from the other side" {
		t.Fatalf("text %q", m.Text)
	}
	if err := e.host.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	quietStatus(t, e.user, 200*time.Millisecond)
	e.conn.Quiet(t, 0) // the puppet's echo did not loop back
	// bob is somebody else.
	if err := e.host.Deliver(context.Background(), remoteEvent(t, "r2", "bob-id", "Bob", "and me")); err != nil {
		t.Fatal(err)
	}
	if m2 := nextStatus(t, e.user); m2.Author.Equal(m.Author) || m2.Text != "[test] <Bob> and me" {
		t.Fatalf("bob's message %q by %s", m2.Text, m2.AuthorKey)
	}
	recs, err := puppet.New(e.secret, e.st, nil).Whois(context.Background(), "test:alice-id")
	if err != nil || len(recs) != 1 || recs[0].ChatKey != m.AuthorKey || recs[0].DisplayName != "Alice" {
		t.Fatalf("whois: %+v, %v", recs, err)
	}
}

// TestGateway_retriesInOrderAndFailsVisibly: while the destination fails every attempt
// (down until "one" has been tried three times), transient errors are retried with the
// same key and the queue keeps its order; a permanent error ends that entry only.
func TestGateway_retriesInOrderAndFailsVisibly(t *testing.T) {
	conn := gatewaytest.NewConn("test")
	down := true // read and written by Send only (under the connector's lock)
	tries := 0
	conn.SetFail(func(out bridges.Outbound) error {
		if strings.HasPrefix(out.Event.Text, "poison") {
			return bridges.Permanent(errors.New("channel refuses this"))
		}
		if out.Event.Text == "one" {
			tries++
			if tries == 3 {
				down = false // back up just as the head is retried
			}
		}
		if down {
			return fmt.Errorf("%w: network down", bridges.ErrTransient)
		}
		return nil
	})
	e := newEnv(t, envOpts{conn: conn})
	for _, text := range []string{"one", "poison pill", "two", "three"} {
		if _, err := e.user.Send(context.Background(), text, e.userKey); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 3 {
		got = append(got, conn.Next(t).Event.Text)
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("delivered %v, want one,two,three in order", got)
	}
	e.until(t, "an empty queue", func() bool { return e.gw.QueueDepths()["test:room"] == 0 })
	if n, _ := e.st.CountPending(context.Background(), "test:room"); n != 0 {
		t.Fatalf("%d entries still pending", n)
	}
}

// TestGateway_failingEntryDoesNotBlock (issue 15 finding 1): a message the destination
// never takes (a transient error on every attempt) holds the ones behind it up for one
// attempt, not for its retry budget: "a" and "b" arrive after one attempt of "stuck",
// which is then moved aside, retried on its back-off and ends failed, visibly. Before
// the fix "a" arrived only after all of stuck's 4 attempts.
func TestGateway_failingEntryDoesNotBlock(t *testing.T) {
	conn := gatewaytest.NewConn("test")
	var stuckTries, stuckAtA atomic.Int64
	conn.SetFail(func(out bridges.Outbound) error {
		switch out.Event.Text {
		case "stuck":
			stuckTries.Add(1)
			return fmt.Errorf("%w: the network chokes on this one", bridges.ErrTransient)
		case "a":
			stuckAtA.Store(stuckTries.Load())
		}
		return nil
	})
	e := newEnv(t, envOpts{conn: conn, cfg: func(c *gateway.Config) {
		c.RetryMin, c.RetryMax = 200*time.Millisecond, 400*time.Millisecond
	}})
	for _, text := range []string{"stuck", "a", "b"} {
		if _, err := e.user.Send(context.Background(), text, e.userKey); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 2 {
		got = append(got, conn.Next(t).Event.Text)
	}
	at := stuckAtA.Load()
	t.Logf("\"a\" delivered after %d attempt(s) of \"stuck\"", at)
	if strings.Join(got, ",") != "a,b" || at != 1 {
		t.Fatalf("delivered %v after %d attempts of stuck; want a,b after 1", got, at)
	}
	// stuck ends failed after its 4 attempts, and nothing stays pending.
	e.until(t, "an empty queue", func() bool { return e.gw.QueueDepths()["test:room"] == 0 })
	if n, _ := e.st.CountPending(context.Background(), "test:room"); n != 0 {
		es, _ := e.st.PendingEntries(context.Background(), "test:room", 0, 10)
		for _, x := range es {
			t.Logf("pending %d attempts %d next %v body %s", x.ID, x.Attempts, x.NextAttempt, x.Body)
		}
		t.Fatalf("%d entries still pending", n)
	}
	if n := stuckTries.Load(); n != 4 {
		t.Errorf("stuck tried %d times, want 4 (MaxAttempts)", n)
	}
}

// TestGateway_longTextSplitForConnector: a Status message longer than the connector's
// Capabilities.MaxTextLen arrives as marked parts cut at paragraph boundaries, each
// within the limit and with its own idempotency key (the first the event's); with the
// route's LongText truncate it arrives as one cut message ending in the marker.
func TestGateway_longTextSplitForConnector(t *testing.T) {
	for _, policy := range []gateway.LongText{gateway.LongSplit, gateway.LongTruncate} {
		t.Run(policy.String(), func(t *testing.T) {
			conn := gatewaytest.NewConn("test")
			conn.SetCaps(bridges.Capabilities{MaxTextLen: 100, Replies: true})
			e := newEnv(t, envOpts{conn: conn, cfg: func(c *gateway.Config) { c.Routes[0].LongText = policy }})
			para := strings.TrimSpace(strings.Repeat("lorem ipsum ", 6)) // 71 bytes
			text := para + "\n\n" + para + "\n\n" + para
			if _, err := e.user.Send(context.Background(), text, e.userKey); err != nil {
				t.Fatal(err)
			}
			if policy == gateway.LongTruncate {
				out := conn.Next(t)
				if len(out.Event.Text) > 100 || !strings.HasSuffix(out.Event.Text, "[…]") || !strings.HasPrefix(out.Event.Text, "lorem") {
					t.Errorf("truncated to %q", out.Event.Text)
				}
				conn.Quiet(t, time.Second)
				return
			}
			keys := map[string]bool{}
			for i := range 3 {
				out := conn.Next(t)
				if want := fmt.Sprintf("(%d/3) %s", i+1, para); out.Event.Text != want {
					t.Errorf("part %d: %q, want %q", i+1, out.Event.Text, want)
				}
				if i == 0 && out.Key != bridges.IdempotencyKey(out.Event.Origin, out.Channel) {
					t.Error("the first part's key is not the event's")
				}
				keys[out.Key] = true
			}
			if len(keys) != 3 {
				t.Errorf("%d distinct keys for 3 parts", len(keys))
			}
		})
	}
}

// TestGateway_longTextToStatus: a remote message longer than Status takes reaches the
// Status user as marked parts of at most 4,096 characters each (nick prefix included)
// with consecutive clocks; under truncate, as one cut message ending in the marker.
func TestGateway_longTextToStatus(t *testing.T) {
	for _, policy := range []gateway.LongText{gateway.LongSplit, gateway.LongTruncate} {
		t.Run(policy.String(), func(t *testing.T) {
			e := newEnv(t, envOpts{cfg: func(c *gateway.Config) { c.Routes[0].LongText = policy }})
			long := strings.Repeat("ж", 5000)
			if err := e.host.Deliver(context.Background(), remoteEvent(t, "long", "alice-id", "Alice", long)); err != nil {
				t.Fatal(err)
			}
			if err := e.host.Deliver(context.Background(), remoteEvent(t, "next", "alice-id", "Alice", "next")); err != nil {
				t.Fatal(err)
			}
			want := 2
			if policy == gateway.LongTruncate {
				want = 1
			}
			var ms []memMsg
			for len(ms) < want+1 {
				ms = append(ms, nextStatus(t, e.user))
			}
			slices.SortFunc(ms, func(a, b memMsg) int { return cmp.Compare(a.Clock, b.Clock) })
			n := 0
			for i, m := range ms[:want] {
				if c := utf8.RuneCountInString(m.Text); c > gateway.StatusMaxTextLen {
					t.Errorf("message %d has %d characters", i, c)
				}
				n += strings.Count(m.Text, "ж")
				if i > 0 && m.Clock != ms[i-1].Clock+1 {
					t.Errorf("part %d clock %d after %d: not consecutive", i+1, m.Clock, ms[i-1].Clock)
				}
			}
			if policy == gateway.LongSplit {
				if !strings.HasPrefix(ms[0].Text, "[test] <Alice> (1/2) ж") || !strings.HasPrefix(ms[1].Text, "[test] <Alice> (2/2) ж") || n != 5000 {
					t.Errorf("parts %.30q, %.30q holding %d of 5000", ms[0].Text, ms[1].Text, n)
				}
			} else if !strings.HasSuffix(ms[0].Text, "[…]") {
				t.Errorf("cut message ends %q", ms[0].Text[len(ms[0].Text)-20:])
			}
			if ms[want].Text != "[test] <Alice> next" {
				t.Errorf("last %q, want the next message", ms[want].Text)
			}
		})
	}
}

// TestGateway_restartDeliversPendingOnce: entries left pending when the gateway stops
// (the connector was failing) are delivered after a restart on the same store, once;
// the Status side is not re-sent what it already got.
func TestGateway_restartDeliversPendingOnce(t *testing.T) {
	net := newMemNet()
	secret, _ := identity.GenerateSecret(rand.Reader)
	db := filepath.Join(t.TempDir(), "gw.db")
	down := gatewaytest.NewConn("test")
	down.SetFail(func(bridges.Outbound) error { return fmt.Errorf("%w: down", bridges.ErrTransient) })
	e := newEnv(t, envOpts{dbPath: db, secret: secret, net: net, conn: down,
		cfg: func(c *gateway.Config) { c.MaxAttempts = 1000 }})
	for i := range 5 {
		if _, err := e.user.Send(context.Background(), fmt.Sprintf("while down %d", i), e.userKey); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.host.Deliver(context.Background(), remoteEvent(t, "x1", "carol", "Carol", "to status")); err != nil {
		t.Fatal(err)
	}
	nextStatus(t, e.user)
	e.until(t, "5 pending entries", func() bool {
		n, _ := e.st.CountPending(context.Background(), "test:room")
		return n == 5
	})
	e.stop()
	up := gatewaytest.NewConn("test")
	e2 := newEnv(t, envOpts{dbPath: db, secret: secret, net: net, conn: up})
	seen := map[string]bool{}
	for range 5 {
		out := up.Next(t)
		if seen[out.Event.Text] {
			t.Fatalf("%q delivered twice", out.Event.Text)
		}
		seen[out.Event.Text] = true
	}
	up.Quiet(t, 200*time.Millisecond)
	// The old event again (a connector re-delivering after its own restart): no-op.
	if err := e2.host.Deliver(context.Background(), remoteEvent(t, "x1", "carol", "Carol", "to status")); err != nil {
		t.Fatal(err)
	}
	quietStatus(t, e2.user, 200*time.Millisecond)
}

// TestGateway_badEvents: invalid events are refused permanently; events for unknown
// channels or from the bridge itself are accepted and dropped.
func TestGateway_badEvents(t *testing.T) {
	e := newEnv(t, envOpts{})
	bad := remoteEvent(t, "b1", "u", "U", "x")
	bad.Text = "bad\x00text"
	if err := e.host.Deliver(context.Background(), bad); !bridges.IsPermanent(err) || !errors.Is(err, bridges.ErrInvalidEvent) {
		t.Fatalf("invalid text: %v", err)
	}
	other := remoteEvent(t, "b2", "u", "U", "x")
	other.Origin.Channel = "test:elsewhere"
	if err := e.host.Deliver(context.Background(), other); err != nil {
		t.Fatalf("unrouted channel: %v", err)
	}
	self := remoteEvent(t, "b3", "u", "U", "x")
	self.Sender.IsBridge = true
	if err := e.host.Deliver(context.Background(), self); err != nil {
		t.Fatalf("bridge's own: %v", err)
	}
	wrongNet := remoteEvent(t, "b4", "u", "U", "x")
	wrongNet.Origin.Network = "irc"
	wrongNet.Origin.ID = "irc:b4"
	wrongNet.Sender.ID = "irc:u"
	wrongNet.Origin.Channel = "irc:#x"
	if err := e.host.Deliver(context.Background(), wrongNet); !bridges.IsPermanent(err) {
		t.Fatalf("another network's event: %v", err)
	}
	quietStatus(t, e.user, time.Second)
}

// TestGateway_failureNoticeToOrigin: when a remote user's message cannot be delivered
// to another network for good, the user's channel gets a notice saying so, and the
// Status side still gets the message.
func TestGateway_failureNoticeToOrigin(t *testing.T) {
	broken := gatewaytest.NewConn("other")
	broken.SetFail(func(bridges.Outbound) error { return bridges.Permanent(errors.New("banned from channel")) })
	e := newEnv(t, envOpts{extra: []bridges.Connector{broken}, cfg: func(c *gateway.Config) {
		c.Routes[0].Channels = append(c.Routes[0].Channels, gateway.RouteChannel{Channel: "other:room"})
	}})
	if err := e.host.Deliver(context.Background(), remoteEvent(t, "f1", "erin", "Erin", "can you hear me")); err != nil {
		t.Fatal(err)
	}
	if m := nextStatus(t, e.user); m.Text != "[test] <Erin> can you hear me" {
		t.Fatalf("status got %q", m.Text)
	}
	n := e.conn.Next(t)
	if n.Event.Kind != bridges.KindNotice || n.Channel != "test:room" || !n.Event.Sender.IsBridge ||
		!strings.Contains(n.Event.Text, "Erin") || !strings.Contains(n.Event.Text, "other:room") {
		t.Fatalf("notice %+v to %s", n.Event, n.Channel)
	}
	if calls := broken.Calls(); calls != 1 {
		t.Fatalf("a permanent failure was tried %d times", calls)
	}
}

// TestGateway_deliverQueued: a connector that keeps events in flight
// (bridges.QueueingHost) gets one answer per event, nil once persisted, and the
// events keep the order they were queued in (their Status clocks are reserved at
// queueing, in that order); a repeat and an event from a bridge are answered nil and
// relayed never.
func TestGateway_deliverQueued(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *gateway.Config) { c.RateLimit.Disabled = true }})
	q, ok := e.host.(bridges.QueueingHost)
	if !ok {
		t.Fatalf("the gateway's Host %T is no bridges.QueueingHost", e.host)
	}
	const n = 200
	var answers []<-chan error
	for i := range n {
		answers = append(answers, q.DeliverQueued(context.Background(), remoteEvent(t, fmt.Sprint("q", i), "alice-id", "Alice", fmt.Sprint("m ", i))))
	}
	answers = append(answers, q.DeliverQueued(context.Background(), remoteEvent(t, "q0", "alice-id", "Alice", "m 0")))
	loop := remoteEvent(t, "loop", "bot", "Bot", "from a bridge")
	loop.Sender.IsBridge = true
	answers = append(answers, q.DeliverQueued(context.Background(), loop))
	for i, a := range answers {
		select {
		case err := <-a:
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no answer %d within 20 s", i)
		}
	}
	clocks := make([]uint64, n)
	for range n {
		m := nextStatus(t, e.user)
		var i int
		if _, err := fmt.Sscanf(m.Text, "[test] <Alice> m %d", &i); err != nil || i < 0 || i >= n || clocks[i] != 0 {
			t.Fatalf("unexpected or repeated Status message %q", m.Text)
		}
		clocks[i] = m.Clock
	}
	for i := 1; i < n; i++ {
		if clocks[i] <= clocks[i-1] {
			t.Fatalf("message %d has clock %d, message %d clock %d: not in queue order", i, clocks[i], i-1, clocks[i-1])
		}
	}
	quietStatus(t, e.user, 200*time.Millisecond)
}
