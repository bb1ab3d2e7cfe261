package discv5

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// FuzzPacket feeds datagrams through the real receive path (authenticate, then the loop's
// handler) of a node that has bonded with the sender. A first byte of 0 sends the rest
// as is (the decoder's checks); otherwise the rest is a type byte and a body that the
// bonded sender signs, so that the handlers see every kind of well-signed nonsense.
func FuzzPacket(f *testing.F) {
	r := newRemote(f, "fuzz", 40000)
	seed := func(typ byte, body any) {
		raw := r.packet(f, typ, body)
		f.Add(append([]byte{0}, raw...))
		f.Add(append([]byte{1}, raw[headSize:]...))
	}
	exp := uint64(time.Now().Add(time.Hour).Unix())
	seed(pingPacket, &ping{Version: 4, Expiration: exp, Topics: []Topic{"whisper"}})
	seed(pongPacket, &pong{WaitPeriods: []uint32{60}})
	seed(findnodePacket, &findnode{Expiration: exp})
	seed(findnodeHashPacket, &findnodeHash{Expiration: exp})
	seed(neighborsPacket, &neighbors{Nodes: []rpcNode{{IP: []byte{127, 0, 0, 1}, UDP: 30303, TCP: 30303}}, Expiration: exp})
	seed(topicRegisterPacket, &topicRegister{Topics: []Topic{"whisper"}, Pong: []byte{1, 2, 3}})
	seed(topicQueryPacket, &topicQuery{Topic: "whisper"})
	seed(topicNodesPacket, &topicNodes{Nodes: []rpcNode{{IP: []byte{0, 0, 0, 0}, UDP: 30303, TCP: 30303}}})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > MaxPacketSize {
			return
		}
		tn := newTestNet(t, Config{MinWaitPeriod: time.Second})
		tn.adverts["whisper"] = &advert{topic: "whisper", registered: map[NodeID]mclock.AbsTime{}, tickets: map[NodeID]*timerItem{}}
		tn.bond(t, r, []Topic{"whisper"})
		raw := data[1:]
		if data[0] != 0 && len(raw) > 0 {
			raw = r.packet(t, raw[0], rawBody(raw[1:]))
		}
		tn.receive(r.addr, raw)
		tn.receive(netip.MustParseAddrPort("10.0.0.1:5000"), raw)
		tn.advance(time.Minute)
	})
}

// rawBody encodes as the bytes themselves (not as an RLP string), so the fuzzer controls
// the body exactly.
type rawBody []byte

func (b rawBody) EncodeRLP(w io.Writer) error {
	_, err := w.Write(b)
	return err
}
