package mailserver_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// syncPeer is a mailserver of ours on its own node, over a memory archive, that the test
// starts (Run) when it chooses: Run is what notes where the archive stops.
type syncPeer struct {
	archive *memArchive
	server  *mailserver.Server
	node    *node.Node
	run     func() // starts Run until the test ends
}

func newSyncPeer(t *testing.T, cfg mailserver.ServerConfig, opts ...func(*whisper.Config)) *syncPeer {
	t.Helper()
	sp := &syncPeer{archive: newMemArchive()}
	var err error
	if sp.server, err = mailserver.NewServer(sp.archive, cfg); err != nil {
		t.Fatal(err)
	}
	sp.run = func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sp.server.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	wc := whisper.Config{Archiver: sp.server, Requests: sp.server, Syncs: sp.server}
	for _, o := range opts {
		o(&wc)
	}
	sp.node = statusnet.NewNode(t, node.Config{Whisper: wc})
	return sp
}

// runSync runs sp's RunSync from peers until the test ends; its gap rounds arrive on the
// channel returned (sp's ServerConfig.GapSynced must send them to rounds).
func (sp *syncPeer) runSync(t *testing.T, peers ...enode.ID) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sp.server.RunSync(ctx, sp.node, peers) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunSync: %v", err)
		}
	})
}

// nextRound waits for the next gap round on rounds.
func nextRound(t *testing.T, rounds <-chan mailserver.GapSync) mailserver.GapSync {
	t.Helper()
	select {
	case r := <-rounds:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no gap round within a minute")
		return mailserver.GapSync{}
	}
}

// skewClock is the time now plus an offset the test moves forward: the one clock of a
// node and its mailserver, for an outage that lasts longer than it really does.
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

