package waku

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

// FuzzOptions: the option decoders of both versions never panic, every error is typed,
// and what they accept encodes back to options they decode the same.
func FuzzOptions(f *testing.F) {
	bloom := whisper.BloomOf(topicA)
	for _, o := range []Options{{}, {PoW: ptr(0.002), BloomFilter: &bloom, LightNode: ptr(true), Confirmations: ptr(false),
		PacketLimits: &whisper.RateLimits{IP: 1, PeerID: 2, Topic: 3}, ByteLimits: &whisper.RateLimits{PeerID: 4}},
		{TopicInterest: []whisper.Topic{topicA, topicB}, HasTopics: true}, {TopicInterest: []whisper.Topic{}, HasTopics: true}} {
		for _, v := range []uint{V0, V1} {
			b, _ := EncodeStatus(o, v)
			f.Add(uint8(v), true, b)
			b, _ = EncodeOptions(o, v)
			f.Add(uint8(v), false, b)
		}
	}
	f.Add(uint8(1), false, []byte{0xc4, 0xc3, 0x81, 0x00, 0x01})
	f.Add(uint8(1), false, []byte{0xc6, 0xc5, 0x05, 0xc3, 0x82, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, v uint8, status bool, body []byte) {
		ver := uint(v % 2)
		decode := func(b []byte) (Options, error) {
			if status {
				return DecodeStatus(b, ver)
			}
			return DecodeOptions(b, ver)
		}
		o, err := decode(body)
		if err != nil {
			for _, e := range []error{ErrOptionList, ErrDuplicateOption, ErrOptionType, ErrInvalidPoW, ErrTooManyTopics, ErrVersion} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("untyped error %v", err)
		}
		var again []byte
		if status {
			again, err = EncodeStatus(o, ver)
		} else {
			again, err = EncodeOptions(o, ver)
		}
		if err != nil {
			t.Fatalf("accepted %+v does not encode: %v", o, err)
		}
		if o.HasTopics {
			o.BloomFilter = nil // a topic interest takes precedence: only it is sent
		}
		o2, err := decode(again)
		if err != nil || !reflect.DeepEqual(o, o2) {
			t.Fatalf("round trip: %+v → %x → %+v (%v)", o, again, o2, err)
		}
	})
}

// A FuzzHandler input is a stream of packets, each framed as code (1 byte, mod 128),
// body length (2 bytes, big endian) and body, after a handshake of the fuzzer's
// choosing too.
const (
	fuzzMaxPackets = 16
	fuzzMaxMessage = 16 << 10
	fuzzHangAfter  = 10 * time.Second
)

type fuzzPacket struct {
	code uint64
	body []byte
}

func fuzzFrame(pkts ...fuzzPacket) []byte {
	var out []byte
	for _, p := range pkts {
		out = append(out, byte(p.code))
		out = binary.BigEndian.AppendUint16(out, uint16(len(p.body)))
		out = append(out, p.body...)
	}
	return out
}

func fuzzUnframe(stream []byte) []fuzzPacket {
	var pkts []fuzzPacket
	for len(stream) > 0 && len(pkts) < fuzzMaxPackets {
		code := uint64(stream[0] & 0x7f)
		stream = stream[1:]
		n := len(stream)
		if len(stream) >= 2 {
			n = min(int(binary.BigEndian.Uint16(stream)), len(stream)-2)
			stream = stream[2:]
		}
		pkts = append(pkts, fuzzPacket{code, stream[:n]})
		stream = stream[n:]
	}
	return pkts
}

