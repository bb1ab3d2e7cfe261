package mailserver_test

// Interop with status-go v0.70.1 (test/statusref runs it as a separate process): its
// client request paths against our mailserver, and our client against its
// WhisperMailServer. Our side runs on the real SQLite archive.

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/pgtest"
	"github.com/statusgate/statusgate/test/statusnet"
	"github.com/statusgate/statusgate/test/statusref"
)

const interopWait = 30 * time.Second

// ourMailserver is our mailserver on a node of its own, over a SQLite archive.
type ourMailserver struct {
	node    *node.Node
	server  *mailserver.Server
	archive *store.Archive
}

func startOurMailserver(t *testing.T, cfg mailserver.ServerConfig) *ourMailserver {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(t.TempDir(), "archive.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := mailserver.NewServer(st.Archive(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	n := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Archiver: srv, Requests: srv, Syncs: srv}})
	return &ourMailserver{node: n, server: srv, archive: st.Archive()}
}

// oldEnvelopes builds n envelopes of topic, created an hour ago a second apart (long
// expired: only a mailserver can deliver them), with distinct payloads.
func oldEnvelopes(t *testing.T, topic whisper.Topic, n int, tag string) []*whisper.Envelope {
	t.Helper()
	key, err := whisper.SymKeyFromPassword("interop " + tag)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := crypto.GenerateKey()
	base := time.Now().Add(-time.Hour)
	envs := make([]*whisper.Envelope, n)
	for i := range envs {
		envs[i], err = whisper.Wrap(&whisper.MessageParams{Topic: topic, KeySym: key, Src: alice,
			Payload: []byte(fmt.Sprintf("%s %04d", tag, i)), TTL: 10,
			Clock: func() time.Time { return base.Add(time.Duration(i) * time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
	}
	return envs
}

func (m *ourMailserver) put(t *testing.T, envs []*whisper.Envelope) {
	t.Helper()
	recs := make([]mailserver.Record, len(envs))
	for i, e := range envs {
		recs[i] = mailserver.RecordOf(e)
	}
	if err := m.archive.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func connectRef(t *testing.T, ref *statusref.Node, n *node.Node) {
	t.Helper()
	if err := ref.AddPeer(n.Enode()); err != nil {
		t.Fatal(err)
	}
	ref.WaitPeer(t, n.ID().String(), interopWait)
	statusnet.WaitPeer(t, n, mustNodeID(t, ref))
}

// pageAll follows status-go's shhext path from the first page to the last, checking
// every completion; it returns the number of pages.
func pageAll(t *testing.T, ref *statusref.Node, r statusref.MsRequest) int {
	t.Helper()
	for pages := 1; ; pages++ {
		resp, err := ref.MsRequest(r)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if resp.Error != "" {
			t.Fatalf("page %d: mailserver refused: %s", pages, resp.Error)
		}
		if len(resp.Cursor) == 0 {
			return pages
		}
		if len(resp.Cursor) != mailserver.CursorLength {
			t.Fatalf("page %d: cursor of %d bytes", pages, len(resp.Cursor))
		}
		if pages > 100 {
			t.Fatal("no end of paging")
		}
		r.Cursor = resp.Cursor
	}
}

// delivered checks that status-go's Whisper got each of want envelopes of topic exactly
// once, and forgets them.
func delivered(t *testing.T, ref *statusref.Node, topic whisper.Topic, want int) {
	t.Helper()
	d, err := ref.MsDelivered(topic, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.Distinct != want || d.Total != want || (want > 0 && d.Max != 1) {
		t.Fatalf("status-go got %+v of topic %x, want %d envelopes once each", d, topic, want)
	}
}

// TestInterop_statusGoClientOnOurMailserver (issue 16): status-go v0.70.1's client
// request paths against our mailserver on its defaults. shhext's RequestMessages (the
// seven-field payload with topics, sealed at status-go's default PoW and at the app's
// 0.001) and the Messenger's RequestHistoricMessages (the struct form, limit 100) each
// page 1,000 archived envelopes, every one arriving exactly once, within the default
// per-peer rate limit (18 requests); a topic-list request
// returns only its topic; a wrong password, a malformed payload and a PoW below our
// requirement each get an ERROR= completion naming why.
func TestInterop_statusGoClientOnOurMailserver(t *testing.T) {
	const chat = "mailserver-interop"
	topic, other := whisper.TopicFromName(chat), whisper.TopicFromName("another chat")
	ms := startOurMailserver(t, mailserver.ServerConfig{})
	ms.put(t, oldEnvelopes(t, topic, 1000, "main"))
	ms.put(t, oldEnvelopes(t, other, 200, "other"))
	ref := statusref.Start(t, statusref.Options{})
	connectRef(t, ref, ms.node)
	url := ms.node.Enode()
	now := uint32(time.Now().Unix())
	from := now - 2*3600

	for _, pow := range []*float64{nil, ptr(0.001)} {
		name := "envelope form at status-go's default PoW"
		if pow != nil {
			name = fmt.Sprintf("envelope form at PoW %g", *pow)
		}
		t.Run(name, func(t *testing.T) {
			pages := pageAll(t, ref, statusref.MsRequest{Mailserver: url, From: from, To: now, Limit: 300,
				Topics: [][4]byte{topic}, PoW: pow})
			if pages != 4 {
				t.Errorf("%d pages, want 4 of at most 300", pages)
			}
			delivered(t, ref, topic, 1000)
			delivered(t, ref, other, 0)
		})
	}
	t.Run("struct form (Messenger)", func(t *testing.T) {
		if err := ref.JoinPublic(chat); err != nil { // its topic joins the Messenger's bloom
			t.Fatal(err)
		}
		var cursor []byte
		pages := 0
		for {
			next, refused, err := ref.MsMessengerRequest(url, from, now, cursor)
			if err != nil || refused != "" {
				t.Fatalf("page %d: %v %s", pages+1, err, refused)
			}
			pages++
			if len(next) == 0 {
				break
			}
			if pages > 100 {
				t.Fatal("no end of paging")
			}
			cursor = next
		}
		if pages != 10 { // our archive knows the tenth page of 100 is the last
			t.Errorf("%d pages, want 10 (limit 100)", pages)
		}
		delivered(t, ref, topic, 1000)
	})
	t.Run("topic list", func(t *testing.T) {
		pageAll(t, ref, statusref.MsRequest{Mailserver: url, From: from, To: now, Limit: 1000, Topics: [][4]byte{other}})
		delivered(t, ref, other, 200)
		delivered(t, ref, topic, 0)
	})
	// Refusals on a mailserver at the app's 0.001, with room for many requests.
	strict := startOurMailserver(t, mailserver.ServerConfig{MinPoW: 0.001, RequestBurst: 100})
	strict.put(t, oldEnvelopes(t, topic, 10, "strict"))
	connectRef(t, ref, strict.node)
	t.Run("refusals", func(t *testing.T) {
		wrong := "not the password"
		for _, tc := range []struct {
			name string
			r    statusref.MsRequest
			want string
		}{
			{"wrong password", statusref.MsRequest{Password: &wrong}, "not decryptable with the mailserver password or node key (wrong password?)"},
			{"malformed payload", statusref.MsRequest{Payload: []byte("this is no history request")}, "neither an RLP MessagesRequestPayload nor the binary form"},
			{"lower above upper", statusref.MsRequest{From: now, To: now - 10}, ""}, // refused by status-go's own client
		} {
			tc.r.Mailserver, tc.r.Topics, tc.r.PoW = strict.node.Enode(), [][4]byte{topic}, ptr(0.002)
			if tc.r.From == 0 {
				tc.r.From, tc.r.To = from, now
			}
			resp, err := ref.MsRequest(tc.r)
			if tc.want == "" {
				if !errors.Is(err, statusref.ErrRefused) {
					t.Errorf("%s: %+v, %v; want status-go's client to refuse it", tc.name, resp, err)
				}
				continue
			}
			if err != nil || !strings.Contains(resp.Error, tc.want) {
				t.Errorf("%s: %+v, %v; want an ERROR= completion with %q", tc.name, resp, err, tc.want)
			}
		}
		delivered(t, ref, topic, 0)
	})
	t.Run("PoW below our requirement", func(t *testing.T) {
		// Sealed at status-go's default, a request usually lands well below 0.001 (its
		// PoW is reported); a lucky nonce that reaches it is served, so try again.
		for range 20 {
			resp, err := ref.MsRequest(statusref.MsRequest{Mailserver: strict.node.Enode(), From: from, To: now, Topics: [][4]byte{topic}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.PoW >= 0.001 {
				delivered(t, ref, topic, 10)
				continue
			}
			if want := fmt.Sprintf("request PoW too low: %.3g < 0.001", resp.PoW); !strings.Contains(resp.Error, want) {
				t.Fatalf("PoW %g: completion error %q, want %q", resp.PoW, resp.Error, want)
			}
			delivered(t, ref, topic, 0)
			return
		}
		t.Fatal("20 requests sealed at status-go's default all reached 0.001")
	})
}

func ptr[T any](v T) *T { return &v }

func mustNodeID(t *testing.T, ref *statusref.Node) enode.ID {
	t.Helper()
	id, err := enode.ParseID(ref.ID())
	if err != nil {
		t.Fatalf("statusgo-ref id %q: %v", ref.ID(), err)
	}
	return id
}

// ourClientNode is a node of ours with a history client per request form.
type ourClientNode struct {
	node  *node.Node
	forms map[mailserver.RequestForm]*mailserver.Client
}

func startOurClient(t *testing.T) *ourClientNode {
	t.Helper()
	key, _ := crypto.GenerateKey()
	c := &ourClientNode{forms: map[mailserver.RequestForm]*mailserver.Client{}}
	comps := &completions{raw: make(chan []byte, 1)}
	for _, form := range []mailserver.RequestForm{mailserver.FormTopics, mailserver.FormStruct} {
		cl, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: key, Form: form, Limit: 300, Backoff: 100 * time.Millisecond, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.forms[form] = cl
		comps.clients = append(comps.clients, cl)
	}
	c.node = statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Completions: comps}})
	return c
}

// collectOnce reads the subscription until want distinct payloads arrived, failing on a
// repeat, then checks that nothing more comes.
func collectOnce(t *testing.T, sub *whisper.Subscription, seen map[string]bool, want int) {
	t.Helper()
	collect(t, sub, seen, want)
	select {
	case m := <-sub.C():
		t.Fatalf("extra message %q", m.Payload)
	default:
	}
}

// TestInterop_ourClientOnStatusGoMailserver (issue 16): our client reads 1,000
// envelopes from status-go v0.70.1's WhisperMailServer exactly once in both request
// forms status-go's server decodes (the payload with topics, and the struct), paging
// with its cursors; and a restart of status-go's mailserver mid-paging ends the request
// with ErrPeerGone and a cursor from which the rest comes, exactly once, after the
// restart (its LevelDB archive and its cursors survive it).
func TestInterop_ourClientOnStatusGoMailserver(t *testing.T) {
	topic := whisper.TopicFromName("status-go mailserver interop")
	envs := oldEnvelopes(t, topic, 1000, "sg")
	raw := make([][]byte, len(envs))
	for i, e := range envs {
		raw[i] = e.Bytes()
	}
	ref := statusref.Start(t, statusref.Options{Mailserver: true})
	if err := ref.MsArchive(raw); err != nil {
		t.Fatal(err)
	}
	ours := startOurClient(t)
	if err := ours.node.AddPeer(ref.Enode(), true); err != nil {
		t.Fatal(err)
	}
	refID := mustNodeID(t, ref)
	statusnet.WaitPeer(t, ours.node, refID)
	key, _ := whisper.SymKeyFromPassword("interop sg")
	subscribe := func(t *testing.T) *whisper.Subscription {
		sub, err := ours.node.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: key, AllowP2P: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Unsubscribe)
		return sub
	}
	h := mailserver.History{Topics: []whisper.Topic{topic}, From: time.Now().Add(-2 * time.Hour), To: time.Now()}
	for _, form := range []mailserver.RequestForm{mailserver.FormTopics, mailserver.FormStruct} {
		t.Run(form.String(), func(t *testing.T) {
			sub := subscribe(t)
			pr, err := ours.forms[form].Request(context.Background(), ours.node.Whisper().Peer(refID), h, nil)
			if err != nil {
				t.Fatal(err)
			}
			collectOnce(t, sub, map[string]bool{}, 1000)
			// Three full pages of 300, each with status-go's cursor, and the last 100.
			if pr.Envelopes != 1000 || pr.Pages != 4 {
				t.Errorf("progress %+v, want 1000 envelopes in 4 pages", pr)
			}
		})
	}
	t.Run("restart mid-paging", func(t *testing.T) {
		sub := subscribe(t)
		p := ours.node.Whisper().Peer(refID)
		pr, err := ours.forms[mailserver.FormTopics].Request(context.Background(), p, h, func(pr mailserver.Progress) {
			if pr.Pages == 2 {
				ref.Restart(t) // same port, node key and LevelDB archive
				<-p.Done()
			}
		})
		if !errors.Is(err, mailserver.ErrPeerGone) || len(pr.Cursor) != mailserver.CursorLength {
			t.Fatalf("request across the restart: %v, cursor %x", err, pr.Cursor)
		}
		seen := map[string]bool{}
		collect(t, sub, seen, 600)
		// status-go dials us: our node would not redial a just-dropped peer for 30 s.
		if err := ref.AddPeer(ours.node.Enode()); err != nil {
			t.Fatal(err)
		}
		statusnet.WaitPeer(t, ours.node, refID)
		h := h
		h.Cursor = pr.Cursor
		if _, err := ours.forms[mailserver.FormTopics].Request(context.Background(), ours.node.Whisper().Peer(refID), h, nil); err != nil {
			t.Fatal(err)
		}
		collectOnce(t, sub, seen, 1000)
	})
}

// restartable is our mailserver on a SQLite file that the test can stop and start again
// (same file, same node key), as an operator restarts one.
type restartable struct {
	t      *testing.T
	path   string
	key    *ecdsa.PrivateKey
	cfg    mailserver.ServerConfig
	st     *store.Store
	server *mailserver.Server
	node   *node.Node
	stop   func()
	// syncPeers, when set, are the peer mailservers RunSync syncs from while it runs
	// (its rounds go to cfg.GapSynced); clock, when set, is the node's clock.
	syncPeers []enode.ID
	clock     func() time.Time
}

func newRestartable(t *testing.T, cfg mailserver.ServerConfig) *restartable {
	key, _ := crypto.GenerateKey()
	r := &restartable{t: t, path: filepath.Join(t.TempDir(), "archive.db"), key: key, cfg: cfg}
	t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
		}
	})
	return r
}

// start opens the store, starts the server's Run (which notes where the archive stops)
// and the node.
func (r *restartable) start() {
	t := r.t
	t.Helper()
	var err error
	if r.st, err = store.Open(context.Background(), store.Config{Path: r.path}); err != nil {
		t.Fatal(err)
	}
	if r.server, err = mailserver.NewServer(r.st.Archive(), r.cfg); err != nil {
		t.Fatal(err)
	}
	r.node, err = node.New(node.Config{ListenAddr: "127.0.0.1:0", MaxPeers: 50,
		Whisper: whisper.Config{Archiver: r.server, Requests: r.server, Syncs: r.server, Clock: r.clock}}, r.key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srvDone, nodeDone, syncDone := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() { srvDone <- r.server.Run(ctx) }()
	go func() { nodeDone <- r.node.Run(ctx) }()
	if r.syncPeers != nil {
		go func() { syncDone <- r.server.RunSync(ctx, r.node, r.syncPeers) }()
	} else {
		syncDone <- nil
	}
	r.stop = func() {
		cancel()
		<-syncDone
		<-nodeDone
		<-srvDone
		r.st.Close()
		r.stop = nil
	}
	select {
	case <-r.node.Ready():
	case err := <-nodeDone:
		t.Fatalf("node: %v", err)
	case <-time.After(interopWait):
		t.Fatal("node did not start")
	}
}

func (r *restartable) put(envs []*whisper.Envelope) {
	r.t.Helper()
	recs := make([]mailserver.Record, len(envs))
	for i, e := range envs {
		recs[i] = mailserver.RecordOf(e)
	}
	if err := r.st.Archive().Put(context.Background(), recs); err != nil {
		r.t.Fatal(err)
	}
}

// envelopesAt builds n envelopes of topic created from base on, step apart.
func envelopesAt(t *testing.T, topic whisper.Topic, key *whisper.SymKey, base time.Time, step time.Duration, n int, tag string) []*whisper.Envelope {
	t.Helper()
	alice, _ := crypto.GenerateKey()
	envs := make([]*whisper.Envelope, n)
	for i := range envs {
		var err error
		envs[i], err = whisper.Wrap(&whisper.MessageParams{Topic: topic, KeySym: key, Src: alice,
			Payload: []byte(fmt.Sprintf("%s %d", tag, i)), TTL: 10,
			Clock: func() time.Time { return base.Add(time.Duration(i) * step) }})
		if err != nil {
			t.Fatal(err)
		}
	}
	return envs
}

func rawOf(envs []*whisper.Envelope) [][]byte {
	raw := make([][]byte, len(envs))
	for i, e := range envs {
		raw[i] = e.Bytes()
	}
	return raw
}

// readAll has our client fetch [from, now] of topic from the mailserver peer id and
// checks that want envelopes arrive, each once.
func readAll(t *testing.T, c *ourClientNode, id enode.ID, topic whisper.Topic, key *whisper.SymKey, from time.Time, want int) {
	t.Helper()
	sub, err := c.node.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: key, AllowP2P: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// Read while the request runs: a full subscription holds the node's read loop.
	done := make(chan error, 1)
	go func() {
		_, err := c.forms[mailserver.FormTopics].Request(context.Background(), c.node.Whisper().Peer(id),
			mailserver.History{Topics: []whisper.Topic{topic}, From: from, To: time.Now()}, nil)
		done <- err
	}()
	collect(t, sub, map[string]bool{}, want)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub.C():
		t.Fatalf("extra message %q", m.Payload)
	default:
	}
}

// TestInterop_syncWithStatusGo (issue 16): mailserver ⇄ mailserver sync (codes 123/124)
// with status-go v0.70.1's WhisperMailServer, both ways, after 60 s of downtime. The
// downtime is in archive time: what the other side archived meanwhile is created over
// the 60 s before the restart (handed to its archive hook), so the test does not wait.
//
// Ours ← status-go: our mailserver stops; status-go's archives 1,500 envelopes; ours
// starts again on the same SQLite file, notes that its archive stops 70 s ago, syncs
// that gap from status-go (SyncMargin 10 s; 1,500 envelopes: two rounds, the second
// from status-go's cursor) and serves all 1,550 to a client, each once.
// Ours ← status-go after an outage (issue 16 follow-up): ours, running, loses its only
// peer (disconnected; 2 min pass on its clock) while status-go archives 200; when
// status-go is back, ours syncs them on its own (RunSync's outage round) and serves all
// 1,750.
// Status-go ← ours: status-go's mailserver restarts while ours archives 60 more; it
// syncs them from ours with shhext's SyncMessages and serves all 1,810 to a client.
func TestInterop_syncWithStatusGo(t *testing.T) {
	topic := whisper.TopicFromName("sync interop")
	key, _ := whisper.SymKeyFromPassword("sync interop")
	now := time.Now()
	before := envelopesAt(t, topic, key, now.Add(-120*time.Second), time.Second, 50, "before") // both have these
	sg := statusref.Start(t, statusref.Options{Mailserver: true})
	sgID := mustNodeID(t, sg)
	if err := sg.MsArchive(rawOf(before)); err != nil {
		t.Fatal(err)
	}
	clk := &skewClock{}
	rounds := make(chan mailserver.GapSync, 4)
	ours := newRestartable(t, mailserver.ServerConfig{SyncMargin: 10 * time.Second, RequestBurst: 100, Clock: clk.Now,
		GapSyncInterval: time.Millisecond, GapSynced: func(g mailserver.GapSync) { rounds <- g }})
	ours.clock = clk.Now
	ours.start()
	ours.put(before)
	ours.stop()
	ours.syncPeers = []enode.ID{sgID}

	t.Run("ours from status-go", func(t *testing.T) {
		// Down for the 60 s in which status-go archived these.
		// 1,500 over 60 s: two rounds of status-go's sync, the second from its cursor.
		gap := envelopesAt(t, topic, key, now.Add(-65*time.Second), 40*time.Millisecond, 1500, "gap")
		if err := sg.MsArchive(rawOf(gap)); err != nil {
			t.Fatal(err)
		}
		ours.start()
		if err := ours.node.AddPeer(sg.Enode(), true); err != nil {
			t.Fatal(err)
		}
		if r := nextRound(t, rounds); r.Outage.Seq != 0 || r.Archived < 1500 {
			t.Fatalf("start round: %+v, want the 1,500 of the gap", r)
		}
		if st := ours.server.Stats(); st.Archived < 1500 {
			t.Fatalf("archived %d after the sync, want the 1,500 of the gap", st.Archived)
		}
		client := startOurClient(t)
		statusnet.Connect(t, client.node, ours.node)
		client.node.Whisper().MarkTrusted(ours.node.ID())
		readAll(t, client, ours.node.ID(), topic, key, now.Add(-time.Hour), 1550)
	})

	t.Run("ours from status-go after an outage", func(t *testing.T) {
		// Ours loses its only peer while running; status-go archives 200 meanwhile
		// (2 min of our clock); once status-go is back, ours syncs them on its own.
		if err := ours.node.RemovePeer(sg.Enode()); err != nil {
			t.Fatal(err)
		}
		waitGone(t, ours.node, sgID)
		missed := envelopesAt(t, topic, key, time.Now().Add(-time.Second), 5*time.Millisecond, 200, "outage")
		if err := sg.MsArchive(rawOf(missed)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute)
		// Status-go dials us (we dialled it last: geth's dialer waits 35 s before that
		// again).
		if err := sg.AddPeer(ours.node.Enode()); err != nil {
			t.Fatal(err)
		}
		if r := nextRound(t, rounds); r.Outage.Seq == 0 || r.Archived < 200 {
			t.Fatalf("outage round: %+v, want the 200 missed", r)
		}
		client := startOurClient(t)
		statusnet.Connect(t, client.node, ours.node)
		client.node.Whisper().MarkTrusted(ours.node.ID())
		readAll(t, client, ours.node.ID(), topic, key, now.Add(-time.Hour), 1750)
	})

	t.Run("status-go from ours", func(t *testing.T) {
		sg.Restart(t) // down while ours archives these
		gap2 := envelopesAt(t, topic, key, now.Add(-62*time.Second), time.Second, 60, "gap2")
		ours.put(gap2)
		if err := sg.AddPeer(ours.node.Enode()); err != nil {
			t.Fatal(err)
		}
		statusnet.WaitPeer(t, ours.node, sgID)
		cursor, rounds, refused, err := sg.MsSync(ours.node.Enode(), uint32(now.Add(-70*time.Second).Unix()),
			uint32(time.Now().Unix()+60), 1000, nil, true)
		if err != nil || refused != "" || len(cursor) != 0 {
			t.Fatalf("status-go's sync from ours: cursor %x, rounds %d, refused %q, %v", cursor, rounds, refused, err)
		}
		if st := ours.server.Stats(); st.SyncRequests != 2 || rounds != 2 {
			t.Errorf("ours served %d sync requests, status-go made %d rounds; want 2 (1,760 envelopes, 1,000 a round)", st.SyncRequests, rounds)
		}
		client := startOurClient(t)
		if err := client.node.AddPeer(sg.Enode(), true); err != nil {
			t.Fatal(err)
		}
		statusnet.WaitPeer(t, client.node, sgID)
		readAll(t, client, sgID, topic, key, now.Add(-time.Hour), 1810)
	})
}

// TestInterop_ourClientOnStatusGoPostgres: status-go's mailserver on its PostgreSQL
// backend (mailserver_db_postgres.go) answers newest first, with its cursor as an
// exclusive upper bound, and filters a topic list in SQL: our client, in both forms,
// still gets each of 1,000 envelopes exactly once by following its cursors.
func TestInterop_ourClientOnStatusGoPostgres(t *testing.T) {
	topic := whisper.TopicFromName("status-go postgres interop")
	envs := oldEnvelopes(t, topic, 1000, "pg")
	ref := statusref.Start(t, statusref.Options{Mailserver: true, MailserverPostgres: pgtest.Start(t)})
	if err := ref.MsArchive(rawOf(envs)); err != nil {
		t.Fatal(err)
	}
	ours := startOurClient(t)
	if err := ours.node.AddPeer(ref.Enode(), true); err != nil {
		t.Fatal(err)
	}
	refID := mustNodeID(t, ref)
	statusnet.WaitPeer(t, ours.node, refID)
	key, _ := whisper.SymKeyFromPassword("interop pg")
	h := mailserver.History{Topics: []whisper.Topic{topic}, From: time.Now().Add(-2 * time.Hour), To: time.Now()}
	for _, form := range []mailserver.RequestForm{mailserver.FormTopics, mailserver.FormStruct} {
		t.Run(form.String(), func(t *testing.T) {
			sub, err := ours.node.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: key, AllowP2P: true})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			pr, err := ours.forms[form].Request(context.Background(), ours.node.Whisper().Peer(refID), h, nil)
			if err != nil {
				t.Fatal(err)
			}
			collectN(t, sub, 1000)
			// Pages of 300, newest first; the fourth (100) ends without a cursor.
			if pr.Envelopes != 1000 || pr.Pages != 4 {
				t.Errorf("progress %+v, want 1000 envelopes in 4 pages", pr)
			}
		})
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }
