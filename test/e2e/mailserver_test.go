package e2e

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusref"
)

// TestE2E_catchUpFromStatusGo (issue 16): the bridge binary catches #status up from a
// status-go v0.70.1 WhisperMailServer (its trusted peer) and relays each of 2,500
// archived messages to the api stream exactly once, paging (1,000 a page) with
// status-go's cursors; status-go's mailserver restarts after the first page, and the
// catch-up resumes from that page's cursor once the gateway has redialled it. The
// mailserver runs with status-go's MailServerRateLimit of 2 s, so the second page is
// refused and retried after a back-off, in which the restart lands: the cut is
// deterministic. (The gateway redials a dropped peer after devp2p's ~35 s.)
func TestE2E_catchUpFromStatusGo(t *testing.T) {
	t.Parallel()
	const n = 2500
	ref := statusref.Start(t, statusref.Options{Mailserver: true, MailserverRateLimit: 2})
	// Five authors, each message 5 s after that author's previous one: within the
	// gateway's per-sender flood control, which counts by the messages' own time.
	authors := make([]*ecdsa.PrivateKey, 5)
	for i := range authors {
		authors[i], _ = crypto.GenerateKey()
	}
	symKey, err := chat.PublicChatKey(chatName)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	raw := make([][]byte, n)
	for i := range raw {
		at := base.Add(time.Duration(i) * time.Second)
		author := authors[i%len(authors)]
		payload, err := chat.Encode(&chat.Message{Clock: uint64(at.UnixMilli()), Timestamp: uint64(at.UnixMilli()),
			Text: fmt.Sprintf("archived %04d", i), ChatID: chatName, MessageType: chat.MessageTypePublicGroup,
			ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, author)
		if err != nil {
			t.Fatal(err)
		}
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: chat.PublicChatTopic(chatName), Payload: payload,
			KeySym: symKey, Src: author, TTL: 10, Clock: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		raw[i] = env.Bytes()
	}
	if err := ref.MsArchive(raw); err != nil {
		t.Fatal(err)
	}

	g := newGateway(t, gatewayOptions{trustedPeers: []string{ref.Enode()}})
	g.start(t)
	g.waitReady(t)
	events := g.subscribe(t, "status")
	logHas := func(s string) bool {
		b, _ := os.ReadFile(g.logPath)
		return strings.Contains(string(b), s)
	}
	if !g.poll(t, 2*time.Minute, func() bool { return logHas("envelopes=1000") }) {
		t.Fatal("no first page of the catch-up within 2 minutes")
	}
	ref.Restart(t) // same port, node key and LevelDB archive

	seen := map[string]bool{}
	deadline := time.NewTimer(3 * time.Minute)
	defer deadline.Stop()
	for len(seen) < n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("SSE stream ended after %d of %d", len(seen), n)
			}
			if !strings.HasPrefix(ev.Text, "archived ") {
				continue
			}
			if seen[ev.Text] {
				t.Fatalf("%q relayed twice", ev.Text)
			}
			seen[ev.Text] = true
		case <-deadline.C:
			t.Fatalf("%d of %d archived messages relayed within 3 minutes", len(seen), n)
		}
	}
	if !logHas("history catch-up cut: the mailserver disconnected; resuming when it is back") {
		t.Error("the catch-up was not cut by the restart (no resume in the log)")
	}
	// Nothing relayed twice afterwards: the catch-up's last page and its end.
	settle := time.NewTimer(5 * time.Second)
	defer settle.Stop()
	for {
		select {
		case ev := <-events:
			if strings.HasPrefix(ev.Text, "archived ") {
				t.Fatalf("%q relayed again", ev.Text)
			}
		case <-settle.C:
			return
		}
	}
}