// FuzzHandler drives the real Waku handler (whisper.Service.RunPeerOn with this
// package's wire, both versions) over a p2p.MsgPipe: the first packet (normally the
// handshake) and the ones after it come from the fuzzer. The service must neither panic
// nor hang: it either ends the connection with an error or keeps reading, which a last
// packet of an unused code proves.
func FuzzHandler(f *testing.F) {
	s := startService(f, whisper.Config{MaxMessageSize: fuzzMaxMessage, Confirmations: true, TopicBloom: true})
	key, err := whisper.SymKeyFromPassword("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	sub, err := s.Subscribe(whisper.Filter{Topics: []whisper.Topic{topicA}, SymKey: key, AllowP2P: true})
	if err != nil {
		f.Fatal(err)
	}
	go func() {
		for range sub.C() {
		}
	}()
	env := envelope(f, topicA, 64, 300, 0)
	other := envelope(f, topicB, 64, 300, 0)
	list, _ := rlp.EncodeToBytes([]*whisper.Envelope{env, other})
	pow := math.Float64bits(0.5)
	for _, v := range []uint8{0, 1} {
		ver := uint(v)
		status, _ := EncodeStatus(Options{PoW: ptr(0.0)}, ver)
		topicsStatus, _ := EncodeStatus(Options{TopicInterest: []whisper.Topic{topicA}, HasTopics: true}, ver)
		update, _ := EncodeOptions(Options{PoW: ptr(0.25), TopicInterest: []whisper.Topic{topicB}, HasTopics: true}, ver)
		bloomUpdate, _ := EncodeOptions(Options{BloomFilter: ptr(whisper.FullBloom())}, ver)
		f.Add(v, fuzzFrame(fuzzPacket{0, status}, fuzzPacket{1, list}))
		f.Add(v, fuzzFrame(fuzzPacket{0, topicsStatus}, fuzzPacket{statusUpdateCode, update}, fuzzPacket{1, list}))
		f.Add(v, fuzzFrame(fuzzPacket{0, status}, fuzzPacket{statusUpdateCode, bloomUpdate}, fuzzPacket{statusUpdateCode, []byte{0xc0}}))
		f.Add(v, fuzzFrame(fuzzPacket{0, status}, fuzzPacket{statusUpdateCode, enc(f, []any{[]any{0, pow}, []any{0, pow}})}))
		f.Add(v, fuzzFrame(fuzzPacket{statusUpdateCode, update}))
		f.Add(v, fuzzFrame(fuzzPacket{0, enc(f, []any{[]any{[]any{0, pow}}})}))
		f.Add(v, fuzzFrame(fuzzPacket{0, status}, fuzzPacket{126, env.Bytes()}, fuzzPacket{127, list}, fuzzPacket{125, []byte{0x80}}))
		f.Add(v, fuzzFrame(fuzzPacket{0, status}, fuzzPacket{2, enc(f, pow)}, fuzzPacket{3, enc(f, []byte{1})}))
	}
	f.Fuzz(func(t *testing.T, v uint8, stream []byte) {
		fuzzConnection(t, s, Wire(uint(v%2)), fuzzUnframe(stream))
	})
}

// fuzzConnection runs one connection: pkts, a liveness probe, close.
func fuzzConnection(t *testing.T, s *whisper.Service, w whisper.Wire, pkts []fuzzPacket) {
	id := enode.ID{1}
	rwNode, rwPeer := p2p.MsgPipe()
	peerDone := make(chan error, 1)
	go func() {
		peerDone <- s.RunPeerOn(w, whisper.WireConfig{}, p2p.NewPeerPipe(id, "fuzz", nil, rwNode), rwNode)
	}()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			msg, err := rwPeer.ReadMsg()
			if err != nil {
				return
			}
			msg.Discard()
		}
	}()
	const probeCode = 50 // no handler: read and ignored
	pkts = append(pkts, fuzzPacket{probeCode, []byte{0x80}})
	writeDone := make(chan error, 1)
	go func() {
		for _, p := range pkts {
			if err := rwPeer.WriteMsg(p2p.Msg{Code: p.code, Size: uint32(len(p.body)), Payload: bytes.NewReader(p.body)}); err != nil {
				writeDone <- err
				return
			}
		}
		writeDone <- nil
	}()
	var peerErr error
	peerEnded := false
	select {
	case <-writeDone:
	case peerErr = <-peerDone:
		peerEnded = true
		rwPeer.Close()
		<-writeDone
	case <-time.After(fuzzHangAfter):
		rwPeer.Close()
		t.Fatalf("handler hung: neither read all %d packets nor disconnected within %v", len(pkts), fuzzHangAfter)
	}
	rwPeer.Close()
	if !peerEnded {
		select {
		case peerErr = <-peerDone:
		case <-time.After(fuzzHangAfter):
			t.Fatalf("RunPeerOn did not return within %v of closing the pipe", fuzzHangAfter)
		}
	}
	<-readDone
	if peerErr == nil {
		t.Fatal("RunPeerOn returned nil")
	}
	if s.Peer(id) != nil {
		t.Fatal("peer still registered after RunPeerOn returned")
	}
}
