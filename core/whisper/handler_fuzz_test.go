package whisper

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
)

// A FuzzHandler input is a stream of packets, each framed as code (1 byte, taken mod
// 128), body length (2 bytes, big endian) and body; a short last frame takes what is left.
const (
	fuzzMaxPackets = 16
	fuzzMaxMessage = 16 << 10 // the service's MaxMessageSize, so that oversize packets are reachable
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

// fuzzRequests and fuzzCompletions stand in for the mailserver; an empty request is an
// error, so the handler's disconnect path for codes 126 is reachable too.
type fuzzRequests struct{}

func (fuzzRequests) HandleRequest(_ *Peer, payload []byte) error {
	if len(payload) == 0 {
		return errors.New("empty request")
	}
	return nil
}

type fuzzCompletions struct{}

func (fuzzCompletions) HandleRequestComplete(*Peer, []byte) {}

// fuzzSyncs stands in for the mailserver's sync side; an empty request disconnects.
type fuzzSyncs struct{}

func (fuzzSyncs) HandleSyncRequest(_ *Peer, payload []byte) error {
	if len(payload) == 0 {
		return errors.New("empty sync request")
	}
	return nil
}

func (fuzzSyncs) HandleSyncResponse(*Peer, []byte) {}

type fuzzArchiver struct{}

func (fuzzArchiver) Archive(*Envelope) {}

// FuzzHandler drives the real shh/6 handler (RunPeer) over a p2p.MsgPipe: a valid status,
// then packets whose codes and bodies come from the fuzzer. The service must neither
// panic nor hang: RunPeer either returns an error (a disconnect) or keeps reading, which
// a final packet of an unused code proves. One service serves every iteration; each
// iteration is its own connection, whose goroutines have all ended when it returns.
func FuzzHandler(f *testing.F) {
	s := startService(f, Config{
		MaxMessageSize: fuzzMaxMessage,
		MaxPoolBytes:   4 << 20, // small enough for the pool-full path
		Confirmations:  true,    // codes 11 and 12 go back after every code-1 packet
		Requests:       fuzzRequests{},
		Completions:    fuzzCompletions{},
		Archiver:       fuzzArchiver{},
		Syncs:          fuzzSyncs{},
	})
	trustedID, untrustedID := enode.ID{1}, enode.ID{2}
	s.MarkTrusted(trustedID)
	// A subscription (allowing direct delivery) so that dispatch decrypts, drained for the
	// life of the service so that the workers never block on it.
	sub, err := s.Subscribe(Filter{Topics: []Topic{TopicFromName("status")}, SymKey: symKeyOf(f, "status"), AllowP2P: true})
	if err != nil {
		f.Fatal(err)
	}
	go func() {
		for range sub.C() {
		}
	}()

	now := time.Now()
	env := testEnvelope(f, "status", "hello", 0, 300, now)
	env2 := testEnvelope(f, "status", "again", 0, 300, now)
	old := testEnvelope(f, "status", "old", 0, 15, now.Add(-time.Hour))
	future := testEnvelope(f, "status", "future", 0, 15, now.Add(time.Hour))
	list := func(envs ...*Envelope) []byte {
		b, err := rlp.EncodeToBytes(envs)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	full := FullBloom()
	bloomBody, _ := rlp.EncodeToBytes(full[:])
	shortBloom, _ := rlp.EncodeToBytes(full[:10])
	status, err := EncodeStatus(Status{Bloom: full})
	if err != nil {
		f.Fatal(err)
	}
	hash, _ := rlp.EncodeToBytes(env.Hash())
	response, _ := rlp.EncodeToBytes([]any{uint(1), []any{env.Hash(), []any{[]any{env.Hash(), uint(36), "very old envelope"}}}})
	limits, _ := rlp.EncodeToBytes([]uint64{10, 20, 30})
	one := func(code uint64, body []byte) []byte { return fuzzFrame(fuzzPacket{code, body}) }

	for _, trusted := range []bool{false, true} {
		f.Add(trusted, one(messagesCode, list(env)))
		f.Add(trusted, fuzzFrame(fuzzPacket{messagesCode, list(env, env2)}, fuzzPacket{messagesCode, list(env)}))
		f.Add(trusted, one(messagesCode, list(old, env2)))
		f.Add(trusted, one(messagesCode, list(future)))
		f.Add(trusted, one(p2pMessageCode, env.Bytes()))
		f.Add(trusted, one(p2pMessageCode, list(env, env2)))
		f.Add(trusted, one(p2pMessageCode, []byte{0xc0}))
		f.Add(trusted, one(p2pMessageCode, []byte{0xc1, 0x80})) // one malformed envelope: once a nil envelope on the queue
		f.Add(trusted, one(p2pRequestCode, env.Bytes()))
		f.Add(trusted, one(p2pRequestCode, nil))
		f.Add(trusted, one(p2pRequestCompleteCode, hash))
		syncReq, _ := rlp.EncodeToBytes([]any{uint32(1), uint32(2), full[:], uint32(10), []byte{}})
		f.Add(trusted, one(p2pSyncRequestCode, syncReq))
		f.Add(trusted, one(p2pSyncRequestCode, nil))
		syncResp, _ := rlp.EncodeToBytes([]any{[]*Envelope{env}, []byte{}, true, ""})
		f.Add(trusted, one(p2pSyncResponseCode, syncResp))
	}
	f.Add(false, one(powRequirementCode, powBits(0.5)))
	f.Add(false, one(powRequirementCode, powBits(math.NaN())))
	f.Add(false, one(powRequirementCode, []byte{0xc0}))
	f.Add(false, one(bloomFilterExCode, bloomBody))
	f.Add(false, one(bloomFilterExCode, shortBloom))
	f.Add(false, fuzzFrame(fuzzPacket{bloomFilterExCode, bloomBody}, fuzzPacket{powRequirementCode, powBits(0)}, fuzzPacket{messagesCode, list(env2)}))
	f.Add(false, one(batchAcknowledgedCode, hash))
	f.Add(false, one(messageResponseCode, response))
	f.Add(false, one(rateLimitingCode, limits))
	f.Add(false, one(statusCode, status))
	f.Add(false, one(50, []byte("unknown code")))
	// Malformed code-1 packets: empty list, not a list, truncated, trailing bytes, a bad
	// element, and a list header claiming more than the packet holds.
	f.Add(false, one(messagesCode, []byte{0xc0}))
	f.Add(false, one(messagesCode, []byte{0x80}))
	f.Add(false, one(messagesCode, list(env)[:40]))
	f.Add(false, one(messagesCode, append(list(env), 0x01)))
	f.Add(false, one(messagesCode, []byte{0xc6, 0xc5, 0x01, 0x02, 0x80, 0x80, 0x80}))
	f.Add(false, one(messagesCode, []byte{0xf9, 0xff, 0xff, 0xc0}))
	f.Add(false, one(messagesCode, bytes.Repeat([]byte{0xc0}, fuzzMaxMessage+1)))

	f.Fuzz(func(t *testing.T, trusted bool, stream []byte) {
		id := untrustedID
		if trusted {
			id = trustedID
		}
		fuzzConnection(t, s, id, status, fuzzUnframe(stream))
	})
}

// fuzzConnection runs one peer connection: handshake, pkts, a liveness probe, close.
func fuzzConnection(t *testing.T, s *Service, id enode.ID, status []byte, pkts []fuzzPacket) {
	rwNode, rwPeer := p2p.MsgPipe()
	peerDone := make(chan error, 1)
	go func() { peerDone <- s.RunPeer(p2p.NewPeerPipe(id, "fuzz", nil, rwNode), rwNode) }()
	// Read everything the node sends: its status, confirmations, settings, broadcasts.
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
	// A disconnect leaves nobody reading rwNode; the writer stops at the closed pipe.
	pkts = append([]fuzzPacket{{statusCode, status}}, pkts...)
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
	case <-writeDone: // every packet, the probe included, was read: still serving
	case peerErr = <-peerDone: // disconnected
		peerEnded = true
		rwPeer.Close() // releases a write the handler will never read
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
			t.Fatalf("RunPeer did not return within %v of closing the pipe", fuzzHangAfter)
		}
	}
	<-readDone
	if peerErr == nil {
		t.Fatal("RunPeer returned nil")
	}
	if s.Peer(id) != nil {
		t.Fatal("peer still registered after RunPeer returned")
	}
}
