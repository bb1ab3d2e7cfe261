package mailserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// TestMailserver_pageBoundedByBytes (security finding 6): a page is bounded by bytes, not
// only by count. 40 archived envelopes of 512 KiB (20 MiB) asked for with a limit of
// 1,000 come back in pages of at most the default 8 MiB, each ending with a cursor, and
// paging delivers all of them once. Before the fix the first answer carried all 40
// (20.0 MiB, held in memory at once) and no cursor.
func TestMailserver_pageBoundedByBytes(t *testing.T) {
	const budget = 8 << 20 // mailserver.DefaultMaxResponseBytes
	f := newFixture(t, mailserver.ServerConfig{RequestBurst: 100, RequestsPerSecond: 100})
	base := time.Now().Add(-time.Hour)
	alice, _ := crypto.GenerateKey()
	var size int
	for i := range 40 {
		payload := make([]byte, 512<<10)
		payload[0] = byte(i)
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: f.topic, KeySym: f.sym, Src: alice, Payload: payload, TTL: 10,
			Clock: func() time.Time { return base.Add(time.Duration(i) * time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
		size = len(env.Bytes())
		f.server.Archive(env)
	}
	waitArchived(t, f, 40)
	sub := f.subscribe(t)
	nodeKey, _ := crypto.GenerateKey()
	mailKey, _ := whisper.SymKeyFromPassword(mailserver.DefaultPassword)
	now := uint32(time.Now().Unix())
	var cursor []byte
	got := map[byte]bool{}
	for page := 0; ; page++ {
		payload, _ := mailserver.EncodePayload(now-7200, now, whisper.BloomOf(f.topic), 1000, cursor, true)
		env, err := whisper.Wrap(&whisper.MessageParams{KeySym: mailKey, Src: nodeKey, Payload: payload, TTL: 50, PoW: 0.002, WorkTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		before := f.peer.Info().Direct
		if err := f.peer.SendRequest(env.Bytes()); err != nil {
			t.Fatal(err)
		}
		var c *mailserver.Completion
		select {
		case raw := <-f.comps.raw:
			if c, err = mailserver.DecodeCompletion(raw); err != nil || c.Error != "" {
				t.Fatalf("page %d: completion %+v, %v", page, c, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("page %d: no completion", page)
		}
		n := int(f.peer.Info().Direct - before) // counted on the read goroutine, before the completion
		t.Logf("page %d: %d envelopes, %.1f MiB, cursor %t", page, n, float64(n*size)/(1<<20), len(c.Cursor) > 0)
		if n*size > budget {
			t.Fatalf("page %d: %d envelopes of %d bytes = %.1f MiB in one answer, budget %d MiB", page, n, size, float64(n*size)/(1<<20), budget>>20)
		}
		for range n {
			select {
			case m := <-sub.C():
				if got[m.Payload[0]] {
					t.Fatalf("envelope %d twice", m.Payload[0])
				}
				got[m.Payload[0]] = true
			case <-time.After(20 * time.Second):
				t.Fatalf("page %d: envelope not delivered", page)
			}
		}
		if cursor = c.Cursor; len(cursor) == 0 {
			break
		}
		if page > 40 {
			t.Fatal("no end of paging")
		}
	}
	if len(got) != 40 {
		t.Fatalf("got %d of 40 envelopes", len(got))
	}
}

func waitArchived(t *testing.T, f *fixture, n int) {
	t.Helper()
	if err := f.archive.waitLen(n, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestMailserver_globalRateLimit (security finding 6): peers with fresh node IDs each
// get their own burst, but not past the global one: of 6 new peers asking once each
// with a global burst of 3, three are served and three get an ERROR= completion naming
// the global limit.
func TestMailserver_globalRateLimit(t *testing.T) {
	f := newFixture(t, mailserver.ServerConfig{GlobalRequestBurst: 3, GlobalRequestsPerSecond: 0.001})
	mailKey, _ := whisper.SymKeyFromPassword(mailserver.DefaultPassword)
	now := uint32(time.Now().Unix())
	var served, limited int
	for i := range 6 {
		comps := &completions{raw: make(chan []byte, 4)}
		n := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Completions: comps}})
		if err := n.AddPeer(f.serverNode.Enode(), true); err != nil {
			t.Fatal(err)
		}
		statusnet.WaitPeer(t, n, f.serverNode.ID())
		nodeKey, _ := crypto.GenerateKey()
		payload, _ := mailserver.EncodePayload(now-60, now, whisper.BloomOf(f.topic), 10, nil, true)
		env, err := whisper.Wrap(&whisper.MessageParams{KeySym: mailKey, Src: nodeKey, Payload: payload, TTL: 50, PoW: 0.002, WorkTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Whisper().Peer(f.serverNode.ID()).SendRequest(env.Bytes()); err != nil {
			t.Fatal(err)
		}
		select {
		case raw := <-comps.raw:
			c, err := mailserver.DecodeCompletion(raw)
			switch {
			case err != nil:
				t.Fatal(err)
			case c.Error == "":
				served++
			case strings.Contains(c.Error, "all peers"):
				limited++
			default:
				t.Fatalf("peer %d: %s", i, c.Error)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("peer %d: no completion", i)
		}
	}
	if served != 3 || limited != 3 {
		t.Fatalf("%d served, %d limited; want 3 and 3", served, limited)
	}
}

// TestMailserver_topicList: a request with a topic list (status-go's seven-field
// payload) returns exactly those topics' envelopes, even when its bloom names another
// topic: the list takes precedence, as in status-go's server. The late-2019 payload with
// the same bloom still selects by bloom.
func TestMailserver_topicList(t *testing.T) {
	f := newFixture(t, mailserver.ServerConfig{RequestBurst: 100, RequestsPerSecond: 100})
	topics := []whisper.Topic{whisper.TopicFromName("a"), whisper.TopicFromName("b"), whisper.TopicFromName("c")}
	base := time.Now().Add(-time.Hour)
	alice, _ := crypto.GenerateKey()
	for i := range 90 {
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: topics[i%3], KeySym: f.sym, Src: alice,
			Payload: []byte{byte(i)}, TTL: 10, Clock: func() time.Time { return base.Add(time.Duration(i) * time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
		f.server.Archive(env)
	}
	waitArchived(t, f, 90)
	sub, err := f.clientNode.Subscribe(whisper.Filter{Topics: topics, SymKey: f.sym, AllowP2P: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nodeKey, _ := crypto.GenerateKey()
	mailKey, _ := whisper.SymKeyFromPassword(mailserver.DefaultPassword)
	now := uint32(time.Now().Unix())
	ask := func(payload []byte) map[whisper.Topic]int {
		t.Helper()
		env, err := whisper.Wrap(&whisper.MessageParams{KeySym: mailKey, Src: nodeKey, Payload: payload, TTL: 50, PoW: 0.002, WorkTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		before := f.peer.Info().Direct
		if err := f.peer.SendRequest(env.Bytes()); err != nil {
			t.Fatal(err)
		}
		select {
		case raw := <-f.comps.raw:
			if c, err := mailserver.DecodeCompletion(raw); err != nil || c.Error != "" || len(c.Cursor) != 0 {
				t.Fatalf("completion %+v, %v", c, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no completion")
		}
		got := map[whisper.Topic]int{}
		for range f.peer.Info().Direct - before {
			select {
			case m := <-sub.C():
				got[m.Topic]++
			case <-time.After(10 * time.Second):
				t.Fatal("envelope not delivered")
			}
		}
		return got
	}
	p, _ := mailserver.EncodePayloadTopics(now-7200, now, whisper.BloomOf(topics[1]), []whisper.Topic{topics[0], topics[2]}, 1000, nil, true)
	if got := ask(p); len(got) != 2 || got[topics[0]] != 30 || got[topics[2]] != 30 {
		t.Errorf("topics [a c] with the bloom of b: %v, want 30 of a and 30 of c", got)
	}
	p, _ = mailserver.EncodePayload(now-7200, now, whisper.BloomOf(topics[1]), 1000, nil, true)
	if got := ask(p); len(got) != 1 || got[topics[1]] != 30 {
		t.Errorf("late-2019 payload with the bloom of b: %v, want 30 of b", got)
	}
}

// TestClient_formsAndResume: our client reads 1,000 archived messages exactly once in
// each request form, paging with the server's cursors; and when the mailserver
// disconnects mid-paging, Request stops at once with ErrPeerGone and a cursor from
// which a second Request, on the reconnected peer, fetches exactly the rest.
func TestClient_formsAndResume(t *testing.T) {
	f := newFixture(t, mailserver.ServerConfig{RequestBurst: 100, RequestsPerSecond: 100})
	f.archiveExpired(t, 1000)
	h := mailserver.History{Topics: []whisper.Topic{f.topic}, From: time.Now().Add(-2 * time.Hour), To: time.Now()}
	for _, form := range []mailserver.RequestForm{mailserver.FormTopics, mailserver.FormPayload, mailserver.FormStruct} {
		t.Run(form.String(), func(t *testing.T) {
			sub := f.subscribe(t)
			pr, err := f.forms[form].Request(context.Background(), f.peer, h, nil)
			if err != nil {
				t.Fatal(err)
			}
			collect(t, sub, map[string]bool{}, 1000)
			if pr.Envelopes != 1000 || pr.Pages != 4 {
				t.Fatalf("progress %+v, want 1000 envelopes in 4 pages", pr)
			}
			select {
			case m := <-sub.C():
				t.Fatalf("extra message %q", m.Payload)
			default:
			}
		})
	}
	t.Run("resume after a disconnect", func(t *testing.T) {
		sub := f.subscribe(t)
		p := f.peer
		pr, err := f.client.Request(context.Background(), p, h, func(pr mailserver.Progress) {
			if pr.Pages == 2 {
				if err := f.clientNode.RemovePeer(f.serverNode.Enode()); err != nil {
					t.Error(err)
				}
				<-p.Done()
			}
		})
		if !errors.Is(err, mailserver.ErrPeerGone) || len(pr.Cursor) != mailserver.CursorLength {
			t.Fatalf("request cut by a disconnect: %v, cursor %x", err, pr.Cursor)
		}
		seen := map[string]bool{}
		collect(t, sub, seen, 600)
		// The server dials back: devp2p would not redial a just-dropped node for 30 s.
		if err := f.serverNode.AddPeer(f.clientNode.Enode(), false); err != nil {
			t.Fatal(err)
		}
		statusnet.WaitPeer(t, f.clientNode, f.serverNode.ID())
		h := h
		h.Cursor = pr.Cursor
		if _, err := f.client.Request(context.Background(), f.clientNode.Whisper().Peer(f.serverNode.ID()), h, nil); err != nil {
			t.Fatal(err)
		}
		collect(t, sub, seen, 1000)
		select {
		case m := <-sub.C():
			t.Fatalf("extra message %q", m.Payload)
		default:
		}
	})
}