// recordsAt builds n envelopes of topic created from base on, a second apart, encrypted
// with syncKey, their payloads tagged.
func recordsAt(t *testing.T, topic whisper.Topic, base time.Time, n int, tag string) []mailserver.Record {
	t.Helper()
	key := syncKey(t)
	alice, _ := crypto.GenerateKey()
	recs := make([]mailserver.Record, n)
	for i := range recs {
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: topic, KeySym: key, Src: alice, Payload: []byte(fmt.Sprintf("%s %d", tag, i)), TTL: 10,
			Clock: func() time.Time { return base.Add(time.Duration(i) * time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = mailserver.RecordOf(env)
	}
	return recs
}

// TestSync_gapFromPeer (issue 16, ours ⇄ ours; the status-go proofs are in
// interop_test.go): a mailserver that was down while its peer archived 2,500 envelopes
// (three 123/124 rounds of at most 1,000) notes at start where its archive stops, syncs
// that gap from the peer as soon as it connects, and then holds every envelope once;
// what it had before the gap is not fetched again beyond the margin.
func TestSync_gapFromPeer(t *testing.T) {
	topic := whisper.TopicFromName("sync")
	now := time.Now()
	before := recordsAt(t, topic, now.Add(-2*time.Hour), 100, "before") // both had these
	gap := recordsAt(t, topic, now.Add(-45*time.Minute), 2500, "gap")   // only the peer
	peer := newSyncPeer(t, mailserver.ServerConfig{RequestBurst: 100})
	peer.run()
	if err := peer.archive.Put(context.Background(), append(append([]mailserver.Record{}, before...), gap...)); err != nil {
		t.Fatal(err)
	}
	rounds := make(chan mailserver.GapSync, 4)
	ours := newSyncPeer(t, mailserver.ServerConfig{GapSynced: func(g mailserver.GapSync) { rounds <- g }})
	if err := ours.archive.Put(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	ours.run() // "restarts": notes that its newest envelope is 2 h old
	if err := ours.node.AddPeer(peer.node.Enode(), true); err != nil {
		t.Fatal(err)
	}
	ours.runSync(t, peer.node.ID())
	if r := nextRound(t, rounds); r.Outage.Seq != 0 || r.Archived < 2500 {
		t.Fatalf("start round: %+v, want the 2,500 of the gap (and the margin's)", r)
	}
	if err := ours.archive.waitLen(2600, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := peer.server.Stats(); st.SyncRequests != 3 {
		t.Errorf("peer served %d sync requests, want 3 rounds (1,000 + 1,000 + 500)", st.SyncRequests)
	}
	// Served to a client: every envelope once.
	f := &fixture{archive: ours.archive, server: ours.server, serverNode: ours.node, topic: topic, sym: syncKey(t)}
	f.connectClient(t)
	sub := f.subscribe(t)
	// The subscription is read while the request runs: 2,600 envelopes are more than its
	// buffer, and a full buffer holds the client node's read loop (backpressure).
	reqDone := make(chan error, 1)
	go func() {
		_, err := f.client.Request(context.Background(), f.peer, mailserver.History{Topics: []whisper.Topic{topic},
			From: now.Add(-3 * time.Hour), To: now}, nil)
		reqDone <- err
	}()
	collect(t, sub, map[string]bool{}, 2600)
	if err := <-reqDone; err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub.C():
		t.Fatalf("extra message %q", m.Payload)
	default:
	}
}

// TestSync_outageGap (issue 16 follow-up): a mailserver that loses all its peers while
// running (the test disconnects them; its clock, the node's one, moves 2 min on
// meanwhile) misses what its peer archives then; once a peer is back it syncs that
// gap from its peer mailserver on its own, from the outage's start less SyncMargin,
// and serves it. Before outages were watched, RunSync synced once, at start, and the
// gap stayed.
func TestSync_outageGap(t *testing.T) {
	topic := whisper.TopicFromName("outage")
	clk := &skewClock{}
	rounds := make(chan mailserver.GapSync, 4)
	peer := newSyncPeer(t, mailserver.ServerConfig{RequestBurst: 100})
	peer.run()
	ours := newSyncPeer(t, mailserver.ServerConfig{Clock: clk.Now, SyncMargin: 10 * time.Second,
		GapSyncInterval: time.Millisecond, GapSynced: func(g mailserver.GapSync) { rounds <- g }},
		func(c *whisper.Config) { c.Clock = clk.Now })
	ours.run()
	if err := ours.node.AddPeer(peer.node.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, ours.node, peer.node.ID())
	ours.runSync(t, peer.node.ID())
	if r := nextRound(t, rounds); r.Outage.Seq != 0 || r.Archived != 0 {
		t.Fatalf("start round: %+v, want an empty archive synced from an empty peer", r)
	}

	// The outage: every peer gone, for 2 min of the node's clock.
	if err := ours.node.RemovePeer(peer.node.Enode()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ours.node, peer.node.ID())
	missed := recordsAt(t, topic, time.Now(), 100, "missed") // posted during the outage
	if err := peer.archive.Put(context.Background(), missed); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	// The peer dials us (we dialled it last: geth's dialer waits 35 s before that again).
	if err := peer.node.AddPeer(ours.node.Enode(), false); err != nil {
		t.Fatal(err)
	}
	r := nextRound(t, rounds)
	if r.Outage.Seq == 0 || r.Archived != 100 {
		t.Fatalf("outage round: %+v, want the 100 missed", r)
	}
	if lag := r.Outage.From.Sub(r.From); lag != 10*time.Second {
		t.Errorf("outage round from %v, %v before the outage; want SyncMargin (10 s)", r.From, lag)
	}
	if err := ours.archive.waitLen(100, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f := &fixture{archive: ours.archive, server: ours.server, serverNode: ours.node, topic: topic, sym: syncKey(t)}
	f.connectClient(t)
	sub := f.subscribe(t)
	reqDone := make(chan error, 1)
	go func() {
		_, err := f.client.Request(context.Background(), f.peer, mailserver.History{Topics: []whisper.Topic{topic},
			From: time.Now().Add(-time.Hour), To: clk.Now()}, nil)
		reqDone <- err
	}()
	collect(t, sub, map[string]bool{}, 100)
	if err := <-reqDone; err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-rounds:
		t.Errorf("a round without an outage: %+v", r)
	default:
	}
}

// TestSync_refusals: bad sync requests get a response carrying the error and keep the
// peer; a sync from a peer that is no mailserver times out; a disconnect ends it with
// ErrPeerGone.
func TestSync_refusals(t *testing.T) {
	peer := newSyncPeer(t, mailserver.ServerConfig{RequestBurst: 100})
	peer.run()
	plain := statusnet.NewNode(t, node.Config{})
	ours := newSyncPeer(t, mailserver.ServerConfig{SyncTimeout: 2 * time.Second})
	ours.run()
	statusnet.Connect(t, ours.node, peer.node)
	statusnet.Connect(t, ours.node, plain)
	p := ours.node.Whisper().Peer(peer.node.ID())
	now := time.Now()
	if _, err := ours.server.SyncFrom(context.Background(), p, now, now.Add(-time.Hour)); !errors.Is(err, mailserver.ErrBadRequest) {
		t.Errorf("lower above upper: %v", err)
	}
	if res, err := ours.server.SyncFrom(context.Background(), p, now.Add(-time.Hour), now); err != nil || res.Rounds != 1 {
		t.Errorf("empty range: %+v, %v", res, err)
	}
	if _, err := ours.server.SyncFrom(context.Background(), ours.node.Whisper().Peer(plain.ID()), now.Add(-time.Hour), now); err == nil {
		t.Error("sync from a plain node: no error")
	}
}

func syncKey(t *testing.T) *whisper.SymKey {
	t.Helper()
	k, err := whisper.SymKeyFromPassword("sync")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
