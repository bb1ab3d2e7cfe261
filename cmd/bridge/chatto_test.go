package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/keyfile"
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
	alias := identity.NewNamer(nil).Name(ref.PublicKey()) // Status's own word lists: no identity.alias_words here
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

// TestChatAuthors_bounded: the address book of bridge chat is bounded (maxChatAuthors)
// with a named policy, newest shown first: a file with more entries loads the newest
// maxChatAuthors, and an author shown afterwards pushes out the oldest.
func TestChatAuthors_bounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), chatAuthorsFile)
	t0 := time.Unix(1575000000, 0)
	list := make([]chatAuthor, maxChatAuthors+10)
	for i := range list { // newest first, as add writes it
		list[i] = chatAuthor{Key: identity.ChatKey(&newKey(t).PublicKey), Alias: fmt.Sprintf("author %d", i), Seen: t0.Add(-time.Duration(i) * time.Second)}
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Create(path, b); err != nil {
		t.Fatal(err)
	}
	book, err := loadChatAuthors(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(book.byKey); n != maxChatAuthors {
		t.Fatalf("loaded %d authors, want %d", n, maxChatAuthors)
	}
	if keys := book.resolve(fmt.Sprintf("author %d", maxChatAuthors)); len(keys) != 0 {
		t.Fatal("an author beyond the bound was loaded")
	}
	newest := newKey(t)
	if err := book.add(&newest.PublicKey, "Newest Shown Author", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	again, err := loadChatAuthors(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.byKey); n != maxChatAuthors {
		t.Fatalf("saved %d authors, want %d", n, maxChatAuthors)
	}
	if keys := again.resolve(fmt.Sprintf("author %d", maxChatAuthors-1)); len(keys) != 0 {
		t.Fatal("the oldest author was kept past the bound")
	}
	if pub, err := resolveTo("newest shown author", again); err != nil || !pub.Equal(&newest.PublicKey) {
		t.Fatalf("newest author: %v %v", pub, err)
	}
}

// lineWatch is an io.Writer that hands every complete line written to it to lines.
type lineWatch struct {
	mu    sync.Mutex
	part  []byte
	all   strings.Builder
	lines chan string
}

func newLineWatch() *lineWatch { return &lineWatch{lines: make(chan string, 1024)} }

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.part[:i]):
		default: // a test reads what it waits for; the rest is in all
		}
		w.part = w.part[i+1:]
	}
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// chatRun is one bridge chat --to session run by a test.
type chatRun struct {
	stdin          *io.PipeWriter
	stdout, stderr *lineWatch
	code           chan int
	cancel         context.CancelFunc
}

func startChat(t *testing.T, args ...string) *chatRun {
	t.Helper()
	stdinR, stdinW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	r := &chatRun{stdin: stdinW, stdout: newLineWatch(), stderr: newLineWatch(), code: make(chan int, 1), cancel: cancel}
	t.Cleanup(func() { cancel(); stdinW.Close() })
	go func() { r.code <- runChat(ctx, args, stdinR, r.stdout, r.stderr) }()
	return r
}

// wait returns the first line of w containing sub, failing if the session exits first
// or 30 s pass.
func (r *chatRun) wait(t *testing.T, w *lineWatch, sub string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-w.lines:
			if strings.Contains(l, sub) {
				return l
			}
		case c := <-r.code:
			t.Fatalf("bridge chat exited with %d before %q:\nstdout:\n%s\nstderr:\n%s", c, sub, r.stdout, r.stderr)
		case <-deadline:
			t.Fatalf("no %q within 30 s:\nstdout:\n%s\nstderr:\n%s", sub, r.stdout, r.stderr)
		}
	}
}

// stop ends the session with Ctrl-C and checks it exits 0.
func (r *chatRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if c := <-r.code; c != exitOK {
		t.Fatalf("exit code %d:\n%s", c, r.stderr)
	}
}

