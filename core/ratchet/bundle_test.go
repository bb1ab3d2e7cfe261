package ratchet_test

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

// TestBundle_verify: our bundle verifies to our key; a tampered, re-signed-by-another-key,
// oversized or malformed bundle does not, with the matching sentinel.
func TestBundle_verify(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "alice", keyOf(t, "alice"), newClock(), nil)
	b, err := alice.r.Bundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spk := b.GetSignedPreKeys()[alice.inst]
	if spk == nil || spk.GetVersion() != 1 || spk.GetProtocolVersion() != 1 || len(spk.GetSignedPreKey()) != 33 ||
		b.GetTimestamp() != newClock().Now().UnixNano() {
		t.Fatalf("bundle %v: want our installation with version 1, protocol 1, timestamp now", b)
	}
	got, err := ratchet.VerifyBundle(b)
	if err != nil || !sameKey(got, alice.pub()) {
		t.Fatalf("verify own bundle: %v", err)
	}
	mallory := keyOf(t, "mallory")
	resign := func(b *protobuf.Bundle) *protobuf.Bundle {
		b = proto.Clone(b).(*protobuf.Bundle)
		sig, err := crypto.Sign(crypto.Keccak256(material(b)), mallory)
		if err != nil {
			t.Fatal(err)
		}
		b.Signature = sig
		return b
	}
	cases := []struct {
		name string
		mod  func(*protobuf.Bundle) *protobuf.Bundle
		want error
	}{
		{"timestamp changed", func(b *protobuf.Bundle) *protobuf.Bundle { b.Timestamp++; return b }, ratchet.ErrBundleSignature},
		{"prekey version changed", func(b *protobuf.Bundle) *protobuf.Bundle {
			b.SignedPreKeys[alice.inst].Version = 7
			return b
		}, ratchet.ErrBundleSignature},
		{"signed by another key", func(b *protobuf.Bundle) *protobuf.Bundle { return resign(b) }, ratchet.ErrBundleSignature},
		{"four installations", func(b *protobuf.Bundle) *protobuf.Bundle {
			for _, id := range []string{"x", "y", "z"} {
				b.SignedPreKeys[id] = proto.Clone(spk).(*protobuf.SignedPreKey)
			}
			return b
		}, ratchet.ErrTooManyInstallations},
		{"short signature", func(b *protobuf.Bundle) *protobuf.Bundle { b.Signature = b.Signature[:64]; return b }, ratchet.ErrMalformed},
		{"identity not a point", func(b *protobuf.Bundle) *protobuf.Bundle { b.Identity = make([]byte, 33); return b }, ratchet.ErrMalformed},
		{"prekey not a point", func(b *protobuf.Bundle) *protobuf.Bundle {
			b.SignedPreKeys[alice.inst].SignedPreKey = []byte{2, 1}
			return b
		}, ratchet.ErrMalformed},
		{"installation none", func(b *protobuf.Bundle) *protobuf.Bundle {
			b.SignedPreKeys["none"] = b.SignedPreKeys[alice.inst]
			delete(b.SignedPreKeys, alice.inst)
			return b
		}, ratchet.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.mod(proto.Clone(b).(*protobuf.Bundle))
			if _, err := ratchet.VerifyBundle(bad); !errors.Is(err, tc.want) {
				t.Fatalf("verify: %v, want %v", err, tc.want)
			}
		})
	}
}

// material restates PROTOCOL.md §5.2's signature material independently of the package,
// for the test that re-signs bundles.
func material(b *protobuf.Bundle) []byte {
	var ids []string
	for id := range b.GetSignedPreKeys() {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var m []byte
	for _, id := range ids {
		m = append(m, id...)
		m = append(m, b.GetSignedPreKeys()[id].GetSignedPreKey()...)
		m = append(m, strconv.FormatUint(uint64(b.GetSignedPreKeys()[id].GetVersion()), 10)...)
	}
	if b.GetTimestamp() != 0 {
		m = append(m, strconv.FormatInt(b.GetTimestamp(), 10)...)
	}
	return m
}
