package ratchet_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

// established returns Alice and Bob after a DH, X3DH and two Double Ratchet messages.
func established(t *testing.T) (alice, bob *party, clock *fakeClock) {
	t.Helper()
	clock = newClock()
	alice = newParty(t, "alice", keyOf(t, "alice"), clock, nil)
	bob = newParty(t, "bob", keyOf(t, "bob"), clock, nil)
	bob.receive(t, alice, alice.encrypt(t, bob, "dh"), "dh")
	alice.receive(t, bob, bob.encrypt(t, alice, "x3dh"), "x3dh")
	bob.receive(t, alice, alice.encrypt(t, bob, "dr 1"), "dr 1")
	alice.receive(t, bob, bob.encrypt(t, alice, "dr 2"), "dr 2")
	return alice, bob, clock
}

// mutate decodes an outgoing message, lets f change it, and re-encodes it.
func mutate(t *testing.T, payload []byte, f func(*protobuf.ProtocolMessage)) []byte {
	t.Helper()
	var pm protobuf.ProtocolMessage
	if err := proto.Unmarshal(payload, &pm); err != nil {
		t.Fatal(err)
	}
	f(&pm)
	b, err := proto.Marshal(&pm)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pointOf(t *testing.T, name string) []byte {
	return crypto.CompressPubkey(&keyOf(t, name).PublicKey)
}

// signAs re-signs a bundle with key (after the caller changed it).
func signAs(t testing.TB, b *protobuf.Bundle, key *ecdsa.PrivateKey) {
	t.Helper()
	sig, err := crypto.Sign(crypto.Keccak256(material(b)), key)
	if err != nil {
		t.Fatal(err)
	}
	b.Signature = sig
}

// TestReceive_badInput: every kind of bad input the issue lists gets a counted drop with
// its sentinel, never a panic, and the session is not stuck: the untouched message and
// the next one still decrypt.
func TestReceive_badInput(t *testing.T) {
	alice, bob, _ := established(t)
	mallory := keyOf(t, "mallory")
	fresh := func() *ratchet.Outgoing { return alice.encrypt(t, bob, "fresh") }

	cases := []struct {
		name    string
		from    *ecdsa.PublicKey
		payload func() []byte
		want    error
		counted func(ratchet.Stats) uint64
	}{
		{"not protobuf", alice.pub(), func() []byte { return []byte{0xff, 0xff, 0xff, 0x01} }, ratchet.ErrNotProtocolMessage,
			func(s ratchet.Stats) uint64 { return s.NotProtocolMessage }},
		{"empty protocol message", alice.pub(), func() []byte { return nil }, ratchet.ErrNotProtocolMessage,
			func(s ratchet.Stats) uint64 { return s.NotProtocolMessage }},
		{"tampered ciphertext", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				p := pm.DirectMessage[bob.inst].Payload
				p[len(p)/2] ^= 1
			})
		}, ratchet.ErrDecrypt, func(s ratchet.Stats) uint64 { return s.Decrypt }},
		{"truncated ciphertext", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				pm.DirectMessage[bob.inst].Payload = pm.DirectMessage[bob.inst].Payload[:20]
			})
		}, ratchet.ErrDecrypt, func(s ratchet.Stats) uint64 { return s.Decrypt }},
		{"tampered header n", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) { pm.DirectMessage[bob.inst].DRHeader.N++ })
		}, ratchet.ErrDecrypt, func(s ratchet.Stats) uint64 { return s.Decrypt }},
		{"tampered header pn", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) { pm.DirectMessage[bob.inst].DRHeader.Pn++ })
		}, ratchet.ErrDecrypt, func(s ratchet.Stats) uint64 { return s.Decrypt }},
		{"tampered ratchet key", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				pm.DirectMessage[bob.inst].DRHeader.Key = pointOf(t, "another ratchet key")
			})
		}, ratchet.ErrDecrypt, func(s ratchet.Stats) uint64 { return s.Decrypt }},
		{"ratchet key not a point", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				pm.DirectMessage[bob.inst].DRHeader.Key = []byte{2, 3, 4}
			})
		}, ratchet.ErrMalformed, func(s ratchet.Stats) uint64 { return s.Malformed }},
		{"signed by mallory, alice's copy", &mallory.PublicKey, func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) { pm.Bundles = nil })
		}, ratchet.ErrSessionNotFound, func(s ratchet.Stats) uint64 { return s.SessionNotFound }},
		{"bundle signed by another key", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) { signAs(t, pm.Bundles[0], mallory) })
		}, ratchet.ErrBundleSignature, func(s ratchet.Stats) uint64 { return s.BundleSignature }},
		{"alice's bundle in mallory's envelope", &mallory.PublicKey, func() []byte { return fresh().Payload },
			ratchet.ErrBundleSigner, func(s ratchet.Stats) uint64 { return s.BundleSigner }},
		{"four installations", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				b := pm.Bundles[0]
				for _, id := range []string{"x", "y", "z"} {
					b.SignedPreKeys[id] = &protobuf.SignedPreKey{SignedPreKey: pointOf(t, id), Version: 1, ProtocolVersion: 1}
				}
				signAs(t, b, alice.key)
			})
		}, ratchet.ErrTooManyInstallations, func(s ratchet.Stats) uint64 { return s.TooManyInstallations }},
		{"four bundles", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				for range 3 {
					pm.Bundles = append(pm.Bundles, pm.Bundles[0])
				}
			})
		}, ratchet.ErrTooManyBundles, func(s ratchet.Stats) uint64 { return s.TooManyBundles }},
		{"x3dh header naming an unknown prekey", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				m := pm.DirectMessage[bob.inst]
				m.X3DHHeader = &protobuf.X3DHHeader{Key: pointOf(t, "ek"), Id: pointOf(t, "unknown prekey")}
				m.DRHeader.Id = m.X3DHHeader.Id
			})
		}, ratchet.ErrUnknownPrekey, func(s ratchet.Stats) uint64 { return s.UnknownPrekey }},
		{"x3dh from an installation the sender's bundle does not list", alice.pub(), func() []byte {
			out, err := alice.r.Encrypt(context.Background(), bob.pub(), []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			return mutate(t, out.Payload, func(pm *protobuf.ProtocolMessage) {
				m := pm.DirectMessage[bob.inst]
				bp, _ := bob.r.Bundle(context.Background())
				spk := bp.GetSignedPreKeys()[bob.inst].GetSignedPreKey()
				m.X3DHHeader = &protobuf.X3DHHeader{Key: pointOf(t, "ek2"), Id: spk}
				m.DRHeader.Id = spk
				pm.InstallationId = "unlisted-installation"
			})
		}, ratchet.ErrUnknownInstallation, func(s ratchet.Stats) uint64 { return s.UnknownInstallation }},
		{"dr message of a never-seen session", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				pm.DirectMessage[bob.inst].DRHeader.Id = pointOf(t, "unknown bundle")
			})
		}, ratchet.ErrSessionNotFound, func(s ratchet.Stats) uint64 { return s.SessionNotFound }},
		{"dr message from an unknown installation", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				pm.InstallationId = "someone-else"
				pm.Bundles = nil
			})
		}, ratchet.ErrSessionNotFound, func(s ratchet.Stats) uint64 { return s.SessionNotFound }},
		{"max skip exceeded", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) { pm.DirectMessage[bob.inst].DRHeader.N += 1001 })
		}, ratchet.ErrTooManySkipped, func(s ratchet.Stats) uint64 { return s.TooManySkipped }},
		{"max skip exceeded on a new chain", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				h := pm.DirectMessage[bob.inst].DRHeader
				h.Key, h.Pn = pointOf(t, "new chain"), 5000
			})
		}, ratchet.ErrTooManySkipped, func(s ratchet.Stats) uint64 { return s.TooManySkipped }},
		{"no key header", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				pm.DirectMessage[bob.inst].DRHeader = nil
			})
		}, ratchet.ErrNoKeyHeader, func(s ratchet.Stats) uint64 { return s.NoKeyHeader }},
		{"dh copy with a garbage key", alice.pub(), func() []byte {
			return mutate(t, fresh().Payload, func(pm *protobuf.ProtocolMessage) {
				pm.DirectMessage = map[string]*protobuf.DirectMessageProtocol{"none": {
					DHHeader: &protobuf.DHHeader{Key: make([]byte, 33)}, Payload: make([]byte, 40)}}
			})
		}, ratchet.ErrMalformed, func(s ratchet.Stats) uint64 { return s.Malformed }},
		{"dh copy tampered", alice.pub(), func() []byte {
			out, err := alice.r.EncryptDH(context.Background(), bob.pub(), []byte("dh"))
			if err != nil {
				t.Fatal(err)
			}
			return mutate(t, out.Payload, func(pm *protobuf.ProtocolMessage) { pm.DirectMessage["none"].Payload[0] ^= 1 })
		}, ratchet.ErrDecrypt, func(s ratchet.Stats) uint64 { return s.Decrypt }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.counted(bob.r.Stats())
			bob.expectDrop(t, tc.from, tc.payload(), tc.want)
			if got := tc.counted(bob.r.Stats()); got != before+1 {
				t.Fatalf("counter %d → %d, want +1", before, got)
			}
		})
	}
	// Nothing is stuck: a message sent after all that (the ones above were never
	// delivered, so it skips their keys) decrypts, and so does Bob's answer.
	bob.receive(t, alice, alice.encrypt(t, bob, "after the noise"), "after the noise")
	alice.receive(t, bob, bob.encrypt(t, alice, "still here"), "still here")
}

