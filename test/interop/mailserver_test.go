package interop

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

// ourMailserver starts one of our nodes as a mailserver on an SQLite archive.
func ourMailserver(t *testing.T) (*node.Node, *mailserver.Server, *store.Archive) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "archive.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := mailserver.NewServer(st.Archive(), mailserver.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	n := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Archiver: srv, Requests: srv}})
	return n, srv, st.Archive()
}

// archiveOld puts n envelopes created an hour ago on topic "status" straight into the
// archive: long expired, so only a mailserver can deliver them.
func archiveOld(t *testing.T, a *store.Archive, n int) []*whisper.Envelope {
	t.Helper()
	sym := mustSymKey(t, "status")
	bob := mustKey(t, "bob")
	base := time.Now().Add(-time.Hour)
	var envs []*whisper.Envelope
	var recs []mailserver.Record
	for i := range n {
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: whisper.TopicFromName("status"), KeySym: sym, Src: bob,
			Payload: []byte(fmt.Sprintf("history %d", i)), TTL: 10, Clock: func() time.Time { return base.Add(time.Duration(i) * time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
		recs = append(recs, mailserver.RecordOf(env))
	}
	if err := a.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return envs
}

// TestMailserver_gethClientReadsOurServer: geth v1.9.20 asks our mailserver for history in
// geth's own binary request form and gets every envelope, oldest first, as its client
// expects (one envelope per code-127 packet).
func TestMailserver_gethClientReadsOurServer(t *testing.T) {
	ours, srv, archive := ourMailserver(t)
	envs := archiveOld(t, archive, 5)
	ref := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	if err := ours.AddPeer(ref.Enode(), false); err != nil {
		t.Fatal(err)
	}
	waitRefPeers(t, ref, 1)
	sym := mustSymKey(t, "status")
	if _, err := ref.Subscribe(whisper.TopicFromName("status"), sym.Bytes(), nil, 0); err != nil {
		t.Fatal(err)
	}
	now := uint32(time.Now().Unix())
	bloom := whisper.BloomOf(whisper.TopicFromName("status"))
	if _, err := ref.RequestHistory(HistoryRequest{Peer: ours.Enode(), Password: mailserver.DefaultPassword,
		Lower: now - 7200, Upper: now, Bloom: bloom[:], PoW: 0.002}); err != nil {
		t.Fatal(err)
	}
	for i, want := range envs {
		m := ref.WaitMessage(t, msgTimeout)
		if m.Hash != want.Hash() || string(m.Payload) != fmt.Sprintf("history %d", i) {
			t.Fatalf("message %d: got %q (%x), want %x", i, m.Payload, m.Hash[:4], want.Hash().Bytes()[:4])
		}
	}
	if st := srv.Stats(); st.Served != 5 || st.Failed != 0 {
		t.Fatalf("server stats %+v", st)
	}
}

// TestMailserver_ourClientReadsGethServer: our client fetches history from go-ethereum
// v1.9.20's LevelDB mailserver (binary request, no completion) and our subscription gets
// every message once.
func TestMailserver_ourClientReadsGethServer(t *testing.T) {
	ref := StartRefNode(t, RefNodeOptions{MinPoW: 0.001, MailserverPassword: mailserver.DefaultPassword, MailserverPoW: 0.001})
	sym := mustSymKey(t, "status")
	topic := whisper.TopicFromName("status")
	// Posted to geth, archived by geth; TTL 3 so that they leave geth's pool before we ask.
	for i := range 3 {
		if _, _, err := ref.Post(SealRequest{Payload: []byte(fmt.Sprintf("from geth's archive %d", i)), Topic: topic, TTL: 3,
			PoW: 0.002, WorkTime: 5, SymKey: sym.Bytes(), SrcPriv: crypto.FromECDSA(mustKey(t, "bob"))}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "geth to archive 3 envelopes", func() bool {
		archived, _, err := ref.MailserverStats()
		return err == nil && archived == 3
	})
	time.Sleep(5 * time.Second) // let them expire out of geth's pool: only the mailserver may deliver them

	nodeKey, _ := crypto.GenerateKey()
	client, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: nodeKey, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ours := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Completions: client}})
	sub := subscribeOurs(t, ours, whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym, AllowP2P: true})
	if err := ours.AddPeer(ref.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, ours, refID(t, ref))
	n, err := client.RequestGeth(context.Background(), ours.Whisper().Peer(refID(t, ref)), []whisper.Topic{topic},
		time.Now().Add(-time.Hour), time.Now(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("geth delivered %d envelopes, want 3", n)
	}
	seen := map[string]bool{}
	for len(seen) < 3 {
		m := next(t, sub)
		if seen[string(m.Payload)] {
			t.Fatalf("duplicate %q", m.Payload)
		}
		seen[string(m.Payload)] = true
	}
}
