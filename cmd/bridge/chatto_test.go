package main

import (
	"context"
	"crypto/ecdsa"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/test/statusref"
)

// TestChat_toStatusGo runs bridge chat --to against a status-go v0.70.1 Messenger: the
// peer named by its zQ3… display key, a line typed on stdin reaches status-go as a 1:1
// message from the key file's identity, status-go's answer is printed with its author,
// and the author is remembered, so --to then takes the alias it was shown with.
func TestChat_toStatusGo(t *testing.T) {
	ref := statusref.Start(t, statusref.Options{})
	dataDir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "chatkey")
	me, err := node.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "data_dir: "+dataDir+"\nlog: {level: warn}\n")
	stdinR, stdinW := io.Pipe()
	t.Cleanup(func() { stdinW.Close() })
	stdout, stderr := newLogWatch("hello from status-go"), newLogWatch("peer(s) connected")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	code := make(chan int, 1)
	to := identity.DisplayKey(ref.PublicKey())
	go func() {
		code <- runChat(ctx, []string{"--peer", ref.Enode(), "--to", to, "--key", keyFile, "-config", cfg}, stdinR, stdout, stderr)
	}()
	select {
	case <-stderr.seen:
	case c := <-code:
		t.Fatalf("bridge chat exited with %d:\n%s", c, stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("no peer within 30 s:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), "1:1 with") || !strings.Contains(stderr.String(), identity.ChatKey(ref.PublicKey())) {
		t.Errorf("session not announced as a 1:1 with %s:\n%s", identity.ChatKey(ref.PublicKey()), stderr)
	}

	// terminal → status-go.
	if _, err := io.WriteString(stdinW, "hi status-go, from the terminal\n"); err != nil {
		t.Fatal(err)
	}
	m := ref.WaitMessage(t, 30*time.Second)
	if m.Text != "hi status-go, from the terminal" || !m.From.Equal(&me.PublicKey) || m.MessageType != "ONE_TO_ONE" {
		t.Fatalf("status-go got %q (%s) from %x", m.Text, m.MessageType, identity.ChatKey(m.From))
	}

	// status-go → terminal.
	chatID, err := ref.OpenChat(&me.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Send(chatID, "hello from status-go", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stdout.seen:
	case c := <-code:
		t.Fatalf("bridge chat exited with %d:\n%s", c, stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("answer not shown within 30 s; stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	alias := identity.ShortKey(ref.PublicKey()) // no alias word lists in this configuration
	want := regexp.MustCompile(`^\d\d:\d\d:\d\d  ` + regexp.QuoteMeta(alias) + `  hello from status-go$`)
	if line := findLine(stdout.String(), "hello from status-go"); !want.MatchString(line) {
		t.Errorf("line %q does not match %s", line, want)
	}
	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("exit code %d:\n%s", c, stderr)
	}

	// The author is in the address book under the name shown.
	book, err := loadChatAuthors(filepath.Join(dataDir, chatAuthorsFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := resolveTo(strings.ToUpper(alias), book)
	if err != nil || !pub.Equal(ref.PublicKey()) {
		t.Fatalf("resolve %q: %v, %v", alias, pub, err)
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestResolveTo: chat keys in every form, aliases from the address book (case and
// spacing ignored), an ambiguous alias and an unknown one.
func TestResolveTo(t *testing.T) {
	book, err := loadChatAuthors(filepath.Join(t.TempDir(), chatAuthorsFile))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := newKey(t), newKey(t), newKey(t)
	now := time.Unix(1575000000, 0)
	for _, e := range []struct {
		k     string
		alias string
	}{{identity.ChatKey(&a.PublicKey), "Experienced Splendid Gibbon"}, {identity.ChatKey(&b.PublicKey), "Hard Tame Brownbutterfly"}, {identity.ChatKey(&c.PublicKey), "Hard Tame Brownbutterfly"}} {
		pub, _ := identity.ParseChatKey(e.k)
		if err := book.add(pub, e.alias, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range []string{identity.ChatKey(&a.PublicKey), identity.DisplayKey(&a.PublicKey), identity.CompressedHex(&a.PublicKey), "  experienced   SPLENDID gibbon "} {
		if pub, err := resolveTo(in, book); err != nil || !pub.Equal(&a.PublicKey) {
			t.Errorf("resolveTo(%q) = %v, %v", in, pub, err)
		}
	}
	if _, err := resolveTo("Hard Tame Brownbutterfly", book); err == nil || !strings.Contains(err.Error(), "2 authors") {
		t.Errorf("ambiguous alias: %v", err)
	}
	if _, err := resolveTo("Nobody We Know", book); err == nil {
		t.Error("unknown alias resolved")
	}
	// Reloaded from the file.
	again, err := loadChatAuthors(book.path)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := resolveTo("Experienced Splendid Gibbon", again); err != nil || !pub.Equal(&a.PublicKey) {
		t.Errorf("after reload: %v, %v", pub, err)
	}
}
