package interop

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// Test keys: keccak256("alice") as a secp256k1 private key and its public
// key, as computed by go-ethereum v1.9.20 (crypto.ToECDSA, FromECDSAPub).
const (
	alicePrivHex = "9c0257114eb9399a2985f8e75dad7600c5d89fe3824ffa99ec1c3eb8bf3b0501"
	alicePubHex  = "045eed5fa3a67696c334762bb4823e585e2ee579aba3558d9955296d6c04541b42" +
		"6078dbd48d74af1fd0c72aa1a05147cf17be6b60bdbed6ba19b08ec28445b0ca"
	// statusKeyHex is PBKDF2-SHA256("status", no salt, 65356, 32).
	statusKeyHex = "36224048e42c49e5c59c57bba5024fbb8822d6b4ee6ac5fbefd8b77f5323ecc4"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReference_derive(t *testing.T) {
	ref := StartReference(t)

	d, err := ref.Derive("status")
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	if want := [4]byte{0xcd, 0x42, 0x37, 0x60}; d.Topic != want {
		t.Errorf("topic = %x, want %x", d.Topic, want)
	}
	if want := mustHex(t, statusKeyHex); !bytes.Equal(d.SymKey, want) {
		t.Errorf("sym key = %x, want %x", d.SymKey, want)
	}
	var wantBloom [64]byte
	wantBloom[6], wantBloom[8], wantBloom[25] = 0x80, 0x04, 0x20
	if d.Bloom != wantBloom {
		t.Errorf("bloom = %x, want %x", d.Bloom, wantBloom)
	}
	if ok, err := ref.BloomMatch(wantBloom, d.Bloom); err != nil || !ok {
		t.Errorf("BloomMatch(bloom, bloom) = %v, %v; want true, nil", ok, err)
	}

	payload := []byte("hello from the reference")
	sealed, err := ref.Seal(SealRequest{
		Payload:  payload,
		Topic:    d.Topic,
		TTL:      15,
		PoW:      0.002,
		WorkTime: 5,
		SymKey:   d.SymKey,
		SrcPriv:  mustHex(t, alicePrivHex),
	})
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if sealed.TTL != 15 || sealed.PoW < 0.002 {
		t.Errorf("sealed ttl %d pow %g, want 15 and >= 0.002", sealed.TTL, sealed.PoW)
	}

	info, err := ref.Envelope(sealed.Envelope)
	if err != nil {
		t.Fatalf("Envelope: %v", err)
	}
	if info.Hash != sealed.Hash || info.Nonce != sealed.Nonce || info.Expiry != sealed.Expiry ||
		info.Topic != d.Topic || info.Bloom != d.Bloom || info.PoW != sealed.PoW {
		t.Errorf("Envelope = %+v, want the fields of %+v", info, sealed)
	}

	opened, err := ref.Open(sealed.Envelope, d.SymKey, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !opened.OK {
		t.Fatalf("Open refused: %s", opened.Error)
	}
	if !bytes.Equal(opened.Payload, payload) {
		t.Errorf("payload = %q, want %q", opened.Payload, payload)
	}
	if want := mustHex(t, alicePubHex); !bytes.Equal(opened.Signer, want) {
		t.Errorf("signer = %x, want %x", opened.Signer, want)
	}
	if opened.Hash != sealed.Hash || opened.Topic != d.Topic || opened.TTL != 15 ||
		opened.Sent != sealed.Expiry-15 || opened.PoW != sealed.PoW {
		t.Errorf("opened = %+v, want hash %x topic %x ttl 15 sent %d pow %g",
			opened, sealed.Hash, d.Topic, sealed.Expiry-15, sealed.PoW)
	}

	wrong, err := ref.Open(sealed.Envelope, make([]byte, 32), nil)
	if err != nil {
		t.Fatalf("Open with wrong key: %v", err)
	}
	if wrong.OK || wrong.Error == "" {
		t.Errorf("Open with wrong key = %+v, want a refusal", wrong)
	}

	if _, err := ref.Envelope([]byte{0xc0}); !errors.Is(err, ErrRefused) {
		t.Errorf("Envelope(empty list) error = %v, want ErrRefused", err)
	}
}
