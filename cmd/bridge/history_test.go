package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
)

// TestChat_mailserverHistory runs our own mailserver node (wired as runGateway wires it,
// over a SQLite store) holding 50 expired messages of #status from an hour ago, and
// checks that bridge chat --mailserver fetches them: each is printed once, and stderr
// reports the sync as done with 50 messages.
// startHistoryMailserver runs our own mailserver node (wired as runGateway wires it,
// over a SQLite store, with discovery dc) holding n expired messages of #status from an
// hour ago ("history message 00" …), and returns the node.
func startHistoryMailserver(t *testing.T, n int, dc node.DiscoveryConfig) *node.Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())

	// The mailserver node.
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "ms.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mailserver.NewServer(st.Archive(), mailserver.ServerConfig{NodeKey: key})
	if err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(node.Config{ListenAddr: "127.0.0.1:0", Discovery: dc,
		Whisper: whisper.Config{MinPoW: node.DefaultMinPoW, Archiver: ms, Requests: ms}}, key)
	if err != nil {
		t.Fatal(err)
	}
	msCtx, stopMS := context.WithCancel(context.Background())
	nodeDone, msDone := make(chan error, 1), make(chan error, 1)
	go func() { nodeDone <- nd.Run(ctx) }()
	go func() { msDone <- ms.Run(msCtx) }()
	t.Cleanup(func() { // node first, then the mailserver, as runGateway stops them
		cancel()
		<-nodeDone
		stopMS()
		<-msDone
	})
	select {
	case <-nd.Ready():
	case err := <-nodeDone:
		t.Fatalf("mailserver node: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("mailserver node not listening within 10 s")
	}

	// n messages of #status, created an hour ago with a TTL of 10 s: long expired, so
	// only the mailserver can deliver them.
	symKey, err := chat.PublicChatKey("status")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-time.Hour)
	recs := make([]mailserver.Record, 0, n)
	for i := range n {
		at := created.Add(time.Duration(i) * time.Second)
		payload, err := chat.Encode(&chat.Message{Clock: uint64(at.UnixMilli()) * 100, Timestamp: uint64(at.UnixMilli()),
			Text: fmt.Sprintf("history message %02d", i), ChatID: "status", MessageType: chat.MessageTypePublicGroup,
			ContentType: chat.ContentTextPlain}, chat.FormatTransit, bob)
		if err != nil {
			t.Fatal(err)
		}
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: chat.PublicChatTopic("status"), Payload: payload,
			KeySym: symKey, Src: bob, TTL: 10, Clock: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, mailserver.RecordOf(env))
	}
	if err := st.Archive().Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	return nd
}

func TestChat_mailserverHistory(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 50
	nd := startHistoryMailserver(t, n, node.DiscoveryConfig{})

	// bridge chat, with the node as its only peer and as its mailserver.
	cfg := writeConfig(t, "data_dir: "+t.TempDir()+"\nlog: {level: warn}\n")
	stdinR, stdinW := io.Pipe()
	t.Cleanup(func() { stdinW.Close() })
	stdout, stderr := newLogWatch(fmt.Sprintf("history message %02d", n-1)), newLogWatch("history: done")
	chatCtx, stopChat := context.WithCancel(ctx)
	defer stopChat()
	code := make(chan int, 1)
	go func() {
		code <- runChat(chatCtx, []string{"--peer", nd.Enode(), "--mailserver", nd.Enode(), "--chat", "status",
			"--key", filepath.Join(t.TempDir(), "chatkey"), "-config", cfg}, stdinR, stdout, stderr)
	}()
	select {
	case <-stderr.seen:
	case c := <-code:
		t.Fatalf("bridge chat exited with %d:\n%s", c, stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("history not done within 60 s; stderr:\n%s", stderr)
	}
	// Every message, not only the last: Whisper's workers decrypt in parallel, so the
	// last may be shown while an earlier one is still being opened.
	waitFor(t, 10*time.Second, "every message on stdout", func() bool {
		return strings.Count(stdout.String(), "\n") >= n
	}, stderr, code)
	stopChat()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d after interrupt:\n%s", c, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bridge chat did not exit within 10 s of the interrupt")
	}

	t.Logf("stderr:\n%s", stderr)
	if !strings.Contains(stderr.String(), fmt.Sprintf("bridge chat: history: done (%d messages)", n)) {
		t.Errorf("stderr does not report %d messages done:\n%s", n, stderr)
	}
	if !strings.Contains(stderr.String(), "bridge chat: history: 50 messages, up to ") {
		t.Errorf("no progress line:\n%s", stderr)
	}
	out := stdout.String()
	for i := range n {
		if c := strings.Count(out, fmt.Sprintf("history message %02d", i)); c != 1 {
			t.Errorf("message %02d shown %d times", i, c)
		}
	}
	if lines := strings.Count(out, "\n"); lines != n {
		t.Errorf("%d lines on stdout, want %d:\n%s", lines, n, out)
	}
}
