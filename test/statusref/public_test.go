package statusref

import (
	"context"
	"testing"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
)

// Public chats with status-go v0.70.1, both ways, through the SDK.

const publicChat = "statusgate-interop"

// TestStatusGo_publicFromStatusGo: status-go sends a public message the mid-2020 way
// (a ProtocolMessage with its bundle around the ApplicationMetadataMessage); it reaches
// our chat once with status-go's id (over the inner bytes), author, text and clock, and
// the bundle it carried is stored, so our first 1:1 message to its author uses X3DH.
func TestStatusGo_publicFromStatusGo(t *testing.T) {
	ref := Start(t, Options{})
	u := newUs(t)
	link(t, u, ref)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := u.client.Join(ctx, publicChat)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Leave()
	if err := ref.JoinPublic(publicChat); err != nil {
		t.Fatal(err)
	}
	drainSent(ref)
	m := fromRef(t, ref, publicChat, ch.Messages(), "hello #statusgate-interop")
	if env := lastPublic(t, ref); env.Mode != ModePublic || len(env.Bundles) != 1 {
		t.Fatalf("status-go sent mode %q with %d bundles, want the wrapped form with its bundle", env.Mode, len(env.Bundles))
	}
	if m.Chat != publicChat || m.Installation != ref.InstallationID() || m.Format != chat.FormatProtobuf {
		t.Fatalf("message %+v: want chat %q, installation %q, protobuf", m, publicChat, ref.InstallationID())
	}
	// Our first 1:1 message to the author: X3DH from the bundle learned in the chat.
	cv, err := u.direct.Open(ref.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	checkRefMode(t, toRef(t, u, cv, ref, "I saw you in the public chat"), ref.InstallationID(), ModeX3DH)
}

// lastPublic drains ref's sent envelopes and returns the last public one.
func lastPublic(t *testing.T, ref *Node) Envelope {
	t.Helper()
	var last *Envelope
	for {
		select {
		case e := <-ref.SentEnvelopes():
			if e.Mode == ModePublic || e.Mode == ModeBare {
				last = &e
			}
			continue
		default:
		}
		if last == nil {
			t.Fatal("status-go sent no public envelope")
		}
		return *last
	}
}

// TestStatusGo_publicToStatusGo: our public messages reach status-go with our id,
// author, text and clock, in the protobuf format and in the wrapped format; the wrapped
// one carries our bundle, which status-go stores, so its first 1:1 message to us uses
// X3DH.
func TestStatusGo_publicToStatusGo(t *testing.T) {
	ref := Start(t, Options{})
	u := newUs(t)
	link(t, u, ref)
	if err := ref.JoinPublic(publicChat); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		format chat.SendFormat
		mode   string
	}{{chat.SendProtobuf, ModeBare}, {chat.SendWrapped, ModePublic}} {
		ch, err := u.client.Join(ctx, publicChat, status.JoinOptions{SendFormat: tc.format})
		if err != nil {
			t.Fatal(err)
		}
		text := "from statusgate in " + tc.format.String()
		clock := ch.NextClock(timeNow())
		ids, err := ch.SendMessage(ctx, status.Outgoing{Text: text, Clock: clock}, u.key)
		if err != nil {
			t.Fatal(err)
		}
		m := ref.WaitMessage(t, wait)
		if len(ids) != 1 || m.Text != text || m.ID != [32]byte(ids[0]) || !m.From.Equal(u.pub()) || m.Clock != clock ||
			m.ChatID != publicChat || m.MessageType != "PUBLIC_GROUP" {
			t.Fatalf("%v: status-go got %q (id %x, clock %d, chat %q, %s), we sent id %x clock %d", tc.format, m.Text, m.ID, m.Clock, m.ChatID, m.MessageType, ids, clock)
		}
		if m.Envelope.Mode != tc.mode {
			t.Fatalf("%v: status-go read mode %q, want %q", tc.format, m.Envelope.Mode, tc.mode)
		}
		if tc.format.Wrapped() && (len(m.Envelope.Bundles) != 1 || !m.Envelope.Bundles[0].Identity.Equal(u.pub()) ||
			m.Envelope.InstallationID != u.direct.Installation()) {
			t.Fatalf("wrapped: bundles %+v from installation %q, want ours (%q)", m.Envelope.Bundles, m.Envelope.InstallationID, u.direct.Installation())
		}
		ch.Leave()
	}
	// status-go learned our bundle from the wrapped message: its first 1:1 is X3DH.
	chatID, err := ref.OpenChat(u.pub())
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, fromRef(t, ref, chatID, u.direct.Messages(), "I saw you too"), ratchet.ModeX3DH)
}
