package statusref

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// Typed methods, one per op of statusgo-ref node (test/statusgo/README.md). To add
// one: add the op to test/statusgo (ops.go and the README), then a method here.

// AddPeer dials enode.
func (n *Node) AddPeer(enode string) error {
	return n.call("add_peer", map[string]any{"enode": enode}, nil)
}

// Peers returns the enode IDs (hex) of the node's connected peers, sorted.
func (n *Node) Peers() ([]string, error) {
	var out struct {
		Peers []struct {
			ID string `json:"id"`
		} `json:"peers"`
	}
	if err := n.call("peers", nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out.Peers))
	for _, p := range out.Peers {
		ids = append(ids, p.ID)
	}
	return ids, nil
}

// SetPoW is Whisper's SetMinimumPoW.
func (n *Node) SetPoW(pow float64) error {
	return n.call("set_pow", map[string]any{"pow": pow}, nil)
}

// JoinPublic joins the public chat name (Messenger.Join + SaveChat of CreatePublicChat).
func (n *Node) JoinPublic(name string) error {
	return n.call("join_public", map[string]any{"chat": name}, nil)
}

// OpenChat opens the 1:1 chat with pub (CreateOneToOneChat, Join, SaveChat) and
// returns its chat id (ChatID(pub)).
func (n *Node) OpenChat(pub *ecdsa.PublicKey) (string, error) {
	var out struct {
		ChatID string `json:"chat_id"`
	}
	if err := n.call("open_chat", map[string]any{"public_key": hex.EncodeToString(crypto.FromECDSAPub(pub))}, &out); err != nil {
		return "", err
	}
	return out.ChatID, nil
}

// Sent is what SendChatMessage made of a text.
type Sent struct {
	ID        [32]byte
	Clock     uint64
	Timestamp uint64
}

// Send sends text to a chat the node joined or opened (a public chat name, or a 1:1
// chat id) with Messenger.SendChatMessage, as status-go's own tests build messages
// (TEXT_PLAIN; clock and timestamp from the chat). responseTo is a message id (hex,
// with or without 0x) or "".
func (n *Node) Send(chatID, text, responseTo string) (Sent, error) {
	f := map[string]any{"chat_id": chatID, "text": text}
	if responseTo != "" {
		f["response_to"] = responseTo
	}
	var out struct {
		MessageID string `json:"message_id"`
		Clock     uint64 `json:"clock"`
		Timestamp uint64 `json:"timestamp"`
	}
	if err := n.call("send", f, &out); err != nil {
		return Sent{}, err
	}
	s := Sent{Clock: out.Clock, Timestamp: out.Timestamp}
	var d hexDecoder
	d.fixed("message_id", out.MessageID, s.ID[:])
	if d.err != nil {
		return Sent{}, fmt.Errorf("statusgo-ref send: %w", d.err)
	}
	return s, nil
}

// SendDirect opens the 1:1 chat with pub if needed and sends text to it.
func (n *Node) SendDirect(pub *ecdsa.PublicKey, text string) (Sent, error) {
	id, err := n.OpenChat(pub)
	if err != nil {
		return Sent{}, err
	}
	return n.Send(id, text, "")
}

// StoredMessages returns the messages the Messenger's database holds for a chat
// (MessageByChatID, newest first, at most limit; 0 means 1000). Their Envelope is zero.
func (n *Node) StoredMessages(chatID string, limit int) ([]Message, error) {
	var out struct {
		Messages []wireMessage `json:"messages"`
	}
	if err := n.call("messages", map[string]any{"chat_id": chatID, "limit": limit}, &out); err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, w := range out.Messages {
		m, err := w.decode()
		if err != nil {
			return nil, fmt.Errorf("statusgo-ref messages: %w", err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// Installations returns the devices of the node's own identity it knows (its own
// included), sorted by id.
func (n *Node) Installations() ([]Installation, error) {
	var out struct {
		Installations []Installation `json:"installations"`
	}
	if err := n.call("installations", nil, &out); err != nil {
		return nil, err
	}
	return out.Installations, nil
}

// Pair sends a PairInstallation message to the node's other devices
// (Messenger.SendPairInstallation); they report it as an installation event and may
// then EnableInstallation it.
func (n *Node) Pair() error { return n.call("pair", nil, nil) }

// EnableInstallation enables a paired device of the same identity: from then on the
// node's bundle lists it and its messages are also encrypted for it.
func (n *Node) EnableInstallation(id string) error {
	return n.call("enable_installation", map[string]any{"installation_id": id}, nil)
}

// DisableInstallation disables a paired device.
func (n *Node) DisableInstallation(id string) error {
	return n.call("disable_installation", map[string]any{"installation_id": id}, nil)
}

func randomUUID(tb testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Hold makes the node keep, instead of sending, every envelope the Messenger posts from
// now on: each is sealed exactly as whisper's Post seals it (its hash is what the
// Messenger and the sent events see) and sent by Release.
func (n *Node) Hold() error { return n.call("hold", nil, nil) }

// Release stops holding and sends the kept envelopes with whisper's Send, in the order
// they were posted or, with reverse, the opposite one; it returns their hashes in
// sending order.
func (n *Node) Release(reverse bool) ([][32]byte, error) {
	order := "forward"
	if reverse {
		order = "reverse"
	}
	var out struct {
		Hashes []string `json:"hashes"`
	}
	if err := n.call("release", map[string]any{"order": order}, &out); err != nil {
		return nil, err
	}
	hashes := make([][32]byte, len(out.Hashes))
	var d hexDecoder
	for i, h := range out.Hashes {
		d.fixed("hashes", h, hashes[i][:])
	}
	if d.err != nil {
		return nil, fmt.Errorf("statusgo-ref release: %w", d.err)
	}
	return hashes, nil
}
