package statusref

import (
	"context"
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
	"github.com/statusgate/statusgate/test/statusnet"
)

// The mailserver codes (125/126/127) over Waku: our mailserver answers status-go's Waku
// clients through the hooks it answers Whisper clients with, and our client reads
// status-go's WakuMailServer.

// expiredEnvelopes builds n envelopes of topic created an hour ago, a second apart, with
// distinct payloads, encrypted with the key of password.
func expiredEnvelopes(t *testing.T, topic whisper.Topic, password string, n int) []*whisper.Envelope {
	t.Helper()
	key, err := whisper.SymKeyFromPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := crypto.GenerateKey()
	base := time.Now().Add(-time.Hour)
	envs := make([]*whisper.Envelope, n)
	for i := range envs {
		envs[i], err = whisper.Wrap(&whisper.MessageParams{Topic: topic, KeySym: key, Src: alice,
			Payload: []byte(fmt.Sprintf("%s %04d", password, i)), TTL: 10,
			Clock: func() time.Time { return base.Add(time.Duration(i) * time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
	}
	return envs
}

// TestWaku_statusGoClientOnOurMailserver: status-go's Waku client paths against our
// mailserver over waku/1: wakuext's RequestMessages (the envelope form, paged at 100)
// and the Messenger's RequestHistoricMessages (the struct form) each get all 250
// archived envelopes of the chat exactly once, and none of another chat.
func TestWaku_statusGoClientOnOurMailserver(t *testing.T) {
	const chat = "waku-history"
	topic, other := whisper.TopicFromName(chat), whisper.TopicFromName("waku-history-other")
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "archive.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := mailserver.NewServer(st.Archive(), mailserver.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var recs []mailserver.Record
	for _, e := range append(expiredEnvelopes(t, topic, chat, 250), expiredEnvelopes(t, other, "other", 50)...) {
		recs = append(recs, mailserver.RecordOf(e))
	}
	if err := st.Archive().Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	ours := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Archiver: srv, Requests: srv}})

	ref := startWaku(t, WakuOptions{}, Options{})
	if err := ref.AddPeer(ours.Enode()); err != nil {
		t.Fatal(err)
	}
	ref.WaitPeer(t, ours.ID().String(), wait)
	statusnet.WaitPeerInfo(t, ours, func(p whisper.PeerInfo) bool { return p.ID == enode.HexID(ref.ID()) && p.Protocol == "waku/1" })
	now := uint32(time.Now().Unix())
	from := now - 2*3600
	delivered := func(t *testing.T, topic whisper.Topic, want int) {
		t.Helper()
		d, err := ref.MsDelivered(topic, true)
		if err != nil {
			t.Fatal(err)
		}
		if d.Distinct != want || d.Total != want || (want > 0 && d.Max != 1) {
			t.Fatalf("status-go got %+v of topic %s, want %d envelopes once each", d, topic, want)
		}
	}
	t.Run("envelope form", func(t *testing.T) {
		r := MsRequest{Mailserver: ours.Enode(), From: from, To: now, Limit: 100, Topics: [][4]byte{topic}}
		pages := 0
		for {
			resp, err := ref.MsRequest(r)
			if err != nil || resp.Error != "" {
				t.Fatalf("page %d: %v %s", pages+1, err, resp.Error)
			}
			pages++
			if len(resp.Cursor) == 0 {
				break
			}
			if pages > 10 {
				t.Fatal("no end of paging")
			}
			r.Cursor = resp.Cursor
		}
		if pages != 3 {
			t.Errorf("%d pages, want 3 of at most 100", pages)
		}
		delivered(t, topic, 250)
		delivered(t, other, 0)
	})
	t.Run("struct form (Messenger)", func(t *testing.T) {
		if err := ref.JoinPublic(chat); err != nil {
			t.Fatal(err)
		}
		var cursor []byte
		for pages := 1; ; pages++ {
			next, refused, err := ref.MsMessengerRequest(ours.Enode(), from, now, cursor)
			if err != nil || refused != "" {
				t.Fatalf("page %d: %v %s", pages, err, refused)
			}
			if len(next) == 0 {
				break
			}
			if pages > 10 {
				t.Fatal("no end of paging")
			}
			cursor = next
		}
		delivered(t, topic, 250)
	})
	if st := srv.Stats(); st.Requests == 0 {
		t.Fatalf("our mailserver counted no request: %+v", st)
	}
}

// TestWaku_ourClientOnStatusGoMailserver: our history client reads 250 envelopes from
// status-go's WakuMailServer over waku/1, in both request forms it decodes, paging with
// its cursors, each envelope exactly once.
func TestWaku_ourClientOnStatusGoMailserver(t *testing.T) {
	const chat = "waku-sg-history"
	topic := whisper.TopicFromName(chat)
	envs := expiredEnvelopes(t, topic, chat, 250)
	raw := make([][]byte, len(envs))
	for i, e := range envs {
		raw[i] = e.Bytes()
	}
	ref := startWaku(t, WakuOptions{}, Options{Mailserver: true})
	if err := ref.MsArchive(raw); err != nil {
		t.Fatal(err)
	}
	key, _ := crypto.GenerateKey()
	comps := &fanout{}
	clients := map[mailserver.RequestForm]*mailserver.Client{}
	for _, form := range []mailserver.RequestForm{mailserver.FormTopics, mailserver.FormStruct} {
		cl, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: key, Form: form, Limit: 100, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		clients[form] = cl
		comps.clients = append(comps.clients, cl)
	}
	ours := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Completions: comps}})
	if err := ours.AddPeer(ref.Enode(), true); err != nil {
		t.Fatal(err)
	}
	refID := enode.HexID(ref.ID())
	p := statusnet.WaitPeerInfo(t, ours, func(p whisper.PeerInfo) bool { return p.ID == refID })
	if p.Protocol != "waku/1" {
		t.Fatalf("status-go speaks %s with us", p.Protocol)
	}
	sym, _ := whisper.SymKeyFromPassword(chat)
	h := mailserver.History{Topics: []whisper.Topic{topic}, From: time.Now().Add(-2 * time.Hour), To: time.Now()}
	for _, form := range []mailserver.RequestForm{mailserver.FormTopics, mailserver.FormStruct} {
		t.Run(form.String(), func(t *testing.T) {
			sub, err := ours.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym, AllowP2P: true})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			pr, err := clients[form].Request(context.Background(), ours.Whisper().Peer(refID), h, nil)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for len(seen) < len(envs) {
				m := recvWhisper(t, sub)
				if seen[string(m.Payload)] {
					t.Fatalf("%q twice", m.Payload)
				}
				seen[string(m.Payload)] = true
			}
			select {
			case m := <-sub.C():
				t.Fatalf("extra message %q", m.Payload)
			default:
			}
			if pr.Envelopes != uint64(len(envs)) || pr.Pages != 3 {
				t.Errorf("progress %+v, want %d envelopes in 3 pages", pr, len(envs))
			}
		})
	}
}