// TestReceive_replay: a processed message replayed is dropped as a replay; before it is
// processed, the same message decrypts again (crash safety: its key is still stored).
func TestReceive_replay(t *testing.T) {
	alice, bob, _ := established(t)
	out := alice.encrypt(t, bob, "once")
	in, err := bob.r.Receive(context.Background(), alice.pub(), out.Payload)
	if err != nil {
		t.Fatal(err)
	}
	again, err := bob.r.Receive(context.Background(), alice.pub(), out.Payload)
	if err != nil || string(again.Payload) != "once" {
		t.Fatalf("unprocessed message received again: %v %q", err, again.Payload)
	}
	if err := bob.r.Processed(context.Background(), in.Receipt); err != nil {
		t.Fatal(err)
	}
	bob.expectDrop(t, alice.pub(), out.Payload, ratchet.ErrReplay)
	if s := bob.r.Stats(); s.Replay != 1 {
		t.Fatalf("replays counted %d", s.Replay)
	}
	// An X3DH message replayed after the conversation moved on is dropped too.
	carol := newParty(t, "carol", keyOf(t, "carol"), newClock(), nil)
	// Carol learns Bob's bundle from his DH message, then starts X3DH.
	carol.receive(t, bob, bob.encrypt(t, carol, "hi carol"), "hi carol")
	x3dh := carol.encrypt(t, bob, "x3dh from carol")
	bob.receive(t, carol, x3dh, "x3dh from carol")
	carol.receive(t, bob, bob.encrypt(t, carol, "answer"), "answer")
	bob.receive(t, carol, carol.encrypt(t, bob, "dr"), "dr")
	bob.expectDrop(t, carol.pub(), x3dh.Payload, ratchet.ErrReplay)
	// So is a message of an older chain (Alice's, two chains back) after it was processed.
	old := alice.encrypt(t, bob, "old chain")
	bob.receive(t, alice, old, "old chain")
	alice.receive(t, bob, bob.encrypt(t, alice, "turn"), "turn")
	bob.receive(t, alice, alice.encrypt(t, bob, "new chain"), "new chain")
	bob.expectDrop(t, alice.pub(), old.Payload, ratchet.ErrReplay)
	if s := bob.r.Stats(); s.Replay != 3 || s.Decrypt != 0 {
		t.Fatalf("replays %d, decrypt failures %d; want 3 and 0", s.Replay, s.Decrypt)
	}
}

