package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/identity"
)

// memNet is the Status network in memory, for the gateway's tests: public chats whose
// messages every member reads, with Lamport clocks, twin IDs and message ids that
// depend only on the author, the clock and the text (so a retry with a fixed clock
// posts the same message, as on Status). It has one payload generation: a message's
// id and its twin ID differ, but there is no second twin. The gateway joins through
// gateway.StatusNet and reads its own posts back (an echo, as a Whisper node does);
// test users join with user and do not.
type memNet struct {
	mu    sync.Mutex
	rooms map[string]*memRoom
	// unsendable, if set, is a text the network refuses as core/status refuses what
	// it cannot carry (ErrStatusUnsendable); refused counts those posts.
	unsendable string
	refused    int
}

type memRoom struct {
	last  uint64            // the Lamport clock
	subs  map[*memSub]bool  // the members
	twins map[string]string // message id → twin ID
}

// memMsg is a message as a member reads it.
type memMsg struct {
	gateway.StatusMessage
	Author *ecdsa.PublicKey
	Clock  uint64
}

// memSub is one member of a room: the gateway's chat, or a test user.
type memSub struct {
	net  *memNet
	name string
	echo bool // reads its own posts

	mu      sync.Mutex
	q       []memMsg
	seen    map[string]bool
	changed chan struct{}
	left    bool
}

func newMemNet() *memNet { return &memNet{rooms: map[string]*memRoom{}} }

func (n *memNet) room(name string) *memRoom {
	r := n.rooms[name]
	if r == nil {
		r = &memRoom{subs: map[*memSub]bool{}, twins: map[string]string{}}
		n.rooms[name] = r
	}
	return r
}

func (n *memNet) join(name string, echo bool) *memSub {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := &memSub{net: n, name: name, echo: echo, seen: map[string]bool{}, changed: make(chan struct{})}
	n.room(name).subs[s] = true
	return s
}

// Join is gateway.StatusNet.Join.
func (n *memNet) Join(ctx context.Context, name string) (gateway.StatusChat, error) {
	return n.join(name, true), nil
}

// user joins name as a test user: it reads the others' messages, not its own.
func (n *memNet) user(t *testing.T, name string) *memSub {
	s := n.join(name, false)
	t.Cleanup(s.Leave)
	return s
}

func (s *memSub) Next(ctx context.Context) (gateway.StatusMessage, bool) {
	m, ok := s.next(ctx)
	return m.StatusMessage, ok
}

func (s *memSub) next(ctx context.Context) (memMsg, bool) {
	for {
		s.mu.Lock()
		if len(s.q) > 0 {
			m := s.q[0]
			s.q = s.q[1:]
			s.mu.Unlock()
			return m, true
		}
		left, changed := s.left, s.changed
		s.mu.Unlock()
		if left {
			return memMsg{}, false
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return memMsg{}, false
		}
	}
}

func (s *memSub) NextClocks(t time.Time, n int) uint64 {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	r := s.net.room(s.name)
	first := max(uint64(t.UnixMilli()), r.last+1)
	r.last = first + uint64(max(n, 1)) - 1
	return first
}

func (s *memSub) RestoreClock(last uint64) {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	r := s.net.room(s.name)
	r.last = max(r.last, last)
}

func (s *memSub) TwinOf(id string) (string, bool) {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	twin, ok := s.net.room(s.name).twins[id]
	return twin, ok
}

func (s *memSub) Leave() {
	s.net.mu.Lock()
	delete(s.net.room(s.name).subs, s)
	s.net.mu.Unlock()
	s.mu.Lock()
	if !s.left {
		s.left = true
		close(s.changed)
	}
	s.mu.Unlock()
}

// Post is gateway.StatusChat.Post: the message reaches every member (the poster only
// if it reads its own), each once.
func (s *memSub) Post(ctx context.Context, p gateway.StatusPost, key *ecdsa.PrivateKey) (gateway.StatusPosted, error) {
	if utf8.RuneCountInString(p.Text) > gateway.StatusMaxTextLen || !utf8.ValidString(p.Text) {
		return gateway.StatusPosted{}, fmt.Errorf("%w: %d characters", gateway.ErrStatusUnsendable, utf8.RuneCountInString(p.Text))
	}
	s.net.mu.Lock()
	if s.net.unsendable != "" && strings.Contains(p.Text, s.net.unsendable) {
		s.net.refused++
		s.net.mu.Unlock()
		return gateway.StatusPosted{}, fmt.Errorf("%w: refused by the test", gateway.ErrStatusUnsendable)
	}
	s.net.mu.Unlock()
	s.net.mu.Lock()
	r := s.net.room(s.name)
	clock := p.Clock
	if clock == 0 {
		clock = max(uint64(time.Now().UnixMilli()), r.last+1)
	}
	r.last = max(r.last, clock)
	author := identity.ChatKey(&key.PublicKey)
	twin := memHash("twin", author, clock, p.Text)
	id := memHash("id", author, clock, p.Text+"\x00"+p.ResponseTo)
	r.twins[id] = twin
	ts := p.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	m := memMsg{StatusMessage: gateway.StatusMessage{ID: id, TwinID: twin, AuthorKey: author,
		Alias: identity.ShortKey(&key.PublicKey), Text: p.Text, ResponseTo: p.ResponseTo, Timestamp: ts, Sent: time.Now()},
		Author: &key.PublicKey, Clock: clock}
	subs := make([]*memSub, 0, len(r.subs))
	for sub := range r.subs {
		if sub != s || s.echo {
			subs = append(subs, sub)
		}
	}
	s.net.mu.Unlock()
	for _, sub := range subs {
		sub.deliver(m)
	}
	return gateway.StatusPosted{TwinID: twin, IDs: []string{id}}, nil
}

func (s *memSub) deliver(m memMsg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left || s.seen[m.ID] {
		return
	}
	s.seen[m.ID] = true
	s.q = append(s.q, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// Send posts text as key at the room's next clock and returns the message's id.
func (s *memSub) Send(ctx context.Context, text string, key *ecdsa.PrivateKey) ([]string, error) {
	return s.SendMessage(ctx, gateway.StatusPost{Text: text}, key)
}

// SendMessage posts p as key and returns the message's id.
func (s *memSub) SendMessage(ctx context.Context, p gateway.StatusPost, key *ecdsa.PrivateKey) ([]string, error) {
	sent, err := s.Post(ctx, p, key)
	return sent.IDs, err
}

func memHash(kind, author string, clock uint64, text string) string {
	h := sha256.New()
	h.Write([]byte(kind + "\x00" + author + "\x00"))
	h.Write(binary.BigEndian.AppendUint64(nil, clock))
	h.Write([]byte(text))
	return "0x" + hex.EncodeToString(h.Sum(nil))
}

// nextStatus returns the next message user reads, failing after 20 s.
func nextStatus(t *testing.T, user *memSub) memMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, ok := user.next(ctx)
	if !ok {
		t.Fatal("no Status message within 20 s")
	}
	return m
}

// quietStatus checks that user reads nothing for d.
func quietStatus(t *testing.T, user *memSub, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if m, ok := user.next(ctx); ok {
		t.Fatalf("unexpected Status message %q from %s", m.Text, m.AuthorKey)
	}
}
