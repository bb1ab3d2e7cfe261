package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/test/interop"
)

// chatName is the Status public chat every test bridges.
const chatName = "status"

// statusPeer is a go-ethereum v1.9.20 whisperv6 node (a separate process) acting as a
// Status client of #status: it posts signed public-chat messages and reads every
// envelope of the chat, decoding it and computing its message ID as Status clients do.
type statusPeer struct {
	ref   *interop.RefNode
	sym   []byte
	topic [4]byte

	mu        sync.Mutex
	msgs      []statusMsg // unique by message ID, in order of arrival
	byID      map[chat.ID]int
	envelopes int      // envelopes received
	repeats   int      // envelopes whose message ID was already seen (dropped, as Status clients do)
	bad       []string // envelopes that would not decode
	wake      chan struct{}
}

// statusMsg is one Status message as a client sees it.
type statusMsg struct {
	ID     chat.ID
	Author []byte // 65-byte public key of the message's author (§7.5)
	Signer []byte // 65-byte public key of the Whisper signature
	Format chat.Format
	Clock  uint64
	Text   string
	// ResponseTo is the id of the message answered ("0x…"), or "".
	ResponseTo string
}

// startStatusPeer starts a reference node subscribed to #status (topic and symmetric key
// derived from the chat name) and collects what it receives until the test ends.
func startStatusPeer(t *testing.T) *statusPeer {
	t.Helper()
	ref := interop.StartRefNode(t, interop.RefNodeOptions{MinPoW: 0.001})
	key, err := chat.PublicChatKey(chatName)
	if err != nil {
		t.Fatal(err)
	}
	sp := &statusPeer{ref: ref, sym: key.Bytes(), topic: chat.PublicChatTopic(chatName),
		byID: map[chat.ID]int{}, wake: make(chan struct{}, 1)}
	if _, err := ref.Subscribe(sp.topic, sp.sym, nil, 0); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // drains ref's buffered channel (1024) so that no message is dropped
		defer close(done)
		for {
			select {
			case m := <-ref.Messages():
				sp.add(m)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if len(sp.bad) > 0 {
			t.Errorf("reference node received %d undecodable Status envelopes, first: %s", len(sp.bad), sp.bad[0])
		}
	})
	return sp
}

// add decodes one received envelope's payload like a Status client.
func (sp *statusPeer) add(m interop.NodeMessage) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	defer func() {
		select {
		case sp.wake <- struct{}{}:
		default:
		}
	}()
	sp.envelopes++
	d, err := chat.Decode(m.Payload)
	if err != nil {
		sp.bad = append(sp.bad, fmt.Sprintf("envelope %x: %v", m.Hash[:4], err))
		return
	}
	author := d.Author
	if author == nil { // bare Transit: the Whisper signer is the author
		if author, err = crypto.UnmarshalPubkey(m.Signer); err != nil {
			sp.bad = append(sp.bad, fmt.Sprintf("envelope %x: unsigned (%v)", m.Hash[:4], err))
			return
		}
	}
	id, err := chat.MessageID(author, m.Payload)
	if err != nil {
		sp.bad = append(sp.bad, fmt.Sprintf("envelope %x: %v", m.Hash[:4], err))
		return
	}
	if _, ok := sp.byID[id]; ok {
		sp.repeats++
		return
	}
	sp.byID[id] = len(sp.msgs)
	sp.msgs = append(sp.msgs, statusMsg{ID: id, Author: crypto.FromECDSAPub(author), Signer: m.Signer,
		Format: d.Message.Format, Clock: d.Message.Clock, Text: d.Message.Text, ResponseTo: d.Message.ResponseTo})
}

// waitFor calls cond with the messages received so far (unique by ID), each time more
// arrive, until it returns true; it fails t after timeout.
func (sp *statusPeer) waitFor(t *testing.T, timeout time.Duration, what string, cond func([]statusMsg) bool) []statusMsg {
	t.Helper()
	msgs, ok := sp.await(timeout, cond)
	if !ok {
		envelopes, _ := sp.counts()
		t.Fatalf("reference node: no %s within %v (%d envelopes, %d messages)", what, timeout, envelopes, len(msgs))
	}
	return msgs
}

// await is waitFor that reports a timeout instead of failing: it returns the messages
// received so far and whether cond accepted them.
func (sp *statusPeer) await(timeout time.Duration, cond func([]statusMsg) bool) ([]statusMsg, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		msgs := sp.snapshot()
		if cond(msgs) {
			return msgs, true
		}
		select {
		case <-sp.wake:
		case <-timer.C:
			return sp.snapshot(), false
		}
	}
}

// snapshot returns the messages received so far, unique by ID, in order of arrival.
func (sp *statusPeer) snapshot() []statusMsg {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return append([]statusMsg(nil), sp.msgs...)
}

// counts returns how many envelopes arrived and how many repeated a known message ID.
func (sp *statusPeer) counts() (envelopes, repeats int) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.envelopes, sp.repeats
}

// post sends payload to #status from the reference node, signed by author, as Status
// clients send: TTL 15, PoW 0.002, symmetric key and topic of the chat name.
func (sp *statusPeer) post(t *testing.T, author *ecdsa.PrivateKey, payload []byte) {
	t.Helper()
	if _, _, err := sp.ref.Post(interop.SealRequest{Payload: payload, Topic: sp.topic, TTL: 15, PoW: 0.002,
		WorkTime: 5, SymKey: sp.sym, SrcPriv: crypto.FromECDSA(author)}); err != nil {
		t.Fatal(err)
	}
}

// encodeStatus encodes a public-chat text message of author in format f.
func encodeStatus(t *testing.T, author *ecdsa.PrivateKey, text string, f chat.Format) []byte {
	t.Helper()
	now := uint64(time.Now().UnixMilli())
	payload, err := chat.Encode(&chat.Message{Clock: now, Timestamp: now, Text: text, ChatID: chatName,
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}, f, author)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// signedBy reports whether m's Whisper signature and author are both pub.
func (m statusMsg) signedBy(pub *ecdsa.PublicKey) bool {
	k := crypto.FromECDSAPub(pub)
	return bytes.Equal(m.Signer, k) && bytes.Equal(m.Author, k)
}
