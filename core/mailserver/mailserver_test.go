package mailserver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// memArchive is an in-memory Archive for the protocol tests of this package; the store
// package runs the archive semantics against SQLite and PostgreSQL.
type memArchive struct {
	mu      sync.Mutex
	recs    map[[32]byte]mailserver.Record
	changed chan struct{} // closed and replaced by every Put
}

func newMemArchive() *memArchive {
	return &memArchive{recs: map[[32]byte]mailserver.Record{}, changed: make(chan struct{})}
}

func (a *memArchive) Put(_ context.Context, recs []mailserver.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range recs {
		if _, ok := a.recs[r.Hash]; !ok {
			a.recs[r.Hash] = r
		}
	}
	close(a.changed)
	a.changed = make(chan struct{})
	return nil
}

// waitLen waits until the archive holds at least n envelopes.
func (a *memArchive) waitLen(n int, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		a.mu.Lock()
		have, changed := len(a.recs), a.changed
		a.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-deadline:
			return fmt.Errorf("archived %d of %d within %v", have, n, timeout)
		}
	}
}

func (a *memArchive) Query(_ context.Context, q mailserver.Query) ([][]byte, []byte, error) {
	if len(q.Cursor) != 0 && len(q.Cursor) != mailserver.CursorLength {
		return nil, nil, mailserver.ErrCursor
	}
	a.mu.Lock()
	var all []mailserver.Record
	for _, r := range a.recs {
		all = append(all, r)
	}
	a.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		return bytes.Compare(mailserver.CursorOf(all[i].Created, all[i].Hash), mailserver.CursorOf(all[j].Created, all[j].Hash)) < 0
	})
	var out [][]byte
	var last mailserver.Record
	size := 0
	for _, r := range all {
		if r.Created < q.Lower || r.Created > q.Upper {
			continue
		}
		if len(q.Cursor) > 0 && bytes.Compare(mailserver.CursorOf(r.Created, r.Hash), q.Cursor) <= 0 {
			continue
		}
		if len(q.Topics) > 0 {
			if !slices.Contains(q.Topics, r.Topic) {
				continue
			}
		} else if b := whisper.TopicToBloom(r.Topic); !q.Bloom.Matches(&b) {
			continue
		}
		if len(out) == q.Limit || q.MaxBytes > 0 && len(out) > 0 && size+len(r.Envelope) > q.MaxBytes {
			return out, mailserver.CursorOf(last.Created, last.Hash), nil
		}
		out, last, size = append(out, r.Envelope), r, size+len(r.Envelope)
	}
	return out, nil, nil
}

func (a *memArchive) PruneBytes(_ context.Context, maxBytes int64) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var all []mailserver.Record
	var total int64
	for _, r := range a.recs {
		all = append(all, r)
		total += int64(len(r.Envelope))
	}
	sort.Slice(all, func(i, j int) bool {
		return bytes.Compare(mailserver.CursorOf(all[i].Created, all[i].Hash), mailserver.CursorOf(all[j].Created, all[j].Hash)) < 0
	})
	var n int64
	for _, r := range all {
		if total <= maxBytes {
			break
		}
		delete(a.recs, r.Hash)
		total -= int64(len(r.Envelope))
		n++
	}
	close(a.changed)
	a.changed = make(chan struct{})
	return n, nil
}

// bytes returns the envelope bytes held.
func (a *memArchive) bytes() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, r := range a.recs {
		n += int64(len(r.Envelope))
	}
	return n
}

func (a *memArchive) Newest(context.Context) (uint32, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var newest uint32
	for _, r := range a.recs {
		newest = max(newest, r.Created)
	}
	return newest, len(a.recs) > 0, nil
}

func (a *memArchive) Prune(_ context.Context, before time.Time) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for h, r := range a.recs {
		if int64(r.Created) < before.Unix() {
			delete(a.recs, h)
			n++
		}
	}
	return n, nil
}

func (a *memArchive) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.recs)
}

// completions records what a client node's mailservers answer, and hands each
// completion to every client (a client ignores the IDs it did not ask with).
type completions struct {
	clients []*mailserver.Client
	raw     chan []byte
}

