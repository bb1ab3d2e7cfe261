package discv5

import (
	"crypto/ecdsa"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/crypto"
)

// fakeConn records what a Network sends; it is never read (tests feed packets to
// receive directly, the path the reader goroutine takes).
type fakeConn struct {
	mu   sync.Mutex
	sent []sentPacket
}

type sentPacket struct {
	to  netip.AddrPort
	raw []byte
}

func (c *fakeConn) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, net.ErrClosed
}
func (c *fakeConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, sentPacket{to, append([]byte(nil), b...)})
	return len(b), nil
}
func (c *fakeConn) Close() error { return nil }
func (c *fakeConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 30303}
}

// take returns and forgets the packets sent so far, decoded.
func (c *fakeConn) take(t testing.TB) []*packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*packet
	for _, s := range c.sent {
		p, err := decodePacket(s.raw)
		if err != nil {
			t.Fatalf("we sent an undecodable packet: %v", err)
		}
		p.addr = s.to
		ps = append(ps, p)
	}
	c.sent = nil
	return ps
}

// testNet is a Network driven by hand: no loop, a simulated clock, packets fed through
// receive and timers run by tick.
type testNet struct {
	*Network
	conn  *fakeConn
	clock *mclock.Simulated
}

func newTestNet(t testing.TB, cfg Config) *testNet {
	t.Helper()
	if cfg.PrivateKey == nil {
		cfg.PrivateKey = mustKey(t, "us")
	}
	clk := new(mclock.Simulated)
	clk.Run(time.Hour) // monotonic seconds well above 0
	cfg.Clock = clk
	conn := &fakeConn{}
	nw, err := New(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testNet{Network: nw, conn: conn, clock: clk}
}

func mustKey(t testing.TB, seed string) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// receive is the whole receive path for one datagram: authenticate, then handle.
func (tn *testNet) receive(from netip.AddrPort, raw []byte) {
	p, reason := tn.authenticate(from, raw)
	if reason != dropNone {
		tn.stats.drop(reason)
		return
	}
	tn.handle(p)
}

// advance moves the clock and runs the timers that came due.
func (tn *testNet) advance(d time.Duration) {
	tn.clock.Run(d)
	now := tn.clock.Now()
	for it := tn.timers.pop(now); it != nil; it = tn.timers.pop(now) {
		it.f()
	}
}

// remote is a peer we forge packets for.
type remote struct {
	key  *ecdsa.PrivateKey
	addr netip.AddrPort
}

func newRemote(t testing.TB, seed string, port uint16) remote {
	return remote{mustKey(t, seed), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)}
}

