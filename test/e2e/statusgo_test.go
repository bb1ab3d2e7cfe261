package e2e

import (
	"crypto/ecdsa"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	_ "github.com/mattn/go-sqlite3" // reads the gateway's store after it stopped

	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/test/statusref"
)

// TestE2E_statusGoPublicChat: a status-go v0.70.1 Messenger (a separate process) in
// #status and the bridge binary with the api connector. status-go's message, in the
// mid-2020 wrapped form, comes out of the SSE stream with its author's chat key and its
// text; an api answer to it reaches status-go signed by the poster's puppet key, as a
// Status reply naming status-go's own message id (so the gateway knew the right id);
// and each api message reaches status-go once: bare with the default send format, in a
// ProtocolMessage with the puppet's bundle with send_format wrapped. The gateway verified
// the bundle status-go's wrapped message carried and stored nothing about it: its store
// holds no secure-transport state about any peer.
func TestE2E_statusGoPublicChat(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"both", "wrapped"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			statusGoPublicChat(t, format)
		})
	}
}

func statusGoPublicChat(t *testing.T, format string) {
	ref := statusref.Start(t, statusref.Options{})
	if err := ref.JoinPublic(chatName); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, gatewayOptions{peers: []string{ref.Enode()}, sendFormat: format})
	g.start(t)
	g.waitReady(t)
	if !g.poll(t, readyTimeout, func() bool {
		r, _, _ := g.readyz()
		ids, err := ref.Peers()
		return r.Peers > 0 && err == nil && len(ids) > 0
	}) {
		t.Fatalf("gateway and status-go not peered within %v", readyTimeout)
	}
	events := g.subscribe(t, "status")

	sent, err := ref.Send(chatName, "hello from status-go", "")
	if err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, events, msgTimeout, "status-go's message", func(ev wireEvent) bool { return ev.Text == "hello from status-go" })
	if want := "status:" + identity.ChatKey(ref.PublicKey()); ev.Sender.ID != want || ev.Origin.Channel != "status:"+chatName {
		t.Fatalf("event sender %q channel %q, want %q in status:%s", ev.Sender.ID, ev.Origin.Channel, want, chatName)
	}

	alice, err := g.secret(t).PuppetKey(identity.PuppetID{Network: "api", Account: "api", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	g.mustPost(t, postBody{User: "alice", Name: "Alice", Text: "hello status-go", ID: "a1", ReplyTo: ev.ID})
	m := ref.WaitMessage(t, msgTimeout)
	if m.Text != "[api] <Alice> hello status-go" || !m.From.Equal(&alice.PublicKey) || m.ChatID != chatName || m.MessageType != "PUBLIC_GROUP" {
		t.Fatalf("status-go got %q in %q (%s) from %s; want alice's puppet %s", m.Text, m.ChatID, m.MessageType,
			identity.ChatKey(m.From), identity.ChatKey(&alice.PublicKey))
	}
	if m.ResponseTo != hex.EncodeToString(sent.ID[:]) {
		t.Fatalf("the answer replies to %q, want status-go's message id %x", m.ResponseTo, sent.ID)
	}
	switch env := m.Envelope; format {
	case "wrapped":
		if env.Mode != statusref.ModePublic || len(env.Bundles) != 1 || !env.Bundles[0].Identity.Equal(&alice.PublicKey) || env.InstallationID == "" {
			t.Fatalf("wrapped: status-go read mode %q, bundles %+v, installation %q; want alice's bundle", env.Mode, env.Bundles, env.InstallationID)
		}
	default:
		if env.Mode != statusref.ModeBare {
			t.Fatalf("%s: status-go read mode %q, want a bare ApplicationMetadataMessage", format, env.Mode)
		}
	}
	// The next message status-go shows is the next one posted: the first came once.
	g.mustPost(t, postBody{User: "alice", Name: "Alice", Text: "second", ID: "a2"})
	if m := ref.WaitMessage(t, msgTimeout); m.Text != "[api] <Alice> second" {
		t.Fatalf("status-go showed %q from %s next, want the second message", m.Text, identity.ChatKey(m.From))
	}
	g.stop(t)
	checkNoPeerState(t, filepath.Join(g.dataDir, "statusgate.db"), ref.PublicKey())
}

// checkNoPeerState fails t if the SQLite store at path holds secure-transport state
// about any peer (installations, sessions, negotiated secrets, kept peers), in
// particular about author, whose bundles the gateway read in public messages: the
// gateway verifies those bundles and keeps none (status.Config.Identity is not set), so
// public chat authors cannot grow its store.
func checkNoPeerState(t *testing.T, path string, author *ecdsa.PublicKey) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ratchet_devices WHERE identity = ?`, crypto.CompressPubkey(author)).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the gateway stored %d installations of the public chat author (%v)", n, err)
	}
	for _, table := range []string{"ratchet_peers", "ratchet_devices", "ratchet_sessions", "ratchet_secret_peers", "ratchet_agreed"} {
		if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
			t.Fatalf("the gateway's %s holds %d rows (%v), want none", table, n, err)
		}
	}
}