func (c *completions) HandleRequestComplete(p *whisper.Peer, payload []byte) {
	select {
	case c.raw <- payload:
	default:
	}
	for _, cl := range c.clients {
		cl.HandleRequestComplete(p, payload)
	}
}

type fixture struct {
	archive    *memArchive
	server     *mailserver.Server
	serverNode *node.Node
	clientNode *node.Node
	client     *mailserver.Client                            // FormTopics, the default
	forms      map[mailserver.RequestForm]*mailserver.Client // a client per request form
	comps      *completions
	peer       *whisper.Peer // the server, as the client node sees it
	topic      whisper.Topic
	sym        *whisper.SymKey
}

func newFixture(t *testing.T, scfg mailserver.ServerConfig) *fixture {
	t.Helper()
	f := &fixture{archive: newMemArchive(), topic: whisper.TopicFromName("inbox")}
	var err error
	if f.sym, err = whisper.SymKeyFromPassword("inbox"); err != nil {
		t.Fatal(err)
	}
	if f.server, err = mailserver.NewServer(f.archive, scfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.server.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	f.serverNode = statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Archiver: f.server, Requests: f.server, Syncs: f.server}})
	f.connectClient(t)
	return f
}

// connectClient starts the client node, with a client per request form, and connects it
// to the server node as to a trusted mailserver.
func (f *fixture) connectClient(t *testing.T) {
	t.Helper()
	clientKey, _ := crypto.GenerateKey()
	f.forms = map[mailserver.RequestForm]*mailserver.Client{}
	f.comps = &completions{raw: make(chan []byte, 64)}
	for _, form := range []mailserver.RequestForm{mailserver.FormTopics, mailserver.FormPayload, mailserver.FormStruct} {
		c, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: clientKey, Form: form, Limit: 300, Backoff: 50 * time.Millisecond, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		f.forms[form] = c
		f.comps.clients = append(f.comps.clients, c)
	}
	f.client = f.forms[mailserver.FormTopics]
	f.clientNode = statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Completions: f.comps}})
	if err := f.clientNode.AddPeer(f.serverNode.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, f.clientNode, f.serverNode.ID())
	f.peer = f.clientNode.Whisper().Peer(f.serverNode.ID())
}