func (r remote) packet(t testing.TB, typ byte, body any) []byte {
	raw, _, err := encodePacket(r.key, typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (r remote) ping(t testing.TB, topics []Topic) []byte {
	return r.packet(t, pingPacket, &ping{Version: Version, From: makeEndpoint(r.addr, r.addr.Port()),
		To: rpcEndpoint{IP: []byte{127, 0, 0, 1}, UDP: 30303, TCP: 30303}, Expiration: uint64(time.Now().Add(time.Minute).Unix()),
		Topics: topicList(topics)})
}

// bond has r ping us and answer our ping back; it returns our pong to r's ping.
func (tn *testNet) bond(t testing.TB, r remote, topics []Topic) (*packet, *pong) {
	t.Helper()
	tn.receive(r.addr, r.ping(t, topics))
	var ourPong *packet
	for _, p := range tn.conn.take(t) {
		switch p.typ {
		case pongPacket:
			ourPong = p
		case pingPacket:
			tn.receive(r.addr, r.packet(t, pongPacket, &pong{To: makeEndpoint(tn.self.udpAddr(), tn.self.TCP),
				ReplyTok: p.hash[:], TopicHash: rlpHash(p.data.(*ping).Topics), WaitPeriods: make([]uint32, len(p.data.(*ping).Topics))}))
		}
	}
	if ourPong == nil {
		t.Fatal("no pong to the ping")
	}
	tn.conn.take(t)
	return ourPong, ourPong.data.(*pong)
}

func (tn *testNet) drops(d dropReason) uint64 { return tn.stats.drops[d].Load() }

func TestInput_malformedPacketsAreCountedDrops(t *testing.T) {
	tn := newTestNet(t, Config{})
	r := newRemote(t, "r", 40000)
	good := r.ping(t, nil)
	cases := map[string][]byte{
		"empty":      nil,
		"short":      good[:headSize],
		"bad prefix": append([]byte("temporary discovery v4"), good[len(versionPrefix):]...),
		"bad sig":    append(append(append([]byte{}, good[:len(versionPrefix)]...), make([]byte, sigSize)...), good[headSize:]...),
		// Old discv5 packets carry no hash: a byte flipped in the body
		// recovers some other key, a well-formed packet from someone else
		// (TestInput_flippedBodyIsAnotherSender). What we can refuse is an
		// expired one.
		"expired": r.packet(t, pingPacket, &ping{Version: Version, From: makeEndpoint(r.addr, r.addr.Port()),
			To: rpcEndpoint{IP: []byte{127, 0, 0, 1}, UDP: 30303, TCP: 30303}, Expiration: 1}),
		"unknown typ": r.packet(t, 99, []uint{1}),
		"bad rlp":     r.packet(t, findnodeHashPacket, []uint{1, 2, 3}),
		"huge list":   r.packet(t, neighborsPacket, &neighbors{Nodes: make([]rpcNode, 30)}),
	}
	for name, raw := range cases {
		before := tn.stats.in.Load()
		tn.receive(r.addr, raw)
		if tn.stats.in.Load() != before+1 {
			t.Errorf("%s: not counted as received", name)
		}
	}
	var dropped uint64
	for i := range tn.stats.drops {
		dropped += tn.stats.drops[i].Load()
	}
	if dropped != uint64(len(cases)) {
		t.Errorf("dropped %d of %d bad packets: %+v", dropped, len(cases), tn.Stats().Drops)
	}
	if n := len(tn.conn.take(t)); n != 0 {
		t.Errorf("answered %d bad packets", n)
	}
}

// Before, the table above flipped a byte of the ping's expiration and passed
// or failed with the wall clock: the flipped packet is valid whenever the new
// expiration lies in the future. This pins what the protocol allows: it is
// taken as a packet from whatever key its signature now recovers, never as r's.
func TestInput_flippedBodyIsAnotherSender(t *testing.T) {
	tn := newTestNet(t, Config{})
	r := newRemote(t, "r", 40000)
	good := r.ping(t, nil)
	bad := flip(good, len(good)-1) // the empty topic list 0xc0 → 0x3f: not a list
	tn.receive(r.addr, bad)
	if n := len(tn.conn.take(t)); n != 0 {
		t.Errorf("answered a ping whose topic list is a byte: %d packets", n)
	}
	p, err := decodePacket(flip(good, len(good)-6))
	if err != nil {
		return // the flipped body does not decode: nothing to compare
	}
	if want, _ := decodePacket(good); p.from == want.from {
		t.Errorf("a flipped body still recovers r's key %x", p.from[:8])
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0xff
	return c
}

// An unbonded node gets nothing but pongs: no neighbors, no topic answers, no
// registrations (our answers could be aimed at someone else's address).
func TestInput_unbondedQueriesAreRefused(t *testing.T) {
	tn := newTestNet(t, Config{})
	r := newRemote(t, "r", 40000)
	tn.receive(r.addr, r.packet(t, findnodeHashPacket, &findnodeHash{Expiration: uint64(time.Now().Add(time.Minute).Unix())}))
	tn.receive(r.addr, r.packet(t, topicQueryPacket, &topicQuery{Topic: "whisper"}))
	if n := len(tn.conn.take(t)); n != 0 {
		t.Fatalf("answered %d packets of an unknown node", n)
	}
	if tn.drops(dropUnbonded) != 2 {
		t.Fatalf("drops %v", tn.Stats().Drops)
	}
	// After the bond the same query is answered.
	tn.bond(t, r, nil)
	tn.receive(r.addr, r.packet(t, topicQueryPacket, &topicQuery{Topic: "whisper"}))
	if ps := tn.conn.take(t); len(ps) != 1 || ps[0].typ != topicNodesPacket {
		t.Fatalf("bonded query answered with %v", ps)
	}
}

func TestInput_oversizedTopicListGetsNoTicket(t *testing.T) {
	tn := newTestNet(t, Config{})
	r := newRemote(t, "r", 40000)
	topics := make([]Topic, 200)
	for i := range topics {
		topics[i] = Topic(fmt.Sprint(i))
	}
	_, pg := tn.bond(t, r, topics)
	if len(pg.WaitPeriods) != 0 || pg.TopicHash != rlpHash([]Topic{}) {
		t.Fatalf("pong to 200 topics carries a ticket for %d", len(pg.WaitPeriods))
	}
	if tn.drops(dropTooManyTopics) != 1 {
		t.Fatalf("drops %v", tn.Stats().Drops)
	}
}

// register has r use the ticket in our pong for topic index idx.
func (tn *testNet) register(t testing.TB, r remote, ourPong *packet, topics []Topic, idx int) {
	tn.receive(r.addr, r.packet(t, topicRegisterPacket, &topicRegister{Topics: topics, Idx: uint(idx), Pong: ourPong.raw}))
}

func TestInput_ticketTiming(t *testing.T) {
	tn := newTestNet(t, Config{MinWaitPeriod: 10 * time.Second})
	r := newRemote(t, "r", 40000)
	topics := []Topic{"whisper"}
	ourPong, pg := tn.bond(t, r, topics)
	if len(pg.WaitPeriods) != 1 || pg.WaitPeriods[0] != 10 {
		t.Fatalf("ticket waits %v, want [10]", pg.WaitPeriods)
	}
	// A ticket from the future: used at once instead of after 10 s.
	tn.register(t, r, ourPong, topics, 0)
	if tn.drops(dropEarlyTicket) != 1 || len(tn.reg.entries("whisper", 50, NodeID{}, tn.clock.Now())) != 0 {
		t.Fatalf("early ticket accepted: %v", tn.Stats().Drops)
	}
	// Forged: a pong signed by someone else, and a topic list that is not the ticket's.
	forged, _, _ := encodePacket(r.key, pongPacket, pg)
	tn.receive(r.addr, r.packet(t, topicRegisterPacket, &topicRegister{Topics: topics, Pong: forged}))
	tn.register(t, r, ourPong, []Topic{"whispermail"}, 0)
	tn.register(t, r, ourPong, topics, 5)
	if tn.drops(dropBadTicket) != 3 {
		t.Fatalf("forged tickets: %v", tn.Stats().Drops)
	}
	tn.advance(10 * time.Second)
	tn.register(t, r, ourPong, topics, 0)
	if got := tn.reg.entries("whisper", 50, NodeID{}, tn.clock.Now()); len(got) != 1 || got[0].ID != PubkeyID(&r.key.PublicKey) {
		t.Fatalf("registration after the wait: %v (drops %v)", got, tn.Stats().Drops)
	}
	// Too late: a second ticket used 30 s after its period.
	ourPong2, _ := tn.bond(t, newRemote(t, "r2", 40001), topics)
	tn.advance(40 * time.Second)
	tn.register(t, newRemote(t, "r2", 40001), ourPong2, topics, 0)
	if tn.drops(dropLateTicket) != 1 {
		t.Fatalf("late ticket: %v", tn.Stats().Drops)
	}
}

// A flood of registrations from many nodes, and of topics from one node, stays within
// the limits; the oldest entries make room, counted.
func TestInput_registrationFloodIsBounded(t *testing.T) {
	lim := Limits{MaxEntries: 100, MaxEntriesPerTopic: 20, MaxTopicsPerNode: 2, MaxNodes: 64}
	tn := newTestNet(t, Config{MinWaitPeriod: time.Second, Limits: lim})
	for i := 0; i < 150; i++ {
		r := newRemote(t, fmt.Sprint("flood", i), uint16(40000+i))
		topics := []Topic{"whisper", Topic(fmt.Sprint("t", i%10)), Topic(fmt.Sprint("u", i))}
		ourPong, _ := tn.bond(t, r, topics)
		tn.advance(time.Second)
		for idx := range topics {
			tn.register(t, r, ourPong, topics, idx)
		}
	}
	if n := len(tn.reg.entries("whisper", 1000, NodeID{}, tn.clock.Now())); n > 20 {
		t.Errorf("%d entries for one topic, limit 20", n)
	}
	if tn.reg.total > 100 {
		t.Errorf("%d entries in all, limit 100", tn.reg.total)
	}
	for id, reg := range tn.reg.nodes {
		if len(reg.entries) > 2 {
			t.Errorf("node %x holds %d topics, limit 2", id[:4], len(reg.entries))
		}
	}
	if len(tn.nodes) > 64 {
		t.Errorf("%d node records, limit 64", len(tn.nodes))
	}
	if tn.drops(dropRegEvicted) == 0 {
		t.Error("no eviction counted")
	}
	t.Logf("entries %d, nodes %d, drops %v", tn.reg.total, len(tn.nodes), tn.Stats().Drops)
}

// As registrant: a registrar's ticket with an absurd wait is not kept.
func TestInput_ticketTooFarIsDropped(t *testing.T) {
	tn := newTestNet(t, Config{})
	tn.adverts["whisper"] = &advert{topic: "whisper", registered: map[NodeID]mclock.AbsTime{}, tickets: map[NodeID]*timerItem{}}
	r := newRemote(t, "registrar", 40000)
	rec := tn.rec(Node{ID: PubkeyID(&r.key.PublicKey), IP: r.addr.Addr(), UDP: r.addr.Port(), TCP: r.addr.Port()}, true)
	tn.ping(rec)
	var ourPing *packet
	for _, p := range tn.conn.take(t) {
		if p.typ == pingPacket {
			ourPing = p
		}
	}
	topics := ourPing.data.(*ping).Topics
	tn.receive(r.addr, r.packet(t, pongPacket, &pong{ReplyTok: ourPing.hash[:], TopicHash: rlpHash(topics), WaitPeriods: []uint32{1 << 31}}))
	if tn.drops(dropTicketTooFar) != 1 || len(tn.adverts["whisper"].tickets) != 0 {
		t.Fatalf("far ticket kept: %v", tn.Stats().Drops)
	}
}

// Many nodes pinging: the node records stay within MaxNodes.
func TestInput_nodeRecordsAreBounded(t *testing.T) {
	tn := newTestNet(t, Config{Limits: Limits{MaxNodes: 100}})
	for i := 0; i < 400; i++ {
		r := newRemote(t, fmt.Sprint("n", i), uint16(20000+i))
		tn.receive(r.addr, r.ping(t, nil))
		tn.conn.take(t)
		tn.advance(time.Second) // ping timeouts free the records
	}
	if len(tn.nodes) > 100 {
		t.Fatalf("%d node records, limit 100", len(tn.nodes))
	}
}