// fanout hands request completions to every client.
type fanout struct{ clients []*mailserver.Client }

func (f *fanout) HandleRequestComplete(p *whisper.Peer, payload []byte) {
	for _, c := range f.clients {
		c.HandleRequestComplete(p, payload)
	}
}

// wakuMailserver is a mailserver of ours on a node speaking only Waku, over a SQLite
// archive holding envs.
func wakuMailserver(t *testing.T, cfg mailserver.ServerConfig, envs []*whisper.Envelope) (*node.Node, *mailserver.Server) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "archive.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := mailserver.NewServer(st.Archive(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]mailserver.Record, len(envs))
	for i, e := range envs {
		recs[i] = mailserver.RecordOf(e)
	}
	if err := st.Archive().Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })
	n := statusnet.NewNode(t, node.Config{Protocols: []string{node.ProtocolWaku},
		Whisper: whisper.Config{Archiver: srv, Requests: srv, Syncs: srv}})
	return n, srv
}

// TestWaku_mailserverSync (issue 18 follow-up): mailserver ⇄ mailserver sync (codes
// 123/124) over Waku.
//
// Ours ⇄ ours: our Waku wire shares the envelope service's handler table, so the sync
// codes work on waku/1 as on shh/6: a mailserver of ours syncs 1,200 envelopes (two
// rounds of at most 1,000) from another over a Waku-only connection.
//
// Ours → status-go: status-go v0.70.1's Waku has no sync codes. Its waku/1 codes are
// 0, 1, 11, 12, 22, 125, 126 and 127 (waku/v1/const.go:10-18, waku/v0 the same); its
// peer ignores any other code (waku/v1/peer.go:241-244, the default case of
// handlePacket); its mailserver's Waku adapter builds no sync response and its Waku
// service refuses to send one ("syncing mailservers is not support by Waku",
// mailserver/mailserver.go:552-558 and 604-610), and WakuMailServer has no SyncMail.
// So our sync request to its WakuMailServer goes unanswered: SyncFrom ends at
// SyncTimeout with nothing archived, and the connection stays. The other way there is
// nothing to prove: status-go cannot send a sync request over Waku.
func TestWaku_mailserverSync(t *testing.T) {
	const chat = "waku-sync"
	topic := whisper.TopicFromName(chat)
	envs := expiredEnvelopes(t, topic, chat, 1200)
	source, sourceSrv := wakuMailserver(t, mailserver.ServerConfig{RequestBurst: 100}, envs)
	ours, oursSrv := wakuMailserver(t, mailserver.ServerConfig{SyncTimeout: 3 * time.Second}, nil)
	from, to := time.Now().Add(-2*time.Hour), time.Now()

	t.Run("ours from ours", func(t *testing.T) {
		if err := ours.AddPeer(source.Enode(), true); err != nil {
			t.Fatal(err)
		}
		statusnet.WaitPeerInfo(t, ours, func(p whisper.PeerInfo) bool { return p.ID == source.ID() && p.Protocol == "waku/1" })
		res, err := oursSrv.SyncFrom(context.Background(), ours.Whisper().Peer(source.ID()), from, to)
		if err != nil || res.Rounds != 2 || res.Archived != 1200 || res.Dropped != 0 {
			t.Fatalf("sync over waku/1: %+v, %v; want 1,200 envelopes in 2 rounds", res, err)
		}
		if st := sourceSrv.Stats(); st.SyncRequests != 2 {
			t.Errorf("the source served %d sync requests, want 2", st.SyncRequests)
		}
	})

	t.Run("ours from status-go", func(t *testing.T) {
		ref := startWaku(t, WakuOptions{}, Options{Mailserver: true})
		raw := make([][]byte, 10)
		for i := range raw {
			raw[i] = envs[i].Bytes()
		}
		if err := ref.MsArchive(raw); err != nil {
			t.Fatal(err)
		}
		refID := enode.HexID(ref.ID())
		if err := ours.AddPeer(ref.Enode(), true); err != nil {
			t.Fatal(err)
		}
		statusnet.WaitPeerInfo(t, ours, func(p whisper.PeerInfo) bool { return p.ID == refID && p.Protocol == "waku/1" })
		p := ours.Whisper().Peer(refID)
		res, err := oursSrv.SyncFrom(context.Background(), p, from, to)
		if err == nil || !strings.Contains(err.Error(), "no final response") || res.Archived != 0 {
			t.Fatalf("sync from status-go's WakuMailServer: %+v, %v; want no answer within SyncTimeout", res, err)
		}
		select {
		case <-p.Done():
			t.Fatal("status-go dropped us for the sync request")
		default:
		}
		if ours.Whisper().Peer(refID) != p {
			t.Fatal("status-go reconnected")
		}
	})
}