// archiveExpired puts n envelopes created an hour ago (long expired, so only the
// mailserver can deliver them) into the server's archive through its Archiver hook.
func (f *fixture) archiveExpired(t *testing.T, n int) {
	t.Helper()
	base := time.Now().Add(-time.Hour)
	alice, _ := crypto.GenerateKey()
	for i := range n {
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: f.topic, KeySym: f.sym, Src: alice,
			Payload: []byte(fmt.Sprintf("message %04d", i)), TTL: 10,
			Clock: func() time.Time { return base.Add(time.Duration(i) * time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
		f.server.Archive(env)
	}
	if err := f.archive.waitLen(n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) subscribe(t *testing.T) *whisper.Subscription {
	t.Helper()
	sub, err := f.clientNode.Subscribe(whisper.Filter{Topics: []whisper.Topic{f.topic}, SymKey: f.sym, AllowP2P: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Unsubscribe)
	return sub
}

// collectN reads n distinct messages, then checks that nothing more comes.
func collectN(t *testing.T, sub *whisper.Subscription, n int) {
	t.Helper()
	seen := map[string]bool{}
	collect(t, sub, seen, n)
	select {
	case m := <-sub.C():
		t.Fatalf("extra message %q", m.Payload)
	default:
	}
}

// collect reads messages until n distinct ones arrived; a duplicate fails the test.
func collect(t *testing.T, sub *whisper.Subscription, seen map[string]bool, n int) {
	t.Helper()
	for len(seen) < n {
		select {
		case m := <-sub.C():
			if seen[string(m.Payload)] {
				t.Fatalf("duplicate %q", m.Payload)
			}
			seen[string(m.Payload)] = true
		case <-time.After(15 * time.Second):
			t.Fatalf("got %d of %d messages", len(seen), n)
		}
	}
}

// TestMailserver_offlineSubscriberGetsEveryMessage: a node that was offline while 1,000
// messages were sent gets every one of them back from the mailserver, across several
// cursor pages, exactly once.
func TestMailserver_offlineSubscriberGetsEveryMessage(t *testing.T) {
	f := newFixture(t, mailserver.ServerConfig{})
	f.archiveExpired(t, 1000)
	sub := f.subscribe(t)
	var pages []mailserver.Progress
	pr, err := f.client.Request(context.Background(), f.peer, mailserver.History{Topics: []whisper.Topic{f.topic},
		From: time.Now().Add(-2 * time.Hour), To: time.Now()}, func(p mailserver.Progress) { pages = append(pages, p) })
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	collect(t, sub, seen, 1000)
	if pr.Envelopes != 1000 || pr.Pages != 4 || !pr.Done {
		t.Fatalf("progress %+v, want 1000 envelopes in 4 pages of 300", pr)
	}
	select {
	case m := <-sub.C():
		t.Fatalf("extra message %q", m.Payload)
	default:
	}
	if st := f.server.Stats(); st.Served != 1000 || st.Failed != 0 {
		t.Fatalf("server stats %+v", st)
	}
}

// TestMailserver_resumesFromCursor: a request interrupted after its first page resumes
// from the cursor it reported, and the two runs together deliver everything once.
func TestMailserver_resumesFromCursor(t *testing.T) {
	f := newFixture(t, mailserver.ServerConfig{})
	f.archiveExpired(t, 700)
	sub := f.subscribe(t)
	h := mailserver.History{Topics: []whisper.Topic{f.topic}, From: time.Now().Add(-2 * time.Hour), To: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	pr, err := f.client.Request(ctx, f.peer, h, func(mailserver.Progress) { cancel() })
	if err == nil || len(pr.Cursor) != mailserver.CursorLength {
		t.Fatalf("interrupted request: err %v, cursor %x", err, pr.Cursor)
	}
	seen := map[string]bool{}
	collect(t, sub, seen, 300)
	h.Cursor = pr.Cursor
	if _, err := f.client.Request(context.Background(), f.peer, h, nil); err != nil {
		t.Fatal(err)
	}
	collect(t, sub, seen, 700)
}

// TestMailserver_badRequests: each bad request gets an ERROR= completion (or nothing, when
// it has no ID), the peer stays connected, and a good request still works afterwards.
func TestMailserver_badRequests(t *testing.T) {
	// At the app's 0.001, so that a request can fall short of it.
	f := newFixture(t, mailserver.ServerConfig{RequestBurst: 100, RequestsPerSecond: 100, MinPoW: 0.001})
	f.archiveExpired(t, 3)
	nodeKey, _ := crypto.GenerateKey()
	mailKey, _ := whisper.SymKeyFromPassword(mailserver.DefaultPassword)
	otherKey, _ := whisper.SymKeyFromPassword("not the mailserver password")
	now := uint32(time.Now().Unix())
	good, _ := mailserver.EncodePayload(now-7200, now, whisper.BloomOf(f.topic), 100, nil, true)
	envelope := func(key *whisper.SymKey, src bool, payload []byte, pow float64) []byte {
		p := &whisper.MessageParams{KeySym: key, Payload: payload, TTL: 50, PoW: pow, WorkTime: 5 * time.Second}
		if src {
			p.Src = nodeKey
		}
		env, err := whisper.Wrap(p)
		if err != nil {
			t.Fatal(err)
		}
		if pow == 0 { // make sure it is below the server's 0.001
			for n := uint64(0); env.PoW() >= 0.001; n++ {
				env, _ = whisper.NewEnvelope(env.Expiry(), env.TTL(), env.Topic(), env.Data(), n)
			}
		}
		return env.Bytes()
	}
	swapped, _ := mailserver.EncodePayload(now, now-7200, whisper.BloomOf(f.topic), 100, nil, true)
	badCursor, _ := mailserver.EncodePayload(now-7200, now, whisper.BloomOf(f.topic), 100, []byte{1, 2, 3, 4, 5}, true)
	cases := []struct {
		name, body string
		raw        []byte
		want       string // substring of the ERROR= text
	}{
		{"undecryptable", "", envelope(otherKey, true, good, 0.002), "not decryptable"},
		{"unsigned", "", envelope(mailKey, false, good, 0.002), "unsigned"},
		{"PoW too low", "", envelope(mailKey, true, good, 0), "PoW"},
		{"lower above upper", "", envelope(mailKey, true, swapped, 0.002), "lower"},
		{"malformed cursor", "", envelope(mailKey, true, badCursor, 0.002), "cursor"},
		{"garbage payload", "", envelope(mailKey, true, []byte("garbage"), 0.002), "neither an RLP MessagesRequestPayload nor the binary form"},
	}
	for _, tc := range cases {
		if err := f.peer.SendRequest(tc.raw); err != nil {
			t.Fatal(err)
		}
		select {
		case raw := <-f.comps.raw:
			c, err := mailserver.DecodeCompletion(raw)
			if err != nil || c.Error == "" || !bytes.Contains([]byte(c.Error), []byte(tc.want)) {
				t.Errorf("%s: completion %+v, %v; want an error mentioning %q", tc.name, c, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no completion", tc.name)
		}
	}
	// A huge limit is clamped to MaxLimit, not refused: all three come back, completed.
	// Direct (127) envelopes reach subscribers even when already known, as in geth, so
	// the subscription starts here and drains this answer before the next request.
	sub := f.subscribe(t)
	huge, _ := mailserver.EncodePayload(now-7200, now, whisper.BloomOf(f.topic), 1<<31, nil, true)
	if err := f.peer.SendRequest(envelope(mailKey, true, huge, 0.002)); err != nil {
		t.Fatal(err)
	}
	select {
	case raw := <-f.comps.raw:
		if c, err := mailserver.DecodeCompletion(raw); err != nil || c.Error != "" || len(c.Cursor) != 0 {
			t.Errorf("huge limit: completion %+v, %v", c, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("huge limit: no completion")
	}
	collect(t, sub, map[string]bool{}, 3)
	// Garbage that is no envelope and no struct is answered under its Keccak-256 (what
	// its hash would be, were it an envelope).
	for len(f.comps.raw) > 0 {
		<-f.comps.raw
	}
	if err := f.peer.SendRequest([]byte{0xc2, 0x01, 0x02}); err != nil {
		t.Fatal(err)
	}
	select {
	case raw := <-f.comps.raw:
		c, err := mailserver.DecodeCompletion(raw)
		if err != nil || c.RequestID != crypto.Keccak256Hash([]byte{0xc2, 0x01, 0x02}) || !strings.Contains(c.Error, "neither an envelope") {
			t.Errorf("garbage body: completion %+v, %v", c, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("garbage body: no completion")
	}
	// Still served afterwards.
	if _, err := f.client.Request(context.Background(), f.peer, mailserver.History{Topics: []whisper.Topic{f.topic},
		From: time.Now().Add(-2 * time.Hour), To: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	collect(t, sub, map[string]bool{}, 3)
	if len(f.clientNode.Peers()) != 1 {
		t.Fatal("the client lost its mailserver")
	}
}

// TestMailserver_rateLimit: a flood of requests from one peer gets ERROR= completions
// beyond the burst, and the server keeps serving others.
func TestMailserver_rateLimit(t *testing.T) {
	f := newFixture(t, mailserver.ServerConfig{RequestBurst: 2, RequestsPerSecond: 0.001})
	nodeKey, _ := crypto.GenerateKey()
	mailKey, _ := whisper.SymKeyFromPassword(mailserver.DefaultPassword)
	now := uint32(time.Now().Unix())
	var limited int
	for range 5 {
		payload, _ := mailserver.EncodePayload(now-60, now, whisper.BloomOf(f.topic), 10, nil, true)
		env, err := whisper.Wrap(&whisper.MessageParams{KeySym: mailKey, Src: nodeKey, Payload: payload, TTL: 50, PoW: 0.002, WorkTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.peer.SendRequest(env.Bytes()); err != nil {
			t.Fatal(err)
		}
		raw := <-f.comps.raw
		c, err := mailserver.DecodeCompletion(raw)
		if err != nil {
			t.Fatal(err)
		}
		if c.Error != "" {
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("%d of 5 requests limited, want 3 (burst 2)", limited)
	}
}

// TestCompletion_roundTrip checks the §4.4 wire forms.
func TestCompletion_roundTrip(t *testing.T) {
	var id, last [32]byte
	id[0], last[0] = 1, 2
	cursor := mailserver.CursorOf(1575000000, last)
	for _, c := range []mailserver.Completion{{RequestID: id}, {RequestID: id, LastEnvelope: last}, {RequestID: id, LastEnvelope: last, Cursor: cursor}, {RequestID: id, Error: "boom"}} {
		got, err := mailserver.DecodeCompletion(c.Encode())
		if err != nil || got.RequestID != c.RequestID || got.Error != c.Error || !bytes.Equal(got.Cursor, c.Cursor) {
			t.Errorf("%+v → %+v, %v", c, got, err)
		}
	}
	if binary.BigEndian.Uint32(cursor) != 1575000000 {
		t.Fatal("cursor does not start with the created time")
	}
}

// flakyArchive fails its first Put calls, like a database that briefly went away.
type flakyArchive struct {
	*memArchive
	mu    sync.Mutex
	fails int
}

func (a *flakyArchive) Put(ctx context.Context, recs []mailserver.Record) error {
	a.mu.Lock()
	fail := a.fails > 0
	a.fails--
	a.mu.Unlock()
	if fail {
		return fmt.Errorf("database unavailable")
	}
	return a.memArchive.Put(ctx, recs)
}

// TestServer_retriesArchiveWrites: a failed write is retried, so a brief database outage
// loses nothing.
func TestServer_retriesArchiveWrites(t *testing.T) {
	archive := &flakyArchive{memArchive: newMemArchive(), fails: 2}
	srv, err := mailserver.NewServer(archive, mailserver.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	env, err := whisper.Wrap(&whisper.MessageParams{Topic: whisper.TopicFromName("x"), KeySym: mustSym(t), Payload: []byte("keep me"), TTL: 10})
	if err != nil {
		t.Fatal(err)
	}
	srv.Archive(env)
	if err := archive.waitLen(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if archive.len() != 1 || srv.Stats().Lost != 0 || srv.Stats().Archived != 1 {
		t.Fatalf("archived %d, stats %+v", archive.len(), srv.Stats())
	}
}

func mustSym(t *testing.T) *whisper.SymKey {
	t.Helper()
	k, err := whisper.SymKeyFromPassword("x")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ctxArchive fails a Put whose context has ended, as database/sql does.
type ctxArchive struct{ *memArchive }

func (a ctxArchive) Put(ctx context.Context, recs []mailserver.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	return a.memArchive.Put(ctx, recs)
}

// TestServer_shutdownWritesWhatIsQueued: envelopes handed over just before the server
// stops are written by its drain. Before, a write begun with the ended context failed
// and its batch was counted lost (300 of 300 in a benchmark that cancels right after
// the last Archive).
func TestServer_shutdownWritesWhatIsQueued(t *testing.T) {
	archive := ctxArchive{newMemArchive()}
	srv, err := mailserver.NewServer(archive, mailserver.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	key := mustSym(t)
	envs := make([]*whisper.Envelope, 300)
	for i := range envs {
		if envs[i], err = whisper.Wrap(&whisper.MessageParams{Topic: whisper.TopicFromName("x"), KeySym: key,
			Payload: []byte(fmt.Sprint("keep ", i)), TTL: 10}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	for _, env := range envs {
		srv.Archive(env)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); archive.len() != len(envs) || st.Lost != 0 || st.Archived != uint64(len(envs)) {
		t.Fatalf("archived %d of %d, stats %+v", archive.len(), len(envs), st)
	}
}

// TestServer_archiveSizeCap: issue 15 finding 11 for the archive: any peer can make us
// archive envelopes, and only the 30-day retention bounded them. With MaxArchiveBytes
// the oldest are dropped once a sixteenth of the cap was written since the last check,
// so the archive stays within the cap and a sixteenth.
func TestServer_archiveSizeCap(t *testing.T) {
	archive := newMemArchive()
	const maxBytes = 64 << 10
	srv, err := mailserver.NewServer(archive, mailserver.ServerConfig{MaxArchiveBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var sent int64
	sym := mustSym(t)
	for i := range 300 {
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: whisper.TopicFromName("x"), KeySym: sym,
			Payload: bytes.Repeat([]byte{byte(i)}, 1000), TTL: 10})
		if err != nil {
			t.Fatal(err)
		}
		sent += int64(len(env.Bytes()))
		srv.Archive(env)
	}
	deadline := time.After(10 * time.Second)
	for {
		archive.mu.Lock()
		changed := archive.changed
		archive.mu.Unlock()
		if srv.Stats().Archived == 300 && archive.bytes() <= maxBytes+maxBytes/16 {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("after 300 envelopes (%d bytes): %d bytes archived, %+v; want at most %d", sent, archive.bytes(), srv.Stats(), maxBytes+maxBytes/16)
		}
	}
	t.Logf("%d bytes sent, %d kept under a %d-byte cap", sent, archive.bytes(), maxBytes)
}

// checkpointArchive is a memArchive that is a Checkpointer: it records, at each
// Checkpoint, how many envelopes it held (what that checkpoint made durable), and fails
// the first fails calls.
type checkpointArchive struct {
	*memArchive
	cmu     sync.Mutex
	fails   int
	durable []int         // archive size at each successful Checkpoint
	puts    int           // Puts so far
	calls   chan struct{} // signalled at every Checkpoint call
}

func (a *checkpointArchive) Put(ctx context.Context, recs []mailserver.Record) error {
	a.cmu.Lock()
	a.puts++
	a.cmu.Unlock()
	return a.memArchive.Put(ctx, recs)
}

func (a *checkpointArchive) Checkpoint(context.Context) error {
	defer func() {
		select {
		case a.calls <- struct{}{}:
		default:
		}
	}()
	a.cmu.Lock()
	defer a.cmu.Unlock()
	if a.fails > 0 {
		a.fails--
		return fmt.Errorf("disk unavailable")
	}
	a.durable = append(a.durable, a.len())
	return nil
}

// waitDurable waits until a Checkpoint made at least n envelopes durable.
func (a *checkpointArchive) waitDurable(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		a.cmu.Lock()
		done := len(a.durable) > 0 && a.durable[len(a.durable)-1] >= n
		a.cmu.Unlock()
		if done {
			return
		}
		select {
		case <-a.calls:
		case <-deadline:
			t.Fatalf("no checkpoint made %d envelopes durable within 10 s", n)
		}
	}
}

// TestServer_checkpointsCommits: with a Checkpointer archive, Run makes each commit
// durable within CheckpointInterval, retries a failed checkpoint at the next tick
// although nothing new was committed, checkpoints only after commits (never more often
// than it commits, so an idle archive costs no syncs), and checkpoints once more before
// it returns, after writing what was still queued.
func TestServer_checkpointsCommits(t *testing.T) {
	archive := &checkpointArchive{memArchive: newMemArchive(), fails: 1, calls: make(chan struct{}, 1)}
	srv, err := mailserver.NewServer(archive, mailserver.ServerConfig{CheckpointInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	wrap := func(i int) *whisper.Envelope {
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: whisper.TopicFromName("x"), KeySym: mustSym(t), Payload: []byte{byte(i)}, TTL: 10})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	srv.Archive(wrap(0))
	archive.waitDurable(t, 1) // after the failed first checkpoint, retried
	srv.Archive(wrap(1))
	archive.waitDurable(t, 2)
	for i := 2; i < 5; i++ {
		srv.Archive(wrap(i))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	archive.cmu.Lock()
	defer archive.cmu.Unlock()
	if last := archive.durable[len(archive.durable)-1]; last != 5 || archive.len() != 5 {
		t.Fatalf("the last checkpoint made %d of %d envelopes durable, want all 5", last, archive.len())
	}
	if n := len(archive.durable) + 1; n > archive.puts+1 { // + the failed one, which a Put preceded
		t.Fatalf("%d checkpoints for %d Puts: more than one per commit", n, archive.puts)
	}
}
