package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/test/freeport"
	"github.com/statusgate/statusgate/test/interop"
)

// TestChat_againstReference runs bridge chat against a geth v1.9.20 Whisper node and
// checks that messages cross both ways: a Transit message the reference posts is printed
// with its author's short key, and a line typed on stdin reaches the reference in both
// payload formats, signed with the key in the --key file.
func TestChat_againstReference(t *testing.T) {
	ref := interop.StartRefNode(t, interop.RefNodeOptions{})
	symKey, err := chat.PublicChatKey("status")
	if err != nil {
		t.Fatal(err)
	}
	topic := chat.PublicChatTopic("status")
	if _, err := ref.Subscribe(topic, symKey.Bytes(), nil, 0); err != nil {
		t.Fatal(err)
	}

	keyFile := filepath.Join(t.TempDir(), "chatkey")
	cfg := writeConfig(t, "data_dir: "+t.TempDir()+"\nlog: {level: warn}\n")
	stdinR, stdinW := io.Pipe()
	t.Cleanup(func() { stdinW.Close() })
	stdout, stderr := newLogWatch("hello from geth"), newLogWatch("peer(s) connected")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	code := make(chan int, 1)
	go func() {
		code <- runChat(ctx, []string{"--peer", ref.Enode(), "--chat", "status", "--key", keyFile, "-config", cfg},
			stdinR, stdout, stderr)
	}()

	// Connected: the reference lists our node, and we have told the user.
	waitFor(t, 30*time.Second, "the reference to list a peer", func() bool {
		ids, err := ref.Peers()
		return err == nil && len(ids) > 0
	}, stderr, code)
	select {
	case <-stderr.seen:
	case c := <-code:
		t.Fatalf("bridge chat exited with %d:\n%s", c, stderr)
	case <-time.After(startupTimeout): // reported once the chat is joined (its key: PBKDF2)
		t.Fatalf("no peer reported within %v:\n%s", startupTimeout, stderr)
	}
	me, err := node.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v, want mode 0600", st, err)
	}
	if as := identity.NewNamer(nil).Name(&me.PublicKey) + " (" + identity.ChatKey(&me.PublicKey) + ")"; !strings.Contains(stderr.String(), as) {
		t.Errorf("identity not announced as %s:\n%s", as, stderr)
	}

	// (a) geth → terminal.
	bob, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	payload, err := chat.Encode(&chat.Message{Clock: uint64(now.UnixMilli()) * 100, Timestamp: uint64(now.UnixMilli()),
		Text: "hello from geth", ChatID: "status", MessageType: chat.MessageTypePublicGroup,
		ContentType: chat.ContentTextPlain}, chat.FormatTransit, bob)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ref.Post(interop.SealRequest{Payload: payload, Topic: topic, TTL: 15, PoW: 0.002, WorkTime: 5,
		SymKey: symKey.Bytes(), SrcPriv: crypto.FromECDSA(bob)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stdout.seen:
	case c := <-code:
		t.Fatalf("bridge chat exited with %d:\n%s", c, stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("message not shown within 20 s; stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	line := findLine(stdout.String(), "hello from geth")
	want := regexp.MustCompile(`^\d\d:\d\d:\d\d  ` + regexp.QuoteMeta(identity.NewNamer(nil).Name(&bob.PublicKey)) + `  hello from geth$`)
	if !want.MatchString(line) {
		t.Errorf("line %q does not match %s", line, want)
	}

	// (b) terminal → geth: format both sends a Transit and a protobuf payload.
	if _, err := io.WriteString(stdinW, "  hi from the terminal \n\n"); err != nil {
		t.Fatal(err)
	}
	formats := map[chat.Format]bool{}
	deadline := time.After(20 * time.Second)
	for len(formats) < 2 {
		select {
		case m := <-ref.Messages():
			dec, err := chat.Decode(m.Payload)
			if err != nil {
				t.Fatalf("reference received an undecodable payload: %v", err)
			}
			if dec.Message.Text != "hi from the terminal" {
				continue // the reference's own "hello from geth"
			}
			if !bytes.Equal(m.Signer, crypto.FromECDSAPub(&me.PublicKey)) {
				t.Errorf("%v payload signed by %x, want the key file's %x", dec.Message.Format, m.Signer, crypto.FromECDSAPub(&me.PublicKey))
			}
			if dec.Author != nil && !dec.Author.Equal(&me.PublicKey) {
				t.Errorf("%v payload authored by %s", dec.Message.Format, identity.ChatKey(dec.Author))
			}
			if m.PoW < 0.002 || m.TTL != 15 {
				t.Errorf("envelope PoW %v TTL %d, want ≥ 0.002 and 15", m.PoW, m.TTL)
			}
			formats[dec.Message.Format] = true
		case c := <-code:
			t.Fatalf("bridge chat exited with %d:\n%s", c, stderr)
		case <-deadline:
			t.Fatalf("reference received %v of the two formats within 20 s; stderr:\n%s", formats, stderr)
		}
	}
	if !formats[chat.FormatTransit] || !formats[chat.FormatProtobuf] {
		t.Errorf("formats received: %v, want transit and protobuf", formats)
	}

	// End of input: bridge chat lingers for the peer, then exits 0.
	stdinW.Close()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d after end of input:\n%s", c, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("bridge chat did not exit within 20 s of the end of input:\n%s", stderr)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	if n := strings.Count(stdout.String(), "hi from the terminal"); n > 1 {
		t.Errorf("own message shown %d times (the two formats are one message):\n%s", n, stdout)
	}
}

// TestChat_interruptExitsZero checks that Ctrl-C (ctx ending) ends a session that has no
// peer yet, with exit code 0 and no listening socket by default.
func TestChat_interruptExitsZero(t *testing.T) {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// A peer that never answers: a loopback port reserved for this test process and
	// never bound (a port closed after a :0 bind could be taken by anyone meanwhile).
	peer := enode.NewV4(&k.PublicKey, net.IPv4(127, 0, 0, 1), freeport.Port(t), 0).URLv4()
	dataDir := t.TempDir()
	cfg := writeConfig(t, "data_dir: "+dataDir+"\nlog: {level: warn}\n")
	stdinR, stdinW := io.Pipe()
	t.Cleanup(func() { stdinW.Close() })
	stderr := newLogWatch("Ctrl-D or Ctrl-C quits")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- runChat(ctx, []string{"--peer", peer, "--chat", "status", "-config", cfg}, stdinR, io.Discard, stderr)
	}()
	select {
	case <-stderr.seen:
	case c := <-code:
		t.Fatalf("exited with %d:\n%s", c, stderr)
	case <-time.After(startupTimeout): // the node, then the chat joined (its key: PBKDF2)
		t.Fatalf("session not started within %v:\n%s", startupTimeout, stderr)
	}
	// The default identity key lives in the data dir.
	if st, err := os.Stat(filepath.Join(dataDir, "chatkey")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("default key file: %v %v", st, err)
	}
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d after interrupt:\n%s", c, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10 s of the interrupt")
	}
}

func TestChat_usageErrors(t *testing.T) {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	peer := enode.NewV4(&k.PublicKey, net.IPv4(127, 0, 0, 1), 30303, 0).URLv4()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "--peer: at least one"},
		{"no chat", []string{"--peer", peer}, "--chat: a public chat name is required"},
		{"bad enode", []string{"--peer", "enode://nope@1.2.3.4:5", "--chat", "status"}, "not an enode URL"},
		{"not an enode", []string{"--peer", "http://x", "--chat", "status"}, "not an enode URL"},
		{"hash in chat", []string{"--peer", peer, "--chat", "#status"}, "drop the leading '#'"},
		{"upper case chat", []string{"--peer", peer, "--chat", "Status"}, "want [a-z0-9-]"},
		{"bad format", []string{"--peer", peer, "--chat", "status", "--format", "json"}, "--format"},
		{"bad listen", []string{"--peer", peer, "--chat", "status", "--listen", "localhost"}, "--listen"},
		{"unknown flag", []string{"--peer", peer, "--chat", "status", "--nick", "x"}, "flag provided but not defined"},
		{"extra argument", []string{"--peer", peer, "--chat", "status", "hello"}, `unexpected argument "hello"`},
		{"chat and to", []string{"--peer", peer, "--chat", "status", "--to", "zQ3x"}, "--chat and --to: give one"},
		{"to with mailserver", []string{"--peer", peer, "--to", "zQ3x", "--mailserver", peer}, "history is for public chats"},
		{"to nobody", []string{"--peer", peer, "--to", "Nobody We Know", "-config", writeConfig(t, "data_dir: "+t.TempDir()+"\n")},
			`"Nobody We Know" is neither a chat key`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"chat"}, tc.args...), strings.NewReader(""), &out, &errb)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, errb.String())
			}
			if out.Len() != 0 {
				t.Errorf("stdout: %q", out.String())
			}
		})
	}
}

func TestChat_help(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"chat", "-h"}, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Errorf("chat -h: exit %d, want %d", code, exitOK)
	}
	for _, want := range []string{"usage: bridge chat --peer ENODE", "-alias-words DIR", "-listen ADDR", "-format FORMAT"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("chat -h does not show %q:\n%s", want, errb.String())
		}
	}
	out.Reset()
	run(context.Background(), []string{"help"}, nil, &out, &errb)
	if !strings.Contains(out.String(), "bridge chat --peer ENODE") {
		t.Errorf("bridge help does not list chat:\n%s", out.String())
	}
}

