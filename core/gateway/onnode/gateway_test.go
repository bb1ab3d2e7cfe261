// Package onnode tests the gateway on real Status nodes: two or three core/node nodes
// over RLPx on loopback (test/statusnet), with core/status behind gateway.StatusOver,
// both payload generations and a real mailserver; and benchmarks the whole path. The
// gateway's other tests run on the Status network in memory (core/gateway).
package onnode

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/gateway/gatewaytest"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

// env is a gateway on node A with one route "status" ⇄ test:room, and a Status user on
// node B joined to the same chat. Both nodes require no PoW and seal with almost none.
type env struct {
	gw      *gateway.Gateway
	st      *store.Store
	conn    *gatewaytest.Conn
	host    bridges.Host
	userKey *ecdsa.PrivateKey
	user    *status.Chat
	stop    func()
}

type envOpts struct {
	dbPath    string
	secret    *identity.Secret
	nodes     []*node.Node
	conn      *gatewaytest.Conn
	statusCfg status.Config // the gateway's Status client
}

// lowPoW is the PoW the Status clients seal with: the nodes require none.
const lowPoW = 1e-9

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.dbPath == "" {
		o.dbPath = filepath.Join(t.TempDir(), "gw.db")
	}
	if o.secret == nil {
		o.secret, _ = identity.GenerateSecret(rand.Reader)
	}
	if o.nodes == nil {
		o.nodes = statusnet.NewNodes(t, 2, node.Config{ZeroPoW: true})
		statusnet.Connect(t, o.nodes[0], o.nodes[1])
	}
	if o.conn == nil {
		o.conn = gatewaytest.NewConn("test")
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: o.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	o.statusCfg.PoW = lowPoW
	sc, err := status.New(o.nodes[0], o.statusCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{Routes: []gateway.Route{{Chat: "status", Channels: []gateway.RouteChannel{{Channel: "test:room"}}}},
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, MaxAttempts: 4}
	gw, err := gateway.New(cfg, gateway.Deps{Ledger: st, Status: gateway.StatusOver(sc),
		Puppets: puppet.New(o.secret, st, nil), Connectors: []bridges.Connector{o.conn}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	e := &env{gw: gw, st: st, conn: o.conn}
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
	uc, err := status.New(o.nodes[1], status.Config{PoW: lowPoW})
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
	mid, err := bridges.NewRemoteMsgID("test", id)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := bridges.NewRemoteUserID("test", user)
	return bridges.Event{Kind: bridges.KindMessage, Origin: bridges.Origin{Network: "test", Channel: "test:room", ID: mid},
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

// TestGateway_statusToConnector: a Status user's message, sent in both payload
// generations, reaches the connector once, with the author's alias, the route's channel
// and an idempotency key.
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
	e.conn.Quiet(t, time.Second) // the other format's twin is not relayed again
}

// TestGateway_connectorToStatusAsPuppet: a remote user's message arrives in Status
// signed by that user's puppet key, with the nick prefix.
func TestGateway_connectorToStatusAsPuppet(t *testing.T) {
	secret, _ := identity.GenerateSecret(rand.Reader)
	e := newEnv(t, envOpts{secret: secret})
	if err := e.host.Deliver(context.Background(), remoteEvent(t, "r1", "alice-id", "Alice", "hi from the other side")); err != nil {
		t.Fatal(err)
	}
	m := nextStatus(t, e.user)
	want, _ := secret.PuppetKey(identity.PuppetID{Network: "test", Account: "test", User: "alice-id"})
	if !m.Author.Equal(&want.PublicKey) || m.Text != "[test] <Alice> hi from the other side" {
		t.Fatalf("%q signed by %s, want alice's puppet %s", m.Text, m.AuthorKey, identity.ChatKey(&want.PublicKey))
	}
	e.conn.Quiet(t, time.Second) // the puppet's echo did not loop back
}

// TestGateway_replyIsMapped: a Status reply to a bridged message reaches the connector
// as a reply to the connector's own message ID; a reply to a Status user's message may
// name either payload's id (a 2019 client answers the Transit one, a 2020 client the
// protobuf one): both map to the connector's copy.
func TestGateway_replyIsMapped(t *testing.T) {
	e := newEnv(t, envOpts{})
	if err := e.host.Deliver(context.Background(), remoteEvent(t, "orig", "dave", "Dave", "question?")); err != nil {
		t.Fatal(err)
	}
	m := nextStatus(t, e.user)
	// Wait until the gateway recorded the Status ids of the puppet's message (its mark
	// is written, then the queue depth changes).
	deadline := time.After(20 * time.Second)
	for {
		changed := e.gw.Changed()
		if ids, _ := e.st.MappedIDs(context.Background(), "test:room", "test:orig", "status:status"); len(ids) > 0 {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("puppet message never mapped")
		}
	}
	if _, err := e.user.SendMessage(context.Background(), status.Outgoing{Text: "answer", ResponseTo: m.ID.String()}, e.userKey); err != nil {
		t.Fatal(err)
	}
	out := e.conn.Next(t)
	if out.Event.Text != "answer" || out.ReplyTo != "test:orig" {
		t.Fatalf("reply arrived as %+v (ReplyTo %q)", out.Event, out.ReplyTo)
	}
	ids, err := e.user.Send(context.Background(), "status question", e.userKey)
	if err != nil || len(ids) != 2 {
		t.Fatalf("send: %v %v", ids, err)
	}
	q := e.conn.Next(t)
	qID := e.conn.IDOf(q.Key)
	for i, id := range ids {
		text := fmt.Sprintf("answer to twin %d", i)
		// A clock of its own, so that the two answers are two messages.
		msg := status.Outgoing{Text: text, ResponseTo: id.String(), Clock: e.user.NextClock(time.Now())}
		if _, err := e.user.SendMessage(context.Background(), msg, e.userKey); err != nil {
			t.Fatal(err)
		}
		if out := e.conn.Next(t); out.Event.Text != text || out.ReplyTo != qID {
			t.Fatalf("%s arrived as %q replying to %q, want %q", text, out.Event.Text, out.ReplyTo, qID)
		}
	}
}

// TestGateway_mailserverCatchUpIsDeduplicated: after a restart the gateway's chat
// catches up from a mailserver by itself (core/status, HistoryConfig.Mailservers); what
// it relayed before is a no-op, and what was sent while it was down is relayed once.
func TestGateway_mailserverCatchUpIsDeduplicated(t *testing.T) {
	archive, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "archive.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { archive.Close() })
	srv, err := mailserver.NewServer(archive.Archive(), mailserver.ServerConfig{MinPoW: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ms := statusnet.NewNode(t, node.Config{ZeroPoW: true, Whisper: whisper.Config{Archiver: srv, Requests: srv}})

	nodeKey, _ := crypto.GenerateKey()
	mc, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: nodeKey})
	if err != nil {
		t.Fatal(err)
	}
	a := statusnet.NewNode(t, node.Config{ZeroPoW: true, Whisper: whisper.Config{Completions: mc}})
	b := statusnet.NewNode(t, node.Config{ZeroPoW: true})
	if err := a.AddPeer(ms.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, a, ms.ID())
	statusnet.Connect(t, a, b)
	statusnet.Connect(t, b, ms)

	synced := make(chan error, 4)
	opts := envOpts{nodes: []*node.Node{a, b}, dbPath: filepath.Join(t.TempDir(), "gw.db"),
		statusCfg: status.Config{History: status.HistoryConfig{Client: mc, Window: time.Hour,
			Mailservers: func() (trusted, found []string) { return []string{ms.Enode()}, nil },
			Synced:      func(_ string, err error) { synced <- err }}}}
	opts.secret, _ = identity.GenerateSecret(rand.Reader)
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
	uc, err := status.New(b, status.Config{PoW: lowPoW})
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
		e.conn.Next(t)
	}
	e.stop()
	// Sent while the gateway is down: node A has no subscriber, the mailserver archives
	// it (the archive has no change signal: look again until it holds all 4 messages).
	if _, err := user.Send(context.Background(), "while down", e.userKey); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		envs, _, err := archive.Archive().Query(context.Background(), mailserver.Query{Lower: uint32(time.Now().Add(-time.Hour).Unix()),
			Upper: uint32(time.Now().Add(time.Minute).Unix()), Bloom: whisper.BloomOf(whisper.TopicFromName("status")), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) >= 8 { // 4 messages × 2 formats
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("mailserver archived %d envelopes, want 8", len(envs))
		}
	}
	opts.conn = gatewaytest.NewConn("test")
	e2 := newEnv(t, opts)
	waitSync()
	if out := e2.conn.Next(t); out.Event.Text != "while down" {
		t.Fatalf("after catch-up the connector got %q, want only the message sent while down", out.Event.Text)
	}
	e2.conn.Quiet(t, 1500*time.Millisecond)
}
