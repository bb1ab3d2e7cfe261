package ratchet_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

// sentinels are the errors Receive may return for bad input, and ErrWorkRefused (with
// or without ErrDeferred): a fuzzer minting X3DH sessions spends the work budget.
var sentinels = []error{
	ratchet.ErrNotProtocolMessage, ratchet.ErrMalformed, ratchet.ErrBundleSignature, ratchet.ErrBundleSigner,
	ratchet.ErrTooManyInstallations, ratchet.ErrTooManyBundles, ratchet.ErrUnknownPrekey, ratchet.ErrSessionNotFound,
	ratchet.ErrReplay, ratchet.ErrTooManySkipped, ratchet.ErrDecrypt, ratchet.ErrNoKeyHeader, ratchet.ErrUnknownInstallation,
	ratchet.ErrWorkRefused,
}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("receive failed without a sentinel: %v", err)
}

// fuzzParties sets up an established conversation and returns Bob with seed messages
// from Alice: DH, X3DH, DR, public, contact code.
func fuzzParties(f *testing.F) (alice, bob *party, seeds [][]byte) {
	clock := newClock()
	alice = newParty(f, "alice", keyOf(f, "alice"), clock, nil)
	bob = newParty(f, "bob", keyOf(f, "bob"), clock, nil)
	dh := alice.encrypt(f, bob, "dh")
	bob.receive(f, alice, dh, "dh")
	x3dh := bob.encrypt(f, alice, "x3dh")
	alice.receive(f, bob, x3dh, "x3dh")
	dr := alice.encrypt(f, bob, "dr")
	pub, err := alice.r.WrapPublic(context.Background(), []byte("public"))
	if err != nil {
		f.Fatal(err)
	}
	cc, err := alice.r.ContactCode(context.Background(), nil)
	if err != nil {
		f.Fatal(err)
	}
	return alice, bob, [][]byte{dh.Payload, dr.Payload, pub, cc.Payload, x3dh.Payload}
}

// FuzzReceive enters through Receive (the ProtocolMessage decoder, the bundle checks and
// the decryption paths) on a real store: no input may panic, and every failure wraps a
// sentinel.
func FuzzReceive(f *testing.F) {
	alice, bob, seeds := fuzzParties(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := bob.r.Receive(context.Background(), alice.pub(), data)
		checkSentinel(t, err)
	})
}

// FuzzBundle fuzzes the Bundle decoder: the bytes are decoded as a Bundle and attached
// to an otherwise valid public message from Alice, then received (verification and
// storage of bundles run before anything else).
func FuzzBundle(f *testing.F) {
	alice, bob, _ := fuzzParties(f)
	b, err := alice.r.Bundle(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	enc, err := proto.Marshal(b)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte{0x0a, 0x21})
	f.Fuzz(func(t *testing.T, data []byte) {
		var bundle protobuf.Bundle
		if err := proto.Unmarshal(data, &bundle); err != nil {
			return
		}
		pm := &protobuf.ProtocolMessage{InstallationId: alice.inst, Bundles: []*protobuf.Bundle{&bundle}, PublicMessage: []byte("x")}
		in, err := bob.r.ReceiveMessage(context.Background(), alice.pub(), pm)
		checkSentinel(t, err)
		if err == nil && in.Kind != ratchet.KindPublic {
			t.Fatalf("kind %v", in.Kind)
		}
	})
}
