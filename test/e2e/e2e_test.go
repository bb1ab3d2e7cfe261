package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/identity"
)

const (
	// msgTimeout bounds one message's trip across the gateway.
	msgTimeout = 30 * time.Second
	// burstTimeout bounds the kill -9 burst: 1,000 POSTs, a crash and a restart, and
	// 2,000 envelopes (PoW 0.002 each) through to the reference node.
	burstTimeout = 150 * time.Second
)

// TestE2E_statusToSSE: a signed Status message posted by the reference node into #status,
// once as a 2019 client (Transit) and once as a 2020 client (protobuf), comes out of the
// api connector's event stream with its text and the author's chat key and three-word
// alias (Status's word lists, with no identity.alias_words) as sender.
func TestE2E_statusToSSE(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	events := g.subscribe(t, "status")

	bob, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	wantName := identity.NewNamer(nil).Name(&bob.PublicKey) // Status's own word lists, built in
	if n := len(strings.Fields(wantName)); n != 3 {
		t.Fatalf("alias %q has %d words, want 3", wantName, n)
	}
	for _, f := range []chat.Format{chat.FormatTransit, chat.FormatProtobuf} {
		text := "hello from a " + f.String() + " client"
		payload := encodeStatus(t, bob, text, f)
		sp.post(t, bob, payload)
		ev := waitEvent(t, events, msgTimeout, fmt.Sprintf("%q", text), func(ev wireEvent) bool { return ev.Text == text })
		if ev.Kind != "message" || ev.Origin.Network != "status" || ev.Origin.Channel != "status:"+chatName ||
			!strings.HasPrefix(ev.Origin.ID, "status:") || len(ev.Origin.ID) <= len("status:") {
			t.Errorf("%v: event kind %q origin %+v, want a message from status:%s with a status: ID", f, ev.Kind, ev.Origin, chatName)
		}
		if want := "status:" + identity.ChatKey(&bob.PublicKey); ev.Sender.ID != want {
			t.Errorf("%v: sender ID %q, want %q", f, ev.Sender.ID, want)
		}
		if ev.Sender.Name != wantName {
			t.Errorf("%v: sender name %q, want %q", f, ev.Sender.Name, wantName)
		}
	}
}

// TestE2E_apiToStatusAsPuppet: a POST as alice reaches a Status client signed with alice's
// puppet key, derived from the gateway secret in the data dir, with the nick prefix;
// bob gets another key; the key survives a SIGTERM restart; another gateway's secret
// gives alice another key.
func TestE2E_apiToStatusAsPuppet(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)

	secret := g.secret(t)
	puppet := func(s *identity.Secret, user string) *ecdsa.PrivateKey {
		t.Helper()
		k, err := s.PuppetKey(identity.PuppetID{Network: "api", Account: "api", User: user})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	alice, bob := puppet(secret, "alice"), puppet(secret, "bob")
	if alice.PublicKey.Equal(&bob.PublicKey) {
		t.Fatal("alice and bob derive the same puppet key")
	}
	// expect waits for text in both payload formats and checks that both are signed by
	// (and authored by) key.
	expect := func(text string, key *ecdsa.PrivateKey) {
		t.Helper()
		got := sp.waitFor(t, msgTimeout, fmt.Sprintf("%q in both formats", text), func(ms []statusMsg) bool {
			return len(withText(ms, text)) >= 2
		})
		formats := map[chat.Format]bool{}
		for _, m := range withText(got, text) {
			formats[m.Format] = true
			if !m.signedBy(&key.PublicKey) {
				t.Errorf("%q (%v) signed by %x, author %x; want the puppet key %x", text, m.Format, m.Signer, m.Author,
					crypto.FromECDSAPub(&key.PublicKey))
			}
		}
		if !formats[chat.FormatTransit] || !formats[chat.FormatProtobuf] {
			t.Errorf("%q arrived in formats %v, want Transit and protobuf", text, formats)
		}
	}

	g.mustPost(t, postBody{User: "alice", Name: "Alice", Text: "hello", ID: "a1"})
	expect("[api] <Alice> hello", alice)
	g.mustPost(t, postBody{User: "bob", Name: "Bob", Text: "hi", ID: "b1"})
	expect("[api] <Bob> hi", bob)

	g.stop(t) // SIGTERM: exit status 0
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	g.mustPost(t, postBody{User: "alice", Name: "Alice", Text: "back again", ID: "a2"})
	expect("[api] <Alice> back again", alice)

	// A second data dir initialised by the real binary holds another secret, under
	// which alice is someone else.
	other := newGateway(t, gatewayOptions{})
	secret2 := other.secret(t)
	if secret2.Equal(secret) {
		t.Fatal("bridge init created the same secret twice")
	}
	if alice2 := puppet(secret2, "alice"); alice2.PublicKey.Equal(&alice.PublicKey) {
		t.Error("alice has the same puppet key under two gateway secrets")
	}
}

