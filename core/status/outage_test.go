package status_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// The gateway's Transport is a *node.Node: it must report outages, or chats catch up
// only at join.
var _ status.Outages = (*node.Node)(nil)

// skewClock is the time now plus an offset the test moves forward: the one clock of a
// node and its SDK client, for an outage that lasts longer than it really does.
type skewClock struct{ off atomic.Int64 }

func (c *skewClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *skewClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// waitGone waits on n's peer events until id is no longer connected.
func waitGone(t *testing.T, n *node.Node, id enode.ID) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		ch := n.PeersChanged()
		if n.Peer(id) == nil {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("peer %s still connected", id.TerminalString())
		}
	}
}

// waitArchived waits until srv has written n envelopes. The archive has no change
// signal: its counters are looked at again every 20 ms, up to a deadline.
func waitArchived(t *testing.T, srv *mailserver.Server, n uint64) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for srv.Stats().Archived < n {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("archived %d of %d", srv.Stats().Archived, n)
		}
	}
}

// catchUpRig is a chat's own catch-up on real nodes: our mailserver on node ms, and
// node ours, on the clock clk, whose client has joined "status" (room) and finished
// its catch-up at join. Catch-ups after an outage report to outageSynced.
type catchUpRig struct {
	ctx          context.Context
	srv          *mailserver.Server
	ms, ours     *node.Node
	clk          *skewClock
	client       *status.Client
	room         *status.Chat
	outageSynced chan whisper.Outage
}

