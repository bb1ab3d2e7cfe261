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
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

var _ gateway.Ledger = (*store.Store)(nil)

// testConn is a connector for the network "test", written against the bridges
// contract inside the test: it stands for a remote network (there is none to run
// here; the real connectors have their own tests against real servers). It records
// what the gateway sends and lets the test deliver events as if they came from remote
// users. fail, when set, decides the error of each Send.
type testConn struct {
	name string
	host chan bridges.Host

	mu    sync.Mutex
	sent  []bridges.Outbound
	keys  map[string]bridges.RemoteMsgID
	fail  func(out bridges.Outbound) error
	calls int
	got   chan bridges.Outbound
	caps  bridges.Capabilities
}

func newTestConn(name string) *testConn {
	return &testConn{name: name, host: make(chan bridges.Host, 1), keys: map[string]bridges.RemoteMsgID{},
		got: make(chan bridges.Outbound, 4096)}
}

func (c *testConn) Name() string { return c.name }
func (c *testConn) Capabilities() bridges.Capabilities {
	caps := c.caps
	caps.Replies = true
	return caps
}

func (c *testConn) Run(ctx context.Context, h bridges.Host) error {
	h.ReportState(bridges.StateConnecting, nil)
	h.ReportState(bridges.StateConnected, nil)
	select {
	case c.host <- h:
	default:
	}
	<-ctx.Done()
	return nil
}

func (c *testConn) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		if err := c.fail(out); err != nil {
			return bridges.Receipt{}, err
		}
	}
	if id, ok := c.keys[out.Key]; ok { // idempotent, as a network with txn IDs is
		return bridges.Receipt{ID: id}, nil
	}
	id, _ := bridges.NewRemoteMsgID(c.name, fmt.Sprintf("m%d", len(c.sent)+1))
	c.keys[out.Key] = id
	c.sent = append(c.sent, out)
	c.got <- out
	return bridges.Receipt{ID: id}, nil
}

func (c *testConn) next(t *testing.T) bridges.Outbound {
	t.Helper()
	select {
	case out := <-c.got:
		return out
	case <-time.After(20 * time.Second):
		t.Fatal("connector got nothing within 20 s")
		return bridges.Outbound{}
	}
}

func (c *testConn) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case out := <-c.got:
		t.Fatalf("connector got an unexpected %s %q", out.Event.Kind, out.Event.Text)
	case <-time.After(d):
	}
}

// env is a gateway on node A with one route "status" ⇄ test:room, and a Status user
// on node B joined to the same chat.
type env struct {
	gw      *gateway.Gateway
	st      *store.Store
	conn    *testConn
	host    bridges.Host
	userKey *ecdsa.PrivateKey
	user    *status.Chat
	secret  *identity.Secret
	stop    func()
	nodeA   *node.Node
	dbPath  string
}

