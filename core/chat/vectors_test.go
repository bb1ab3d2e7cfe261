package chat

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// PROTOCOL.md §13 vectors.
func TestVectors_publicChat(t *testing.T) {
	if got := PublicChatTopic("status").String(); got != "0xcd423760" {
		t.Errorf("topic = %s, want 0xcd423760", got)
	}
	k, err := PublicChatKey("status")
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k.Bytes()); got != "36224048e42c49e5c59c57bba5024fbb8822d6b4ee6ac5fbefd8b77f5323ecc4" {
		t.Errorf("key = %s", got)
	}
}

func TestVectors_messageIDAndSignature(t *testing.T) {
	a := keyFrom(t, "alice")
	if got := pubHex(&a.PublicKey); got != "045eed5fa3a67696c334762bb4823e585e2ee579aba3558d9955296d6c04541b426078dbd48d74af1fd0c72aa1a05147cf17be6b60bdbed6ba19b08ec28445b0ca" {
		t.Fatalf("pubA = %s", got)
	}
	id, err := MessageID(&a.PublicKey, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if got := id.String(); got != "0xa1eb988db8bad3b9d380e19dcebc68bcfc46972b1ec8b597867c38b9f1a0f590" {
		t.Errorf("message id = %s", got)
	}
	sig, err := signPayload([]byte("hello"), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(sig); got != "c231efcc6c76cd1da30b7956453876bb9f56079703b25bf01216ab7a470f18ed64cffb32e39d1216257d8045def307706ddc1d8467960f4d35f0d95ef47a0a5900" {
		t.Errorf("signature = %s", got)
	}
	pub, err := recoverSigner(sig, []byte("hello"), nil)
	if err != nil || pubHex(pub) != pubHex(&a.PublicKey) {
		t.Errorf("recover = %s, %v", pubHex(pub), err)
	}
}

func TestMessageID_nilAuthor(t *testing.T) {
	if _, err := MessageID(nil, []byte("x")); !errors.Is(err, ErrNoAuthorKey) {
		t.Errorf("err = %v, want ErrNoAuthorKey", err)
	}
}

func TestValidateChatName_rules(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
		hint string
	}{
		{"status", true, ""},
		{"status-chinese", true, ""},
		{"0x1", true, ""},
		{"a", true, ""},
		{strings.Repeat("a", MaxChatNameLength), true, ""},
		{strings.Repeat("a", MaxChatNameLength+1), false, "at most"},
		{"", false, "empty"},
		{"#status", false, `drop the leading '#' (use "status")`},
		{"Status", false, "character"},
		{"sta tus", false, "character"},
		{"status_x", false, "character"},
		{"статус", false, "character"},
		{"0x04261c55675e55ff25edb50b345cfb3a3f35f60712d251cbaaab97bd50054c6ebc3cd4e22200c68daf7493e1f8da6a190a68a671e2d3977809612424c7c3888bc6", false, "public key"},
		{"02261c55675e55ff25edb50b345cfb3a3f35f60712d251cbaaab97bd50054c6ebc", false, "public key"},
	}
	for _, tc := range cases {
		err := ValidateChatName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateChatName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidChatName) {
				t.Errorf("ValidateChatName(%q) = %v, want ErrInvalidChatName", tc.name, err)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("ValidateChatName(%q) = %q, want hint %q", tc.name, err, tc.hint)
			}
		}
	}
}
