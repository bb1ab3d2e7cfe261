package ratchet

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/whisper"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestKDF_protocolVectors: the Double Ratchet KDFs and message-key derivation against
// PROTOCOL.md §13 (computed there with x/crypto/hkdf and HMAC-SHA256 from status-go's
// constants); the same values come out of status-go's EthereumCrypto in
// TestVectors_statusGo.
func TestKDF_protocolVectors(t *testing.T) {
	var c drCrypto
	rk, ck, hk := c.KdfRK(make([]byte, 32), bytes.Repeat([]byte{1}, 32))
	for _, v := range []struct {
		name      string
		got, want []byte
	}{
		{"KDF_RK root", rk, unhex(t, "6e56b6291cceceb15e4aa2b1ec5303fcbf3e2c5dcd94de52112c901f9085577b")},
		{"KDF_RK chain", ck, unhex(t, "2ed8d41f13158d05a316625784a67d803a90669cd79704b55cf79b5aed0790a7")},
		{"KDF_RK header", hk, unhex(t, "d87ef137c94318673eb217de6394b27c06ea1800c97fa85aaefe2c6462cae404")},
	} {
		if !bytes.Equal(v.got, v.want) {
			t.Errorf("%s = %x, want %x", v.name, v.got, v.want)
		}
	}
	next, mk := c.KdfCK(make([]byte, 32))
	enc, auth, iv := messageKeys(mk)
	for _, v := range []struct {
		name      string
		got, want []byte
	}{
		{"KDF_CK chain", next, unhex(t, "eafa7785a035ee3f3920b61e044535b4e9ad77d701cc2d75e72e0f7a55139e40")},
		{"KDF_CK message key", mk, unhex(t, "d9f0f0627be3a9781bddfb2055627fd71ebcd016328489c48a6cd622c5f9b7e3")},
		{"enc key", enc, unhex(t, "4e65866dbf4f09224b124a34a28dd96418ebe42f0541d567b3e1e00eef0a84e6")},
		{"auth key", auth, unhex(t, "2ecabeedee9fa274a0c1a65d07ec3ab1fa8b91f9e366f54ab0e5845af9bd27ce")},
		{"iv", iv, unhex(t, "5ab1f457e98dfb77b8d81d721fffde82")},
	} {
		if !bytes.Equal(v.got, v.want) {
			t.Errorf("%s = %x, want %x", v.name, v.got, v.want)
		}
	}
	// Encrypt lays out IV ‖ CTR ciphertext ‖ HMAC(auth, ad ‖ IV ‖ ct), and Decrypt undoes it.
	ct, err := c.Encrypt(mk, []byte("hello"), []byte("ad"))
	if err != nil || !bytes.Equal(ct[:16], iv) || len(ct) != 16+5+32 {
		t.Fatalf("encrypt: %x %v", ct, err)
	}
	if pt, err := c.Decrypt(mk, ct, []byte("ad")); err != nil || string(pt) != "hello" {
		t.Fatalf("decrypt: %q %v", pt, err)
	}
	if _, err := c.Decrypt(mk, ct, []byte("other ad")); err == nil {
		t.Fatal("decrypt with other associated data succeeded")
	}
}

// TestTopics_protocolVectors: the negotiated secret and the topic names of PROTOCOL.md §13.
func TestTopics_protocolVectors(t *testing.T) {
	alice, _ := crypto.ToECDSA(crypto.Keccak256([]byte("alice")))
	bob, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	ab, err := dh(alice, &bob.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ba, _ := dh(bob, &alice.PublicKey)
	want := unhex(t, "cdc4d4d8cabdd17a733abdd3d6885a9c5514fb1ee0910e8b81361414920be1bf")
	if !bytes.Equal(ab, want) || !bytes.Equal(ba, want) {
		t.Fatalf("negotiated secret %x / %x, want %x", ab, ba, want)
	}
	s := newSecret(&bob.PublicKey, ab, nil)
	if s.Topic != whisper.BytesToTopic(unhex(t, "d3cfa8e0")) {
		t.Fatalf("negotiated topic %v", s.Topic)
	}
	p, err := crypto.UnmarshalPubkey(unhex(t, "04261c55675e55ff25edb50b345cfb3a3f35f60712d251cbaaab97bd50054c6ebc3cd4e22200c68daf7493e1f8da6a190a68a671e2d3977809612424c7c3888bc6"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		name, want string
		topic      string
	}{
		{PartitionedTopicName(p), "contact-discovery-1828", "d2a34f37"},
		{ContactCodeTopicName(p), "0x04261c55675e55ff25edb50b345cfb3a3f35f60712d251cbaaab97bd50054c6ebc3cd4e22200c68daf7493e1f8da6a190a68a671e2d3977809612424c7c3888bc6-contact-code", "70b8c33c"},
		{PersonalDiscoveryTopicName(p), "contact-discovery-04261c55675e55ff25edb50b345cfb3a3f35f60712d251cbaaab97bd50054c6ebc3cd4e22200c68daf7493e1f8da6a190a68a671e2d3977809612424c7c3888bc6", "6c56a386"},
		{DiscoveryTopicName, "contact-discovery", "f8946aac"},
	} {
		if v.name != v.want || whisper.TopicFromName(v.name) != whisper.BytesToTopic(unhex(t, v.topic)) {
			t.Errorf("topic name %q (%v), want %q (0x%s)", v.name, whisper.TopicFromName(v.name), v.want, v.topic)
		}
	}
}