// TestChat_toAliasAndOtherAuthors runs bridge chat --to against two status-go v0.70.1
// users with Status's alias word lists configured. In a session with the first, a
// direct message from the second is printed too, with its author's three-word alias
// and short key (aliases are not unique), the first's with its alias alone. A second
// session then names the second user by the three-word alias it was shown with (in
// another case), and a typed line reaches that user from the key file's identity.
func TestChat_toAliasAndOtherAuthors(t *testing.T) {
	ref1 := statusref.Start(t, statusref.Options{})
	ref2 := statusref.Start(t, statusref.Options{})
	words, dataDir := t.TempDir(), t.TempDir()
	writeWords(t, filepath.Join(words, identity.AdjectivesFile), "Adj", identity.AdjectiveCount)
	writeWords(t, filepath.Join(words, identity.AnimalsFile), "Animal", identity.AnimalCount)
	keyFile := filepath.Join(t.TempDir(), "chatkey")
	me, err := node.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "data_dir: "+dataDir+"\nlog: {level: warn}\nidentity: {alias_words: "+words+"}\n")
	c, err := loadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	namer, err := c.Identity.namer()
	if err != nil {
		t.Fatal(err)
	}
	alias1, alias2 := namer.Name(ref1.PublicKey()), namer.Name(ref2.PublicKey())
	if len(strings.Fields(alias2)) != 3 || alias1 == alias2 {
		t.Fatalf("aliases %q and %q: want two different three-word aliases", alias1, alias2)
	}

	s1 := startChat(t, "--peer", ref1.Enode(), "--peer", ref2.Enode(), "--to", identity.DisplayKey(ref1.PublicKey()),
		"--key", keyFile, "-config", cfg)
	s1.wait(t, s1.stderr, "2 peer(s) connected")
	for _, ref := range []*statusref.Node{ref2, ref1} {
		chatID, err := ref.OpenChat(&me.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ref.Send(chatID, "hello from "+namer.Name(ref.PublicKey()), ""); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]*regexp.Regexp{ // the two messages, in whichever order they arrive
		alias2: regexp.MustCompile(`^\d\d:\d\d:\d\d  ` + regexp.QuoteMeta(alias2+" ["+identity.ShortKey(ref2.PublicKey())+"]") +
			`  hello from ` + regexp.QuoteMeta(alias2) + `$`),
		alias1: regexp.MustCompile(`^\d\d:\d\d:\d\d  ` + regexp.QuoteMeta(alias1) + `  hello from ` + regexp.QuoteMeta(alias1) + `$`),
	}
	for len(want) > 0 {
		l := s1.wait(t, s1.stdout, "hello from ")
		for a, re := range want {
			if strings.HasSuffix(l, "hello from "+a) {
				if !re.MatchString(l) {
					t.Errorf("printed %q, want %s", l, re)
				}
				delete(want, a)
			}
		}
	}
	s1.stop(t)

	s2 := startChat(t, "--peer", ref2.Enode(), "--to", strings.ToLower(alias2), "--key", keyFile, "-config", cfg)
	if l := s2.wait(t, s2.stderr, "1:1 with"); !strings.Contains(l, alias2) || !strings.Contains(l, identity.ChatKey(ref2.PublicKey())) {
		t.Fatalf("session by alias announced as %q, want %q (%s)", l, alias2, identity.ChatKey(ref2.PublicKey()))
	}
	s2.wait(t, s2.stderr, "1 peer(s) connected")
	if _, err := io.WriteString(s2.stdin, "reached by my alias\n"); err != nil {
		t.Fatal(err)
	}
	m := ref2.WaitMessage(t, 30*time.Second)
	for m.Text == "hello from "+alias2 { // status-go's own copy of its message, if it shows one
		m = ref2.WaitMessage(t, 30*time.Second)
	}
	if m.Text != "reached by my alias" || !m.From.Equal(&me.PublicKey) || m.MessageType != "ONE_TO_ONE" {
		t.Fatalf("status-go got %q (%s) from %s", m.Text, m.MessageType, identity.ChatKey(m.From))
	}
	s2.stop(t)
}
