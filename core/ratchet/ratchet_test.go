package ratchet_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
)

// TestConversation_DHThenX3DHThenDR follows what status-go does with no bundle known
// (TEST-SERVERS.md §7): Alice's first message is DH to Bob's identity with her bundle, on
// Bob's partitioned topic; Bob's answer runs X3DH from that bundle and goes to the
// negotiated topic (he heard from Alice's only installation); from then on both sides
// talk Double Ratchet on the negotiated topic, 50 messages alternating.
func TestConversation_DHThenX3DHThenDR(t *testing.T) {
	clock := newClock()
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, nil)
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, nil)

	first := alice.encrypt(t, bob, "hello bob")
	if len(first.Copies) != 1 || first.Copies[0].Mode != ratchet.ModeDH || first.Copies[0].InstallationID != "none" {
		t.Fatalf("first message copies %+v, want one DH copy for \"none\"", first.Copies)
	}
	partition := ratchet.PartitionedTopicName(bob.pub())
	if first.Agreed || first.Envelope.Dst == nil || first.Envelope.TopicName != partition ||
		first.Envelope.Topic != whisper.TopicFromName(partition) {
		t.Fatalf("first message envelope %+v, want asymmetric on %s", first.Envelope, partition)
	}
	if first.NewSecret == nil {
		t.Fatal("first message: no new negotiated secret to listen on")
	}
	in := bob.receive(t, alice, first, "hello bob")
	if in.Mode != ratchet.ModeDH || in.NewSecret == nil || in.NewSecret.Topic != first.NewSecret.Topic {
		t.Fatalf("bob: mode %v, secret %v; want DH and the secret %v", in.Mode, in.NewSecret, first.NewSecret)
	}
	if len(in.NewInstallations) != 1 || in.NewInstallations[0] != alice.inst {
		t.Fatalf("bob learned installations %v, want [%s]", in.NewInstallations, alice.inst)
	}

	answer := bob.encrypt(t, alice, "hello alice")
	if len(answer.Copies) != 1 || answer.Copies[0].Mode != ratchet.ModeX3DH || answer.Copies[0].InstallationID != alice.inst {
		t.Fatalf("answer copies %+v, want X3DH for %s", answer.Copies, alice.inst)
	}
	if !answer.Agreed || answer.Envelope.SymKey == nil || answer.Envelope.Topic != first.NewSecret.Topic {
		t.Fatalf("answer envelope %+v agreed=%v, want the negotiated topic %v", answer.Envelope, answer.Agreed, first.NewSecret.Topic)
	}
	if in := alice.receive(t, bob, answer, "hello alice"); in.Mode != ratchet.ModeX3DH {
		t.Fatalf("alice: answer mode %v, want x3dh", in.Mode)
	}

	for i := range 50 {
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		text := fmt.Sprintf("message %d from %s", i, from.name)
		out := from.encrypt(t, to, text)
		if len(out.Copies) != 1 || out.Copies[0].Mode != ratchet.ModeDR || !out.Agreed {
			t.Fatalf("message %d: copies %+v agreed=%v, want one DR copy, agreed", i, out.Copies, out.Agreed)
		}
		if in := to.receive(t, from, out, text); in.Mode != ratchet.ModeDR {
			t.Fatalf("message %d: mode %v", i, in.Mode)
		}
	}
	a, b := alice.r.Stats(), bob.r.Stats()
	if a.ReceivedX3DH != 1 || a.ReceivedDR != 25 || b.ReceivedDH != 1 || b.ReceivedDR != 25 || a.SentDH != 1 || b.SentX3DH != 1 {
		t.Fatalf("stats alice %+v bob %+v", a, b)
	}
	sa, err := alice.r.Secrets(context.Background())
	if err != nil || len(sa) != 1 || sa[0].Topic != first.NewSecret.Topic {
		t.Fatalf("alice secrets %v %v", sa, err)
	}
}