type envOpts struct {
	dbPath string
	secret *identity.Secret
	nodes  []*node.Node
	conn   *testConn
	extra  []bridges.Connector
	cfg    func(*gateway.Config)
	// statusCfg configures the gateway's Status client; joined is Deps.Joined.
	statusCfg status.Config
	joined    func(context.Context, *status.Chat)
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
	if o.nodes == nil {
		o.nodes = statusnet.NewNodes(t, 2, node.Config{})
		statusnet.Connect(t, o.nodes[0], o.nodes[1])
	}
	if o.conn == nil {
		o.conn = newTestConn("test")
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: o.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := status.New(o.nodes[0], o.statusCfg)
	if err != nil {
		t.Fatal(err)
	}
	room, _ := bridges.NewChannelID("test", "room")
	cfg := gateway.Config{Routes: []gateway.Route{{Chat: "status",
		Channels: []gateway.RouteChannel{{Channel: room}}}},
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, MaxAttempts: 4}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	gw, err := gateway.New(cfg, gateway.Deps{Ledger: st, Status: sc,
		Puppets: puppet.New(o.secret, st, nil), Connectors: append([]bridges.Connector{o.conn}, o.extra...), Joined: o.joined})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	e := &env{gw: gw, st: st, conn: o.conn, secret: o.secret, nodeA: o.nodes[0], dbPath: o.dbPath}
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
	select {
	case e.host = <-o.conn.host:
	case <-time.After(20 * time.Second):
		t.Fatal("connector not started")
	}
	uc, err := status.New(o.nodes[1], status.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if e.user, err = uc.Join(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	e.userKey, _ = crypto.GenerateKey()
	return e
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

func nextStatus(t *testing.T, ch *status.Chat) *status.Message {
	t.Helper()
	select {
	case m := <-ch.Messages():
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no Status message within 20 s")
		return nil
	}
}

func quietStatus(t *testing.T, ch *status.Chat, d time.Duration) {
	t.Helper()
	select {
	case m := <-ch.Messages():
		t.Fatalf("unexpected Status message %q from %s", m.Text, m.AuthorKey)
	case <-time.After(d):
	}
}

// TestGateway_statusToConnector: a Status user's message reaches the connector once,
// with the author's alias, the route's channel and an idempotency key.
func TestGateway_statusToConnector(t *testing.T) {
	e := newEnv(t, envOpts{})
	if _, err := e.user.Send(context.Background(), "hello bridge", e.userKey); err != nil {
		t.Fatal(err)
	}
	out := e.conn.next(t)
	if out.Event.Text != "hello bridge" || out.Channel != "test:room" || out.Event.Origin.Network != "status" ||
		out.Event.Origin.Channel != "status:status" || out.Event.Sender.ID != bridges.RemoteUserID("status:"+identity.ChatKey(&e.userKey.PublicKey)) ||
		out.Event.Sender.Name == "" || len(out.Key) != 32 {
		t.Fatalf("outbound %+v", out)
	}
	if out.Key != bridges.IdempotencyKey(out.Event.Origin, out.Channel) {
		t.Fatal("key is not the event's idempotency key")
	}
	e.conn.quiet(t, time.Second) // the other format's twin is not relayed again
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
	quietStatus(t, e.user, 1500*time.Millisecond)
	e.conn.quiet(t, 0) // the puppet's echo did not loop back
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
	conn := newTestConn("test")
	down := true
	tries := 0
	conn.fail = func(out bridges.Outbound) error {
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
	}
	e := newEnv(t, envOpts{conn: conn})
	for _, text := range []string{"one", "poison pill", "two", "three"} {
		if _, err := e.user.Send(context.Background(), text, e.userKey); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // distinct clocks keep Status's own order
	}
	var got []string
	for range 3 {
		got = append(got, conn.next(t).Event.Text)
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("delivered %v, want one,two,three in order", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.gw.QueueDepths()["test:room"] != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if d := e.gw.QueueDepths()["test:room"]; d != 0 {
		t.Fatalf("queue depth %d after all ended", d)
	}
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
	conn := newTestConn("test")
	var stuckTries, stuckAtA int
	conn.fail = func(out bridges.Outbound) error {
		switch out.Event.Text {
		case "stuck":
			stuckTries++
			return fmt.Errorf("%w: the network chokes on this one", bridges.ErrTransient)
		case "a":
			stuckAtA = stuckTries
		}
		return nil
	}
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
		got = append(got, conn.next(t).Event.Text)
	}
	conn.mu.Lock()
	at := stuckAtA
	conn.mu.Unlock()
	t.Logf("\"a\" delivered after %d attempt(s) of \"stuck\"", at)
	if strings.Join(got, ",") != "a,b" || at != 1 {
		t.Fatalf("delivered %v after %d attempts of stuck; want a,b after 1", got, at)
	}
	// stuck ends failed after its 4 attempts, and nothing stays pending.
	deadline := time.Now().Add(20 * time.Second)
	for e.gw.QueueDepths()["test:room"] != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := e.st.CountPending(context.Background(), "test:room"); n != 0 {
		t.Fatalf("%d entries still pending", n)
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if stuckTries != 4 {
		t.Errorf("stuck tried %d times, want 4 (MaxAttempts)", stuckTries)
	}
}

// TestGateway_longTextSplitForConnector: a Status message longer than the connector's
// Capabilities.MaxTextLen arrives as marked parts cut at paragraph boundaries, each
// within the limit and with its own idempotency key (the first the event's); with the
// route's LongText truncate it arrives as one cut message ending in the marker.
func TestGateway_longTextSplitForConnector(t *testing.T) {
	for _, policy := range []gateway.LongText{gateway.LongSplit, gateway.LongTruncate} {
		t.Run(policy.String(), func(t *testing.T) {
			conn := newTestConn("test")
			conn.caps.MaxTextLen = 100
			e := newEnv(t, envOpts{conn: conn, cfg: func(c *gateway.Config) { c.Routes[0].LongText = policy }})
			para := strings.TrimSpace(strings.Repeat("lorem ipsum ", 6)) // 71 bytes
			text := para + "\n\n" + para + "\n\n" + para
			if _, err := e.user.Send(context.Background(), text, e.userKey); err != nil {
				t.Fatal(err)
			}
			if policy == gateway.LongTruncate {
				out := conn.next(t)
				if len(out.Event.Text) > 100 || !strings.HasSuffix(out.Event.Text, "[…]") || !strings.HasPrefix(out.Event.Text, "lorem") {
					t.Errorf("truncated to %q", out.Event.Text)
				}
				conn.quiet(t, time.Second)
				return
			}
			keys := map[string]bool{}
			for i := range 3 {
				out := conn.next(t)
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
			var ms []*status.Message
			for len(ms) < want+1 {
				ms = append(ms, nextStatus(t, e.user))
			}
			slices.SortFunc(ms, func(a, b *status.Message) int { return cmp.Compare(a.Clock, b.Clock) })
			n := 0
			for i, m := range ms[:want] {
				if c := utf8.RuneCountInString(m.Text); c > status.MaxTextLength {
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
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	secret, _ := identity.GenerateSecret(rand.Reader)
	db := filepath.Join(t.TempDir(), "gw.db")
	down := newTestConn("test")
	down.fail = func(bridges.Outbound) error { return fmt.Errorf("%w: down", bridges.ErrTransient) }
	e := newEnv(t, envOpts{dbPath: db, secret: secret, nodes: nodes, conn: down,
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _ := e.st.CountPending(context.Background(), "test:room")
		if n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending, want 5", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.stop()
	up := newTestConn("test")
	e2 := newEnv(t, envOpts{dbPath: db, secret: secret, nodes: nodes, conn: up})
	seen := map[string]bool{}
	for range 5 {
		out := up.next(t)
		if seen[out.Event.Text] {
			t.Fatalf("%q delivered twice", out.Event.Text)
		}
		seen[out.Event.Text] = true
	}
	up.quiet(t, time.Second)
	// The old event again (a connector re-delivering after its own restart): no-op.
	if err := e2.host.Deliver(context.Background(), remoteEvent(t, "x1", "carol", "Carol", "to status")); err != nil {
		t.Fatal(err)
	}
	quietStatus(t, e2.user, 1500*time.Millisecond)
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

// TestGateway_replyIsMapped: a Status reply to a bridged message reaches the connector
// as a reply to the connector's own message ID.
func TestGateway_replyIsMapped(t *testing.T) {
	e := newEnv(t, envOpts{})
	if err := e.host.Deliver(context.Background(), remoteEvent(t, "orig", "dave", "Dave", "question?")); err != nil {
		t.Fatal(err)
	}
	m := nextStatus(t, e.user)
	// Wait until the gateway recorded the Status ids of the puppet's message.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids, _ := e.st.MappedIDs(context.Background(), "test:room", "test:orig", "status:status")
		if len(ids) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("puppet message never mapped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.user.SendMessage(context.Background(), status.Outgoing{Text: "answer", ResponseTo: m.ID.String()}, e.userKey); err != nil {
		t.Fatal(err)
	}
	out := e.conn.next(t)
	if out.Event.Text != "answer" || out.ReplyTo != "test:orig" {
		t.Fatalf("reply arrived as %+v (ReplyTo %q)", out.Event, out.ReplyTo)
	}
	// A reply to a Status user's message may name either payload's id (a 2019 client
	// answers the Transit one, a 2020 client the protobuf one): both map to the
	// connector's copy.
	ids, err := e.user.Send(context.Background(), "status question", e.userKey)
	if err != nil || len(ids) != 2 {
		t.Fatalf("send: %v %v", ids, err)
	}
	q := e.conn.next(t)
	e.conn.mu.Lock()
	qID := e.conn.keys[q.Key]
	e.conn.mu.Unlock()
	for i, id := range ids {
		time.Sleep(20 * time.Millisecond) // distinct clocks
		text := fmt.Sprintf("answer to twin %d", i)
		if _, err := e.user.SendMessage(context.Background(), status.Outgoing{Text: text, ResponseTo: id.String()}, e.userKey); err != nil {
			t.Fatal(err)
		}
		if out := e.conn.next(t); out.Event.Text != text || out.ReplyTo != qID {
			t.Fatalf("%s arrived as %q replying to %q, want %q", text, out.Event.Text, out.ReplyTo, qID)
		}
	}
}

// TestGateway_failureNoticeToOrigin: when a remote user's message cannot be delivered
// to another network for good, the user's channel gets a notice saying so, and the
// Status side still gets the message.
func TestGateway_failureNoticeToOrigin(t *testing.T) {
	broken := newTestConn("other")
	broken.fail = func(bridges.Outbound) error { return bridges.Permanent(errors.New("banned from channel")) }
	e := newEnv(t, envOpts{extra: []bridges.Connector{broken}, cfg: func(c *gateway.Config) {
		c.Routes[0].Channels = append(c.Routes[0].Channels, gateway.RouteChannel{Channel: "other:room"})
	}})
	if err := e.host.Deliver(context.Background(), remoteEvent(t, "f1", "erin", "Erin", "can you hear me")); err != nil {
		t.Fatal(err)
	}
	if m := nextStatus(t, e.user); m.Text != "[test] <Erin> can you hear me" {
		t.Fatalf("status got %q", m.Text)
	}
	n := e.conn.next(t)
	if n.Event.Kind != bridges.KindNotice || n.Channel != "test:room" || !n.Event.Sender.IsBridge ||
		!strings.Contains(n.Event.Text, "Erin") || !strings.Contains(n.Event.Text, "other:room") {
		t.Fatalf("notice %+v to %s", n.Event, n.Channel)
	}
	broken.mu.Lock()
	calls := broken.calls
	broken.mu.Unlock()
	if calls != 1 {
		t.Fatalf("a permanent failure was tried %d times", calls)
	}
}

// TestGateway_mailserverCatchUpIsDeduplicated: after a restart the gateway catches up
// on the chat from a mailserver; what it relayed before is a no-op, and what was sent
// while it was down is relayed once.
func TestGateway_mailserverCatchUpIsDeduplicated(t *testing.T) {
	archive, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "archive.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { archive.Close() })
	srv, err := mailserver.NewServer(archive.Archive(), mailserver.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ms := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Archiver: srv, Requests: srv}})

	nodeKey, _ := crypto.GenerateKey()
	mc, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: nodeKey})
	if err != nil {
		t.Fatal(err)
	}
	a := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Completions: mc}})
	b := statusnet.NewNode(t, node.Config{})
	if err := a.AddPeer(ms.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, a, ms.ID())
	statusnet.Connect(t, a, b)
	statusnet.Connect(t, b, ms)

	synced := make(chan error, 4)
	opts := envOpts{nodes: []*node.Node{a, b}, dbPath: filepath.Join(t.TempDir(), "gw.db"),
		statusCfg: status.Config{History: status.HistoryConfig{Client: mc, Window: time.Hour}},
		joined: func(ctx context.Context, ch *status.Chat) {
			synced <- ch.SyncHistory(ctx, a.Whisper().Peer(ms.ID()), nil)
		}}
	secret, _ := identity.GenerateSecret(rand.Reader)
	opts.secret = secret
	e := newEnv(t, opts)
	waitSync := func() {
		t.Helper()
		select {
		case err := <-synced:
			if err != nil {
				t.Fatalf("catch-up: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no catch-up within 30 s")
		}
	}
	waitSync()
	// The Status user outlives both gateway runs.
	uc, err := status.New(b, status.Config{})
	if err != nil {
		t.Fatal(err)
	}
	user, err := uc.Join(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(user.Leave)
	for i := range 3 {
		if _, err := user.Send(context.Background(), fmt.Sprintf("before %d", i), e.userKey); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		e.conn.next(t)
	}
	e.stop()
	// Sent while the gateway is down: node A has no subscriber, the mailserver archives it.
	if _, err := user.Send(context.Background(), "while down", e.userKey); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		envs, _, err := archive.Archive().Query(context.Background(), mailserver.Query{Lower: uint32(time.Now().Add(-time.Hour).Unix()),
			Upper: uint32(time.Now().Add(time.Minute).Unix()), Bloom: whisper.BloomOf(whisper.TopicFromName("status")), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) >= 8 { // 4 messages × 2 formats
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailserver archived %d envelopes, want 8", len(envs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	opts.conn = newTestConn("test")
	e2 := newEnv(t, opts)
	waitSync()
	if out := e2.conn.next(t); out.Event.Text != "while down" {
		t.Fatalf("after catch-up the connector got %q, want only the message sent while down", out.Event.Text)
	}
	e2.conn.quiet(t, 1500*time.Millisecond)
}