// TestReceive_replayOfOldChains: a processed message replayed after its chain has
// been left behind by many turns of the conversation (here 40: more than the 16 chains
// the session row remembers) is still a replay, not a decrypt failure: the store
// remembers Config.OldChains more. Beyond those (OldChains 4 below), a replay cannot be
// told from a message with a forged ratchet key (both name a ratchet key the session
// does not know, and neither decrypts): it counts as Decrypt, as the forgery does.
func TestReceive_replayOfOldChains(t *testing.T) {
	converse := func(alice, bob *party, turns int) {
		t.Helper()
		for i := range turns {
			alice.receive(t, bob, bob.encrypt(t, alice, fmt.Sprintf("turn %d", i)), fmt.Sprintf("turn %d", i))
			bob.receive(t, alice, alice.encrypt(t, bob, fmt.Sprintf("answer %d", i)), fmt.Sprintf("answer %d", i))
		}
	}
	for _, tc := range []struct {
		name      string
		oldChains int
		want      error
	}{
		{"remembered", 0, ratchet.ErrReplay},
		{"beyond OldChains", 4, ratchet.ErrDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			mod := func(c *ratchet.Config) { c.OldChains = tc.oldChains }
			alice := newParty(t, "alice", keyOf(t, "alice"), clock, mod)
			bob := newParty(t, "bob", keyOf(t, "bob"), clock, mod)
			bob.receive(t, alice, alice.encrypt(t, bob, "dh"), "dh")
			alice.receive(t, bob, bob.encrypt(t, alice, "x3dh"), "x3dh")
			old := alice.encrypt(t, bob, "first chain")
			bob.receive(t, alice, old, "first chain")
			converse(alice, bob, 40)
			bob.restart(t) // the old chains are the store's, not the process's
			bob.expectDrop(t, alice.pub(), old.Payload, tc.want)
			forged := mutate(t, alice.encrypt(t, bob, "forged").Payload, func(pm *protobuf.ProtocolMessage) {
				pm.DirectMessage[bob.inst].DRHeader.Key = pointOf(t, "a ratchet key never used")
			})
			bob.expectDrop(t, alice.pub(), forged, ratchet.ErrDecrypt)
			s := bob.r.Stats()
			if tc.want == ratchet.ErrReplay && (s.Replay != 1 || s.Decrypt != 1) {
				t.Fatalf("replays %d, decrypt failures %d; want 1 and 1 (the forgery)", s.Replay, s.Decrypt)
			}
			if tc.want == ratchet.ErrDecrypt && (s.Replay != 0 || s.Decrypt != 2) {
				t.Fatalf("replays %d, decrypt failures %d; want 0 and 2", s.Replay, s.Decrypt)
			}
			converse(alice, bob, 1) // and the conversation goes on
		})
	}
}
