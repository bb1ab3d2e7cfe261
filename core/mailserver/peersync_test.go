package mailserver_test

import (
	"context"
	"errors"
	"fmt"
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

func newSyncPeer(t *testing.T, cfg mailserver.ServerConfig) *syncPeer {
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
	sp.node = statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Archiver: sp.server, Requests: sp.server, Syncs: sp.server}})
	return sp
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
	ours := newSyncPeer(t, mailserver.ServerConfig{})
	if err := ours.archive.Put(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	ours.run() // "restarts": notes that its newest envelope is 2 h old
	if err := ours.node.AddPeer(peer.node.Enode(), true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- ours.server.RunSync(ctx, ours.node.Whisper().Peer, []enode.ID{peer.node.ID()})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
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