// newCatchUpRig starts the rig. requests, if not nil, wraps the mailserver's request
// handler. wc, cc and hc are the test's own settings of our node's Whisper, the
// mailserver client and the chats' history; the rig sets what ties them together
// (Completions, Clock, NodeKey, Client, Mailservers, Synced, OutageSynced).
func newCatchUpRig(t *testing.T, requests func(whisper.RequestHandler) whisper.RequestHandler, wc whisper.Config,
	cc mailserver.ClientConfig, hc status.HistoryConfig) *catchUpRig {
	t.Helper()
	r := &catchUpRig{clk: &skewClock{}, outageSynced: make(chan whisper.Outage, 4)}
	var err error
	if r.srv, err = mailserver.NewServer(openStore(t, "archive.db").Archive(), mailserver.ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx = ctx
	t.Cleanup(cancel)
	srvDone := make(chan error, 1)
	go func() { srvDone <- r.srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-srvDone })
	var handler whisper.RequestHandler = r.srv
	if requests != nil {
		handler = requests(handler)
	}
	r.ms = statusnet.NewNode(t, node.Config{ZeroPoW: true, Whisper: whisper.Config{Archiver: r.srv, Requests: handler}})

	if cc.NodeKey, err = crypto.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	mc, err := mailserver.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	wc.Completions, wc.Clock = mc, r.clk.Now
	r.ours = statusnet.NewNode(t, node.Config{ZeroPoW: true, Whisper: wc})
	if err := r.ours.AddPeer(r.ms.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, r.ours, r.ms.ID())
	synced := make(chan error, 1)
	hc.Client = mc
	hc.Mailservers = func() (trusted, found []string) { return []string{r.ms.Enode()}, nil }
	hc.Synced = func(_ string, err error) { synced <- err }
	hc.OutageSynced = func(_ string, o whisper.Outage, err error) {
		if err != nil {
			t.Errorf("catch-up after the outage: %v", err)
		}
		r.outageSynced <- o
	}
	if r.client, err = status.New(r.ours, status.Config{Clock: r.clk.Now, History: hc}); err != nil {
		t.Fatal(err)
	}
	if r.room, err = r.client.Join(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.room.Leave)
	select {
	case err := <-synced:
		if err != nil {
			t.Fatalf("catch-up at join: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no catch-up at join within 30 s")
	}
	return r
}

// TestCatchUp_afterOutage (issue 16 follow-up): a chat's own catch-up (what the gateway
// reads through) asks its mailserver again after an outage. The client's node loses
// its only peer (disconnected; 2 min pass on its clock) while Bob posts 5 messages,
// which only the mailserver archives; when the mailserver is back, the chat fetches the
// history since the outage's start (less the margin) and delivers those 5, each once,
// and not again the message it had live before the outage, which that range holds too.
// Before the change the chat caught up once, at join, and the 5 never arrived.
func TestCatchUp_afterOutage(t *testing.T) {
	r := newCatchUpRig(t, nil, whisper.Config{}, mailserver.ClientConfig{}, status.HistoryConfig{Window: time.Hour})
	ctx, srv, ms, ours, clk, room, client := r.ctx, r.srv, r.ms, r.ours, r.clk, r.room, r.client
	bobNode := statusnet.NewNode(t, node.Config{ZeroPoW: true})
	statusnet.Connect(t, bobNode, ms)

	bobClient, err := status.New(bobNode, status.Config{PoW: 0.00001})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := bobClient.Join(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bob.Leave)
	bobKey := key(t, "bob")
	if _, err := bob.Send(ctx, "before the outage", bobKey); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	collectTexts(t, room, seen, 1)

	// The outage.
	if err := ours.RemovePeer(ms.Enode()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ours, ms.ID())
	for i := range 5 {
		if _, err := bob.Send(ctx, fmt.Sprintf("during the outage %d", i), bobKey); err != nil {
			t.Fatal(err)
		}
	}
	waitArchived(t, srv, 12) // each message twice (transit and protobuf twins)
	clk.Advance(2 * time.Minute)
	// The mailserver dials us (we dialled it last: geth's dialer waits 35 s before that
	// again).
	if err := ms.AddPeer(ours.Enode(), false); err != nil {
		t.Fatal(err)
	}
	collectTexts(t, room, seen, 6)
	select {
	case o := <-r.outageSynced:
		if o.To.Sub(o.From) < 2*time.Minute {
			t.Errorf("outage %+v, want one of over 2 min", o)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no catch-up after the outage within 30 s")
	}
	// The clock back in step, a live message comes through, and nothing else: in
	// particular not "before the outage" again, which the catch-up fetched too.
	clk.Advance(-2 * time.Minute)
	if _, err := bob.Send(ctx, "after the outage", bobKey); err != nil {
		t.Fatal(err)
	}
	collectTexts(t, room, seen, 7)
	select {
	case m := <-room.Messages():
		t.Fatalf("extra message %q", m.Text)
	default:
	}
	if st := client.Stats(); st.Delivered != 7 {
		t.Errorf("stats %+v: want 7 delivered", st)
	}
}

// requestLog is a mailserver's request handler that notes the lower bound of each
// history request it decodes before the server serves it: what a client asked for, as
// it reached the wire.
type requestLog struct {
	whisper.RequestHandler
	keys mailserver.Keys

	mu     sync.Mutex
	lowers []uint32
}

func (l *requestLog) HandleRequest(p *whisper.Peer, body []byte) error {
	if req, err := mailserver.DecodeRequest(body, l.keys, 0); err == nil {
		l.mu.Lock()
		l.lowers = append(l.lowers, req.Lower)
		l.mu.Unlock()
	}
	return l.RequestHandler.HandleRequest(p, body)
}

func (l *requestLog) last() (uint32, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lowers) == 0 {
		return 0, 0
	}
	return l.lowers[len(l.lowers)-1], len(l.lowers)
}

// TestCatchUp_outageMargin: the catch-up after an outage asks its mailserver from the
// outage's start less the configured HistoryConfig.OutageMargin (node.catch_up_margin),
// not the 5 min default, less the client's Drift. The node's clock (the test's) moves
// 30 min on after the catch-up at join, short of the node's outage threshold (1 h here),
// so that the last sync's end is older than the outage's start less the margin and
// does not bound the request; then the node is alone for 2 h of that clock.
func TestCatchUp_outageMargin(t *testing.T) {
	const margin, drift = 90 * time.Second, 7 * time.Second
	sym, err := whisper.SymKeyFromPassword(mailserver.DefaultPassword)
	if err != nil {
		t.Fatal(err)
	}
	var requests *requestLog
	r := newCatchUpRig(t, func(h whisper.RequestHandler) whisper.RequestHandler {
		requests = &requestLog{RequestHandler: h, keys: mailserver.Keys{Sym: sym}}
		return requests
	}, whisper.Config{OutageThreshold: time.Hour}, mailserver.ClientConfig{Drift: drift}, status.HistoryConfig{OutageMargin: margin})
	ms, ours, clk := r.ms, r.ours, r.clk
	joined := clk.Now()
	_, atJoin := requests.last()

	clk.Advance(30 * time.Minute)
	if err := ours.RemovePeer(ms.Enode()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ours, ms.ID())
	clk.Advance(2 * time.Hour)
	if err := ms.AddPeer(ours.Enode(), false); err != nil {
		t.Fatal(err)
	}
	var o whisper.Outage
	select {
	case o = <-r.outageSynced:
	case <-time.After(30 * time.Second):
		t.Fatal("no catch-up after the outage within 30 s")
	}
	if o.From.Before(joined.Add(30*time.Minute)) || o.To.Sub(o.From) < 2*time.Hour {
		t.Fatalf("outage %v to %v; want one from 30 min after the join (%v), of 2 h", o.From, o.To, joined)
	}
	lower, n := requests.last()
	if n != atJoin+1 {
		t.Fatalf("the mailserver got %d requests after the outage, want 1", n-atJoin)
	}
	if want := uint32(o.From.Add(-margin).Add(-drift).Unix()); lower != want {
		t.Errorf("catch-up after the outage asked from %v, want %v: the outage's start %v less the %v margin and the %v drift",
			time.Unix(int64(lower), 0).UTC(), time.Unix(int64(want), 0).UTC(), o.From.UTC(), margin, drift)
	}
}
