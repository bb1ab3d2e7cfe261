package status_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

func openStore(t *testing.T, name string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(t.TempDir(), name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// mailserverNode starts a node serving history from an SQLite archive holding n public
// chat messages of #status, sent an hour ago (long expired: only the mailserver has them).
func mailserverNode(t *testing.T, n int) *node.Node {
	t.Helper()
	archive := openStore(t, "archive.db").Archive()
	srv, err := mailserver.NewServer(archive, mailserver.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	sym, _ := chat.PublicChatKey("status")
	bob := key(t, "bob")
	base := time.Now().Add(-time.Hour)
	recs := make([]mailserver.Record, 0, n)
	for i := range n {
		at := base.Add(time.Duration(i) * time.Second)
		payload, err := chat.Encode(&chat.Message{Clock: uint64(at.UnixMilli()), Timestamp: uint64(at.UnixMilli()),
			Text: fmt.Sprintf("while you were away %d", i), ChatID: "status", MessageType: chat.MessageTypePublicGroup,
			ContentType: chat.ContentTextPlain}, chat.FormatTransit, bob)
		if err != nil {
			t.Fatal(err)
		}
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: chat.PublicChatTopic("status"), KeySym: sym, Src: bob,
			Payload: payload, TTL: 15, Clock: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, mailserver.RecordOf(env))
	}
	if err := archive.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Archiver: srv, Requests: srv}})
}

// session is one run of a client application: its own node and SDK client, sharing the
// sync store with earlier runs (a restart).
type session struct {
	room *status.Chat
	peer *whisper.Peer
}

func startSession(t *testing.T, ms *node.Node, sync mailserver.SyncStore) *session {
	t.Helper()
	nodeKey, _ := crypto.GenerateKey()
	mc, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: nodeKey, Limit: 300})
	if err != nil {
		t.Fatal(err)
	}
	n := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Completions: mc}})
	if err := n.AddPeer(ms.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, n, ms.ID())
	client, err := status.New(n, status.Config{History: status.HistoryConfig{Client: mc, Store: sync, Window: 2 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	room, err := client.Join(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(room.Leave)
	return &session{room: room, peer: n.Whisper().Peer(ms.ID())}
}

func collectTexts(t *testing.T, room *status.Chat, seen map[string]bool, n int) {
	t.Helper()
	for len(seen) < n {
		select {
		case m := <-room.Messages():
			if seen[m.Text] {
				t.Fatalf("duplicate %q", m.Text)
			}
			seen[m.Text] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("got %d of %d messages", len(seen), n)
		}
	}
}

// TestSyncHistory_offlineFor1000Messages: a subscriber that was offline while 1,000
// messages were sent receives every one of them after reconnecting, with zero duplicates.
func TestSyncHistory_offlineFor1000Messages(t *testing.T) {
	ms := mailserverNode(t, 1000)
	s := startSession(t, ms, openStore(t, "client.db"))
	var last status.HistoryProgress
	if err := s.room.SyncHistory(context.Background(), s.peer, func(p status.HistoryProgress) { last = p }); err != nil {
		t.Fatal(err)
	}
	collectTexts(t, s.room, map[string]bool{}, 1000)
	if !last.Done || last.Envelopes != 1000 {
		t.Fatalf("last progress %+v", last)
	}
	select {
	case m := <-s.room.Messages():
		t.Fatalf("extra message %q", m.Text)
	default:
	}
}

// TestSyncHistory_restartResumes: a catch-up interrupted after its first page resumes,
// after a restart, from the cursor saved in the store, and the two runs together deliver
// every message once.
func TestSyncHistory_restartResumes(t *testing.T) {
	ms := mailserverNode(t, 700)
	sync := openStore(t, "client.db")
	first := startSession(t, ms, sync)
	ctx, cancel := context.WithCancel(context.Background())
	err := first.room.SyncHistory(ctx, first.peer, func(status.HistoryProgress) { cancel() })
	if err == nil {
		t.Fatal("interrupted sync returned no error")
	}
	seen := map[string]bool{}
	collectTexts(t, first.room, seen, 300)
	if st, ok, _ := sync.LoadSync(context.Background(), "status"); !ok || len(st.Cursor) != mailserver.CursorLength {
		t.Fatalf("saved state %+v ok=%v, want a cursor", st, ok)
	}
	first.room.Leave()

	second := startSession(t, ms, sync) // the restart: new node, new client, same store
	if err := second.room.SyncHistory(context.Background(), second.peer, nil); err != nil {
		t.Fatal(err)
	}
	collectTexts(t, second.room, seen, 700)
	select {
	case m := <-second.room.Messages():
		t.Fatalf("extra message %q", m.Text)
	default:
	}
}