// withText returns the messages of ms with text.
func withText(ms []statusMsg, text string) []statusMsg {
	var out []statusMsg
	for _, m := range ms {
		if m.Text == text {
			out = append(out, m)
		}
	}
	return out
}

// TestE2E_kill9MidBurst: 1,000 POSTs from 4 workers, the gateway killed with SIGKILL
// after about 300 were accepted and restarted on the same data dir, every unaccepted
// POST retried with its client id: every message reaches the Status client exactly
// once per payload format (no text under two message IDs, so a delivery repeated after
// the crash carries the same IDs), each worker's messages in order of their Status
// clocks, and no delivery ends failed.
func TestE2E_kill9MidBurst(t *testing.T) {
	t.Parallel()
	const (
		total   = 1000
		workers = 4
		killAt  = 300
	)
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}, apiUnlimited: true})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	alice, err := g.secret(t).PuppetKey(identity.PuppetID{Network: "api", Account: "api", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), burstTimeout)
	defer cancel()
	var accepted, retried atomic.Int64
	killNow := make(chan struct{})
	nearEnd := make(chan struct{}) // closed at total-killAt accepted: kill now at the latest
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers { // in order: the next only after a 202
				raw, _ := json.Marshal(postBody{User: "alice", Name: "Alice", Text: fmt.Sprintf("burst %04d", i), ID: fmt.Sprintf("m%04d", i)})
				for {
					code, body, err := g.post(ctx, "status", g.token, raw)
					if code == http.StatusAccepted {
						break
					}
					if ctx.Err() != nil {
						errs <- fmt.Errorf("m%04d not accepted within %v: last %d %s (%v)", i, burstTimeout, code, body, err)
						return
					}
					if err == nil && code != http.StatusServiceUnavailable {
						errs <- fmt.Errorf("m%04d: %d %s, want 202 (or 503 and retry)", i, code, body)
						return
					}
					retried.Add(1) // refused connection, reset, timeout or 503: retry with the same id
					select {
					case <-ctx.Done():
					case <-time.After(pollEvery):
					}
				}
				switch accepted.Add(1) {
				case killAt:
					close(killNow)
				case total - killAt:
					close(nearEnd)
				}
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	select {
	case <-killNow:
	case <-workersDone:
		t.Fatalf("workers ended before %d messages were accepted", killAt)
	}
	// The kill must find deliveries in flight: wait (briefly) until the first burst
	// messages are out at the client, so that the crash falls between posting to Status
	// and recording the delivery for some of them; but kill mid-burst whatever the
	// client saw (a loaded machine may accept the whole burst before it sees anything).
	seen := make(chan struct{})
	go func() { // ends within its 5 s deadline; the test waits for it
		defer close(seen)
		_, _ = sp.await(5*time.Second, func(ms []statusMsg) bool {
			for _, m := range ms {
				if strings.HasPrefix(m.Text, "[api] <Alice> burst ") {
					return true
				}
			}
			return false
		})
	}()
	defer func() { <-seen }()
	select {
	case <-seen:
	case <-nearEnd:
	}
	g.kill(t)
	killedAt := accepted.Load()
	atKill, _ := sp.counts()
	g.start(t)
	g.waitReady(t)
	select {
	case <-workersDone:
	case <-ctx.Done():
		t.Fatalf("burst not accepted within %v (%d accepted)", burstTimeout, accepted.Load())
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("killed with %d of %d accepted and %d envelopes at the client; %d POSTs retried", killedAt, total, atKill, retried.Load())
	if killedAt >= total {
		t.Fatalf("the kill came after the burst (%d accepted): nothing was tested", killedAt)
	}

	want := make(map[string]int, total) // Status text → message index
	for i := range total {
		want[fmt.Sprintf("[api] <Alice> burst %04d", i)] = i
	}
	// The gateway sends everything: its Status outbox empties.
	var r readiness
	if !g.poll(t, time.Until(deadlineOf(ctx)), func() bool {
		var err error
		r, _, err = g.readyz()
		return err == nil && r.Queues["status:"+chatName] == 0
	}) {
		t.Fatalf("Status outbox not empty within %v: %+v", burstTimeout, r.Queues)
	}
	// Then both payloads of every message reach the client (2,000 distinct message IDs
	// of burst texts) within a few gossip cycles. A repeated delivery would have been
	// posted before the last message (the outbox keeps order), so it is in too.
	got, ok := sp.await(msgTimeout, func(ms []statusMsg) bool {
		n := 0
		for _, m := range ms {
			if _, ok := want[m.Text]; ok {
				n++
			}
		}
		return n >= 2*total
	})
	if !ok {
		have := map[int]int{}
		for _, m := range got {
			if i, ok := want[m.Text]; ok {
				have[i]++
			}
		}
		var missing []string
		for i := range total {
			if have[i] < 2 {
				missing = append(missing, fmt.Sprintf("%04d(%d/2)", i, have[i]))
			}
		}
		envelopes, _ := sp.counts()
		t.Fatalf("%d of %d messages incomplete at the Status client %v after the gateway's outbox emptied "+
			"(%d envelopes; the kill came after %d accepted): %v", len(missing), total, msgTimeout, envelopes, killedAt, missing)
	}
	type key struct {
		text   string
		format chat.Format
	}
	ids := map[key][]chat.ID{}
	type sent struct {
		index int
		clock uint64
	}
	perWorker := make([][]sent, workers)
	for _, m := range got {
		i, ok := want[m.Text]
		if !ok {
			t.Errorf("unexpected message %q", m.Text)
			continue
		}
		if !m.signedBy(&alice.PublicKey) {
			t.Errorf("%q signed by %x, want alice's puppet key", m.Text, m.Signer)
		}
		k := key{m.Text, m.Format}
		ids[k] = append(ids[k], m.ID)
		if m.Format == chat.FormatProtobuf {
			perWorker[i%workers] = append(perWorker[i%workers], sent{i, m.Clock})
		}
	}
	// Status clients order a chat by clock: each worker's messages must keep the order in
	// which they were accepted, across the crash too.
	for w, ss := range perWorker {
		slices.SortFunc(ss, func(a, b sent) int { return a.index - b.index })
		for j := 1; j < len(ss); j++ {
			if ss[j].clock <= ss[j-1].clock {
				t.Errorf("worker %d: burst %04d has clock %d, not after burst %04d's %d", w, ss[j].index, ss[j].clock,
					ss[j-1].index, ss[j-1].clock)
			}
		}
	}
	for text := range want {
		for _, f := range []chat.Format{chat.FormatTransit, chat.FormatProtobuf} {
			switch n := len(ids[key{text, f}]); {
			case n == 0:
				t.Errorf("%q (%v) never arrived", text, f)
			case n > 1:
				t.Errorf("%q (%v) arrived under %d message IDs %v: a client shows it %d times", text, f, n, ids[key{text, f}], n)
			}
		}
	}
	envelopes, repeats := sp.counts()
	t.Logf("reference received %d envelopes; %d repeated a message ID (dropped as Status clients do)", envelopes, repeats)

	failures := g.metrics(t, "statusgate_delivery_failures_total")
	for series, v := range failures {
		if v != 0 {
			t.Errorf("statusgate_delivery_failures_total%s = %v, want 0", series, v)
		}
	}
}

// deadlineOf returns ctx's deadline.
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// TestE2E_badInput: bad requests get their status codes and leave the gateway healthy
// (a good POST afterwards still reaches Status); bad configurations and key files stop
// `bridge run` at start with an error that names the problem.
func TestE2E_badInput(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)

	good, _ := json.Marshal(postBody{User: "alice", Name: "Alice", Text: "after the bad ones", ID: "good-1"})
	invalidUTF8 := []byte(`{"user":"alice","text":"bad ` + "\xff\xfe" + `","id":"bad-utf8"}`)
	oversize, _ := json.Marshal(postBody{User: "alice", Text: strings.Repeat("x", 130<<10), ID: "too-big"})
	for _, c := range []struct {
		name    string
		channel string
		token   string
		body    []byte
		want    int
	}{
		{"wrong token", "status", strings.Repeat("0", len(g.token)), good, http.StatusUnauthorized},
		{"no token", "status", "", good, http.StatusUnauthorized},
		{"oversize body", "status", g.token, oversize, http.StatusRequestEntityTooLarge},
		{"invalid UTF-8", "status", g.token, invalidUTF8, http.StatusBadRequest},
		{"unknown field", "status", g.token, []byte(`{"user":"alice","text":"x","colour":"red"}`), http.StatusBadRequest},
		{"unknown channel", "nope", g.token, good, http.StatusNotFound},
	} {
		code, body, err := g.post(context.Background(), c.channel, c.token, c.body)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
		var e struct{ Error string }
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s: body %q is not a JSON error", c.name, body)
		}
	}
	// An unknown route.
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.apiAddr+"/v2/whatever", bytes.NewReader(good))
	req.Header.Set("Authorization", "Bearer "+g.token)
	if resp, err := apiClient.Do(req); err != nil {
		t.Errorf("unknown route: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown route: %s, want 404", resp.Status)
		}
	}

	g.mustPost(t, postBody{User: "alice", Name: "Alice", Text: "after the bad ones", ID: "good-1"})
	got := sp.waitFor(t, msgTimeout, "the good message", func(ms []statusMsg) bool {
		return len(withText(ms, "[api] <Alice> after the bad ones")) >= 2
	})
	for _, m := range got {
		if strings.Contains(m.Text, "bad") && m.Text != "[api] <Alice> after the bad ones" || strings.Contains(m.Text, "xxxx") {
			t.Errorf("a refused POST reached Status: %.60q", m.Text)
		}
	}
	if r, code, err := g.readyz(); err != nil || code != http.StatusOK {
		t.Errorf("after bad input /readyz %d %+v (%v), want 200", code, r, err)
	}

	t.Run("config", func(t *testing.T) {
		b := newGateway(t, gatewayOptions{})
		cfg, err := os.ReadFile(b.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		// An unknown key, on a line we know.
		lines := strings.SplitAfter(string(cfg), "\n")
		at := -1
		for i, l := range lines {
			if strings.HasPrefix(l, "node:") {
				at = i + 1
			}
		}
		bad := strings.Join(lines[:at], "") + "  listen_adress: \"127.0.0.1:1\"\n" + strings.Join(lines[at:], "")
		badPath := filepath.Join(b.dir, "typo.yaml")
		writeFile(t, badPath, bad)
		out, code := runBridge(t, "run", "-config", badPath)
		if code == 0 || !strings.Contains(out, "listen_adress") || !strings.Contains(out, fmt.Sprintf("line %d", at+1)) {
			t.Errorf("unknown key on line %d: exit %d, output:\n%s\nwant non-zero naming the key and the line", at+1, code, out)
		}

		// No gateway secret.
		secretPath := filepath.Join(b.dataDir, "gateway.secret")
		if err := os.Rename(secretPath, secretPath+".bak"); err != nil {
			t.Fatal(err)
		}
		out, code = runBridge(t, "run", "-config", b.cfgPath)
		if code == 0 || !strings.Contains(out, "gateway.secret_file") {
			t.Errorf("missing secret: exit %d, output:\n%s\nwant non-zero naming gateway.secret_file", code, out)
		}
		if err := os.Rename(secretPath+".bak", secretPath); err != nil {
			t.Fatal(err)
		}

		// A node key readable by others.
		keyPath := filepath.Join(b.dataDir, "nodekey")
		if err := os.Chmod(keyPath, 0o644); err != nil {
			t.Fatal(err)
		}
		out, code = runBridge(t, "run", "-config", b.cfgPath)
		if code == 0 || !strings.Contains(out, keyPath) || !strings.Contains(out, "readable by others") {
			t.Errorf("node key mode 0644: exit %d, output:\n%s\nwant non-zero naming the key file and its mode", code, out)
		}
	})
}

