package onnode

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

// skewClock is the time now plus an offset the test moves forward: the clock of the
// gateway's node and Status client, for an outage that lasts longer than it really does.
type skewClock struct{ off atomic.Int64 }

func (c *skewClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *skewClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// TestGateway_catchUpAfterOutage (issue 16 follow-up): the gateway's node loses its
// only peer, the mailserver (disconnected; 2 min pass on its clock), while a Status
// user posts; once the mailserver is back the chat's catch-up fetches what was missed
// and the connector gets it once, and the message it had before the outage (which the
// range fetched holds too) not again.
func TestGateway_catchUpAfterOutage(t *testing.T) {
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

	clk := &skewClock{}
	nodeKey, _ := crypto.GenerateKey()
	mc, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: nodeKey})
	if err != nil {
		t.Fatal(err)
	}
	a := statusnet.NewNode(t, node.Config{ZeroPoW: true, Whisper: whisper.Config{Completions: mc, Clock: clk.Now}})
	b := statusnet.NewNode(t, node.Config{ZeroPoW: true})
	if err := a.AddPeer(ms.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, a, ms.ID())
	statusnet.Connect(t, b, ms) // the user reaches the gateway through the mailserver only

	synced := make(chan error, 1)
	outageSynced := make(chan error, 4)
	e := newEnv(t, envOpts{nodes: []*node.Node{a, b}, statusCfg: status.Config{Clock: clk.Now,
		History: status.HistoryConfig{Client: mc, Window: time.Hour,
			Mailservers:  func() (trusted, found []string) { return []string{ms.Enode()}, nil },
			Synced:       func(_ string, err error) { synced <- err },
			OutageSynced: func(_ string, _ whisper.Outage, err error) { outageSynced <- err }}}})
	select {
	case err := <-synced:
		if err != nil {
			t.Fatalf("catch-up at join: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no catch-up at join within 30 s")
	}
	if _, err := e.user.Send(context.Background(), "before the outage", e.userKey); err != nil {
		t.Fatal(err)
	}
	if out := e.conn.Next(t); out.Event.Text != "before the outage" {
		t.Fatalf("connector got %q", out.Event.Text)
	}

	// The outage.
	if err := a.RemovePeer(ms.Enode()); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for changed := a.PeersChanged(); a.Peer(ms.ID()) != nil; changed = a.PeersChanged() {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("the mailserver is still connected")
		}
	}
	if _, err := e.user.Send(context.Background(), "while cut off", e.userKey); err != nil {
		t.Fatal(err)
	}
	// The archive has no change signal: look again until it holds both messages (two
	// payload formats each).
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline = time.After(10 * time.Second)
	for srv.Stats().Archived < 4 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("mailserver archived %d envelopes, want 4", srv.Stats().Archived)
		}
	}
	clk.Advance(2 * time.Minute)
	// The mailserver dials the gateway's node (which dialled it last: geth's dialer waits
	// 35 s before that again).
	if err := ms.AddPeer(a.Enode(), false); err != nil {
		t.Fatal(err)
	}
	if out := e.conn.Next(t); out.Event.Text != "while cut off" {
		t.Fatalf("after the outage the connector got %q, want the message sent while cut off", out.Event.Text)
	}
	select {
	case err := <-outageSynced:
		if err != nil {
			t.Fatalf("catch-up after the outage: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no catch-up after the outage within 30 s")
	}
	e.conn.Quiet(t, 1500*time.Millisecond)
}
