package e2e

import (
	"crypto/ecdsa"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/identity"
)

// Reproductions of issue 15's findings through the bridge binary and the geth v1.9.20
// reference node (docs/security.md).

// TestE2E_longTextSplit (issue 15 finding 1): a POST of 4,100 × "a", longer than Status
// takes (4,096 characters), followed by "hello 2". Before the fix the long one was
// retried 12 times over 18 minutes and "hello 2" waited behind it. Now the long text
// reaches the Status client as two messages "(1/2)" and "(2/2)" of at most 4,096
// characters each, prefix included, with consecutive clocks and nothing lost, and
// "hello 2" follows at once; no delivery fails.
func TestE2E_longTextSplit(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)

	const prefix = "[api] <Alice> "
	start := time.Now()
	g.mustPost(t, postBody{User: "alice", Name: "Alice", Text: strings.Repeat("a", 4100), ID: "long-1"})
	g.mustPost(t, postBody{User: "alice", Name: "Alice", Text: "hello 2", ID: "hello-2"})
	isPart := func(m statusMsg, i int) bool { return strings.HasPrefix(m.Text, fmt.Sprintf("%s(%d/2) a", prefix, i)) }
	got, ok := sp.await(msgTimeout, func(ms []statusMsg) bool {
		var p1, p2, h int
		for _, m := range ms {
			switch {
			case isPart(m, 1):
				p1++
			case isPart(m, 2):
				p2++
			case m.Text == prefix+"hello 2":
				h++
			}
		}
		return p1 >= 2 && p2 >= 2 && h >= 2
	})
	if !ok {
		r, _, _ := g.readyz()
		var texts []string
		for _, m := range got {
			texts = append(texts, fmt.Sprintf("%.40q (%d chars)", m.Text, utf8.RuneCountInString(m.Text)))
		}
		t.Fatalf("within %v the client got %v; want both parts and \"hello 2\" in both formats; queues %v", msgTimeout, texts, r.Queues)
	}
	t.Logf("both parts and \"hello 2\" at the client %v after the POSTs", time.Since(start).Round(time.Millisecond))
	var clocks [3]uint64 // protobuf: part 1, part 2, hello 2
	as := 0
	for _, m := range got {
		if n := utf8.RuneCountInString(m.Text); n > chat.MaxTextLength {
			t.Errorf("a message of %d characters reached the client", n)
		}
		i := -1
		switch {
		case isPart(m, 1):
			i = 0
		case isPart(m, 2):
			i = 1
		case m.Text == prefix+"hello 2":
			i = 2
		}
		if i < 2 && i >= 0 && m.Format == chat.FormatProtobuf {
			as += strings.Count(m.Text, "a") - strings.Count(prefix, "a")
		}
		if i >= 0 && m.Format == chat.FormatProtobuf {
			clocks[i] = m.Clock
		}
	}
	if as != 4100 {
		t.Errorf("the parts hold %d × \"a\", want 4,100", as)
	}
	if clocks[1] != clocks[0]+1 || clocks[2] <= clocks[1] {
		t.Errorf("clocks part 1 %d, part 2 %d, hello 2 %d: want consecutive parts, then hello 2", clocks[0], clocks[1], clocks[2])
	}
	var r readiness
	if !g.poll(t, msgTimeout, func() bool {
		r, _, _ = g.readyz()
		return r.Queues["status:"+chatName] == 0
	}) {
		t.Errorf("Status outbox not empty: %v", r.Queues)
	}
	for series, v := range g.metrics(t, "statusgate_delivery_failures_total") {
		if v != 0 {
			t.Errorf("statusgate_delivery_failures_total%s = %v, want 0", series, v)
		}
	}
}

// TestE2E_ensNameNotShown (issue 15 finding 5): a Status message claiming the ENS name
// "vitalik.eth", which nothing verifies, reaches the api event stream under its
// author's three-word alias, never under the claimed name.
func TestE2E_ensNameNotShown(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	events := g.subscribe(t, "status")

	mallory, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []chat.Format{chat.FormatTransit, chat.FormatProtobuf} {
		text := "I am Vitalik, " + f.String()
		sp.post(t, mallory, encodeStatusENS(t, mallory, text, "vitalik.eth", f))
		ev := waitEvent(t, events, msgTimeout, fmt.Sprintf("%q", text), func(ev wireEvent) bool { return ev.Text == text })
		if want := identity.NewNamer(nil).Name(&mallory.PublicKey); ev.Sender.Name != want {
			t.Errorf("%v: sender name %q, want the alias %q (an unverified ENS name must not be shown)", f, ev.Sender.Name, want)
		}
	}
	if _, code, _ := g.readyz(); code != http.StatusOK {
		t.Errorf("/readyz %d", code)
	}
}

// encodeStatusENS encodes a public-chat text message of author claiming ens.
func encodeStatusENS(t *testing.T, author *ecdsa.PrivateKey, text, ens string, f chat.Format) []byte {
	t.Helper()
	now := uint64(time.Now().UnixMilli())
	payload, err := chat.Encode(&chat.Message{Clock: now, Timestamp: now, Text: text, ChatID: chatName, ENSName: ens,
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}, f, author)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// TestE2E_statusFloodLimited (issue 15 finding 8): one Status key posts 30 messages at
// once through the reference node. Before the fix all 30 reached the api stream (and
// so every slow destination's queue); now its bucket lets the burst (10) and what
// refilled (1 a second) through, the rest is dropped, counted by reason and logged
// once; another key still gets through.
func TestE2E_statusFloodLimited(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	events := g.subscribe(t, "status")

	flooder, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const total = 30
	start := time.Now()
	for i := range total {
		sp.post(t, flooder, encodeStatus(t, flooder, fmt.Sprintf("flood %02d", i), chat.FormatProtobuf))
	}
	took := time.Since(start)
	honest, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sp.post(t, honest, encodeStatus(t, honest, "an honest message", chat.FormatProtobuf))
	// Envelopes are gossiped in no particular order: count flood messages on the stream
	// until they and the drops make up the total, and the honest message is in.
	flooded, honestIn := 0, false
	var dropped float64
	deadline := time.Now().Add(msgTimeout)
	for !honestIn || flooded+int(dropped) < total {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d flood messages relayed, %v counted dropped (want %d in all), honest message in: %v",
				msgTimeout, flooded, dropped, total, honestIn)
		}
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			switch {
			case strings.HasPrefix(ev.Text, "flood "):
				flooded++
			case ev.Text == "an honest message":
				honestIn = true
			}
		case <-time.After(pollEvery):
			dropped = g.metrics(t, "statusgate_events_dropped_total")[`{reason="rate_limited"}`]
		}
	}
	if flooded+int(dropped) != total {
		t.Errorf("%d relayed and %v dropped of %d", flooded, dropped, total)
	}
	// The burst, plus a token for each second the posting took (the bucket refills on
	// the envelopes' times, whole seconds), plus one for the second boundary.
	most := 10 + int(took.Seconds()) + 1
	t.Logf("%d of %d flood messages relayed (posting took %v), %v dropped", flooded, total, took.Round(time.Millisecond), dropped)
	if flooded < 10 || flooded > most {
		t.Errorf("%d flood messages relayed, want between the burst 10 and %d", flooded, most)
	}
	logged := strings.Count(g.tail(10000), "event dropped (logged once per sender per window)")
	if logged != 1 {
		t.Errorf("the drops were logged %d times, want once", logged)
	}
}