// TestChat_aliasWords checks the alias-word directory from the flag and from the config:
// a missing directory is a configuration error naming where it came from, and a valid
// one names the identity by its three-word alias.
func TestChat_aliasWords(t *testing.T) {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	peer := enode.NewV4(&k.PublicKey, net.IPv4(127, 0, 0, 1), 30303, 0).URLv4()
	missing := filepath.Join(t.TempDir(), "nowords")
	for _, tc := range []struct {
		name, cfg string
		flags     []string
		want      string
	}{
		{"flag", "", []string{"--alias-words", missing}, "--alias-words: load alias words"},
		{"config", "identity: {alias_words: " + missing + "}\n", nil, "identity.alias_words: load alias words"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--peer", peer, "--chat", "status", "--key", filepath.Join(t.TempDir(), "k"),
				"-config", writeConfig(t, "data_dir: "+t.TempDir()+"\n"+tc.cfg)}, tc.flags...)
			var errb bytes.Buffer
			if code := runChat(context.Background(), args, strings.NewReader(""), io.Discard, &errb); code != exitConfig {
				t.Errorf("exit %d, want %d", code, exitConfig)
			}
			if !strings.Contains(errb.String(), tc.want) || !strings.Contains(errb.String(), "status-go") {
				t.Errorf("stderr does not say %q and where to get the lists:\n%s", tc.want, errb.String())
			}
		})
	}

	dir := t.TempDir()
	writeWords(t, filepath.Join(dir, identity.AdjectivesFile), "Adj", identity.AdjectiveCount)
	writeWords(t, filepath.Join(dir, identity.AnimalsFile), "Animal", identity.AnimalCount)
	c, err := loadConfig(writeConfig(t, "identity:\n  alias_words: "+dir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Identity.namer()
	if err != nil {
		t.Fatal(err)
	}
	if name := n.Name(&k.PublicKey); !n.Overridden() || !regexp.MustCompile(`^Adj\d+ Adj\d+ Animal\d+$`).MatchString(name) {
		t.Errorf("name %q, want a three-word alias", name)
	}
	if c, err := loadConfig(""); err != nil || c.Identity.AliasWords != "" {
		t.Errorf("embedded example: alias_words %q, %v; want empty", c.Identity.AliasWords, err)
	}
	var errb bytes.Buffer
	p := writeConfig(t, "data_dir: "+t.TempDir()+"\nnode: {listen_addr: '127.0.0.1:0'}\nidentity: {alias_words: "+missing+"}\n")
	if code := run(context.Background(), []string{"run", "-config", p}, nil, io.Discard, &errb); code != exitFail ||
		!strings.Contains(errb.String(), "identity.alias_words") {
		t.Errorf("bridge run with missing alias words: exit %d, %s", code, errb.String())
	}
	if _, err := loadConfig(writeConfig(t, "identity: {alias_words: '  '}\n")); err == nil || !strings.Contains(err.Error(), "identity.alias_words") {
		t.Errorf("blank alias_words: %v", err)
	}
}

func writeWords(t *testing.T, path, prefix string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s%d\n", prefix, i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSanitizeTerminal_escapes(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "hello, world 👋", "hello, world 👋"},
		{"sgr colour", "\x1b[31mred\x1b[0m text", "red text"},
		{"cursor and erase", "a\x1b[2J\x1b[1;1Hb\x1b[K", "ab"},
		{"private csi", "\x1b[?1049hx", "x"},
		{"osc title bel", "\x1b]0;pwned\x07ok", "ok"},
		{"osc hyperlink st", "\x1b]8;;https://evil\x1b\\click\x1b]8;;\x1b\\", "click"},
		{"dcs", "\x1bPq#0;2;0;0;0\x1b\\after", "after"},
		{"two-byte escape", "\x1bcreset\x1b(Bx", "resetx"},
		{"unterminated osc", "x\x1b]0;title", "x"},
		{"lone esc at end", "x\x1b", "x"},
		{"c1 csi", "a\u009b31mb", "a31mb"},
		{"bell backspace del nul", "a\x07\b\x7f\x00b", "ab"},
		{"newlines", "one\ntwo\r\nthree\rfour", "one ⏎ two ⏎ three ⏎ four"},
		{"unicode line separators", "a\u2028b\u2029c", "a ⏎ b ⏎ c"},
		{"tab", "a\tb", "a b"},
		{"bidi override", "abc\u202Egnp.exe\u202C \u2066x\u2069", "abcgnp.exe x"},
		{"invalid utf-8", "a\xffb", "a\uFFFDb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitizeTerminal(tc.in); got != tc.want {
				t.Errorf("sanitizeTerminal(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzSanitizeTerminal checks that no input yields a control character, a bidi control
// or invalid UTF-8.
func FuzzSanitizeTerminal(f *testing.F) {
	for _, s := range []string{"\x1b[31mx", "\x1b]0;t\x07", "a\r\nb", "\u009b1m", "\xff\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := sanitizeTerminal(s)
		if !utf8ValidNoControls(out) {
			t.Errorf("sanitizeTerminal(%q) = %q", s, out)
		}
	})
}

func utf8ValidNoControls(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds, failing t after timeout or if bridge chat exits.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, logs fmt.Stringer, code <-chan int) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s:\n%s", timeout, what, logs)
		case c := <-code:
			t.Fatalf("bridge chat exited with %d while waiting for %s:\n%s", c, what, logs)
		case <-tick.C:
		}
	}
}

// findLine returns the first line of s containing sub.
func findLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
