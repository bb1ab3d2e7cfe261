package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusref"
)

// watch is an io.Writer that keeps what is written and closes a channel per pattern the
// first time the text holds it.
type watch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	pats map[string]chan struct{}
}

func newWatch(patterns ...string) *watch {
	w := &watch{pats: map[string]chan struct{}{}}
	for _, p := range patterns {
		w.pats[p] = make(chan struct{})
	}
	return w
}

func (w *watch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for pat, ch := range w.pats {
		select {
		case <-ch:
		default:
			if strings.Contains(w.buf.String(), pat) {
				close(ch)
			}
		}
	}
	return len(p), nil
}

func (w *watch) seen(pat string) <-chan struct{} { return w.pats[pat] }

func (w *watch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// statusGoHistory archives n Status public messages of #chat (Transit, as a 2019 client
// writes them), created an hour ago, in status-go's mailserver.
func statusGoHistory(t *testing.T, ref *statusref.Node, chatName string, n int) {
	t.Helper()
	symKey, err := chat.PublicChatKey(chatName)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := crypto.GenerateKey()
	created := time.Now().Add(-time.Hour)
	raw := make([][]byte, n)
	for i := range raw {
		at := created.Add(time.Duration(i) * time.Second)
		payload, err := chat.Encode(&chat.Message{Clock: uint64(at.UnixMilli()) * 100, Timestamp: uint64(at.UnixMilli()),
			Text: fmt.Sprintf("sg history %04d", i), ChatID: chatName, MessageType: chat.MessageTypePublicGroup,
			ContentType: chat.ContentTextPlain}, chat.FormatTransit, bob)
		if err != nil {
			t.Fatal(err)
		}
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: chat.PublicChatTopic(chatName), Payload: payload,
			KeySym: symKey, Src: bob, TTL: 10, Clock: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		raw[i] = env.Bytes()
	}
	if err := ref.MsArchive(raw); err != nil {
		t.Fatal(err)
	}
}

// TestChat_statusGoMailserverResume (issue 16): bridge chat --mailserver reads 1,000
// messages of #status from status-go v0.70.1's WhisperMailServer, pages of 300 with
// status-go's cursors, in both request forms status-go decodes, each message shown
// once; in the topics run status-go's mailserver is restarted after the first page and
// the fetch resumes from that page's cursor once it is back. That mailserver runs with
// status-go's MailServerRateLimit of 2 s, so the second page is refused ("rate limit
// exceeded") and retried after a back-off, during which the restart lands: the cut is
// deterministic.
// The session redials the restarted mailserver itself (devp2p waits ~35 s to redial a
// dropped peer), as a user's would.
func TestChat_statusGoMailserverResume(t *testing.T) {
	const n = 1000
	limited := statusref.Start(t, statusref.Options{Mailserver: true, MailserverRateLimit: 2})
	statusGoHistory(t, limited, "status", n)
	plain := statusref.Start(t, statusref.Options{Mailserver: true})
	statusGoHistory(t, plain, "status", n)
	for _, tc := range []struct {
		form    string
		restart bool
		ref     *statusref.Node
	}{{"topics", true, limited}, {"struct", false, plain}} {
		t.Run(tc.form, func(t *testing.T) {
			ref := tc.ref
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := writeConfig(t, "data_dir: "+t.TempDir()+"\nlog: {level: warn}\n")
			stdinR, stdinW := io.Pipe()
			t.Cleanup(func() { stdinW.Close() })
			const firstPage, done = "bridge chat: history: 300 messages", "bridge chat: history: done"
			stdout, stderr := newWatch(fmt.Sprintf("sg history %04d", n-1)), newWatch(firstPage, done)
			code := make(chan int, 1)
			go func() {
				code <- runChat(ctx, []string{"--peer", ref.Enode(), "--mailserver", ref.Enode(), "--chat", "status",
					"--mailserver-form", tc.form, "--mailserver-limit", "300",
					"--key", filepath.Join(t.TempDir(), "chatkey"), "-config", cfg}, stdinR, stdout, stderr)
			}()
			if tc.restart {
				select {
				case <-stderr.seen(firstPage):
				case c := <-code:
					t.Fatalf("bridge chat exited with %d:\n%s", c, stderr)
				case <-time.After(60 * time.Second):
					t.Fatalf("no first page within 60 s:\n%s", stderr)
				}
				ref.Restart(t) // same port, node key and LevelDB archive
			}
			select {
			case <-stderr.seen(done):
			case c := <-code:
				t.Fatalf("bridge chat exited with %d:\n%s", c, stderr)
			case <-time.After(120 * time.Second):
				t.Fatalf("history not done within 120 s:\n%s", stderr)
			}
			waitFor(t, 20*time.Second, "the last message on stdout", func() bool {
				return strings.Contains(stdout.String(), fmt.Sprintf("sg history %04d", n-1))
			}, stderr, code)
			cancel()
			select {
			case c := <-code:
				if c != exitOK {
					t.Errorf("exit %d after interrupt:\n%s", c, stderr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("bridge chat did not exit within 10 s of the interrupt")
			}
			t.Logf("stderr:\n%s", stderr)
			out := stdout.String()
			for i := range n {
				if c := strings.Count(out, fmt.Sprintf("sg history %04d", i)); c != 1 {
					t.Errorf("message %04d shown %d times", i, c)
				}
			}
			if !strings.Contains(stderr.String(), fmt.Sprintf("bridge chat: history: done (%d messages)", n)) {
				t.Errorf("stderr does not report %d messages done", n)
			}
			resumed := strings.Contains(stderr.String(), "bridge chat: history: the mailserver disconnected after 300 messages; resuming when it is back") &&
				strings.Contains(stderr.String(), "bridge chat: history: the mailserver is back; resuming")
			if resumed != tc.restart {
				t.Errorf("resumed %v, want %v", resumed, tc.restart)
			}
		})
	}
}