// TestE2E_connectorFailsOthersRun: with the api connector's port taken, the gateway runs
// anyway: /readyz is 503 with the connector in transient_disconnect while the Status
// side relays; once the port is free the connector listens, /readyz is 200, and the
// message that arrived meanwhile is in the event stream.
func TestE2E_connectorFailsOthersRun(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	// A reserved port below the ephemeral range: once squat closes, no outgoing
	// connection (the test's own /readyz polls included) can take it before the bridge's
	// next try binds it.
	squat, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	// The connector's sessions back off 1 s, 2 s, 4 s… (+ up to half again) up to
	// gateway.retry_max: with the default 5 min, a port held for ~45 s (a loaded machine)
	// puts the next try up to ~48 s after the port is freed, beyond readyTimeout. Capped
	// at 2 s, the next try comes within 3 s of it, and the test still sees the retry.
	const retryMax = 2 * time.Second
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}, apiListen: squat.Addr().String(), retryMax: retryMax})
	g.start(t)

	var r readiness
	var code int
	if !g.poll(t, readyTimeout, func() bool {
		r, code, _ = g.readyz()
		return code == http.StatusServiceUnavailable && r.Gateway && r.Connectors["api"].State == "transient_disconnect"
	}) {
		t.Fatalf("/readyz %d %+v, want 503 with the gateway up and connectors.api transient_disconnect", code, r)
	}
	if r.Ready || r.Connectors["api"].Error == "" {
		t.Errorf("/readyz %+v: want ready false and the listen error shown", r)
	}
	g.waitPeer(t, sp)

	carol, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const text = "sent while the api was down"
	sp.post(t, carol, encodeStatus(t, carol, text, chat.FormatProtobuf))
	// The Status side took it in: it waits in the api channel's outbox.
	if !g.poll(t, msgTimeout, func() bool {
		r, _, _ = g.readyz()
		return r.Queues["api:status"] >= 1
	}) {
		t.Fatalf("the Status message never reached the api outbox: /readyz %+v", r)
	}
	if r, code, _ = g.readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d %+v while the port is taken, want 503", code, r)
	}

	squat.Close()
	g.waitReady(t) // the connector retries listening with back-off (1 s, 2 s, then retryMax)
	events := g.subscribe(t, "status")
	ev := waitEvent(t, events, msgTimeout, fmt.Sprintf("%q", text), func(ev wireEvent) bool { return ev.Text == text })
	if want := "status:" + identity.ChatKey(&carol.PublicKey); ev.Sender.ID != want {
		t.Errorf("sender %q, want %q", ev.Sender.ID, want)
	}
	if !g.poll(t, msgTimeout, func() bool {
		r, _, _ = g.readyz()
		return r.Queues["api:status"] == 0
	}) {
		t.Errorf("api outbox not empty after delivery: %+v", r.Queues)
	}
}
