package waku

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

// The Waku benchmarks beside core/whisper's: IngestWaku is whisper's Ingest with the
// envelopes arriving on a waku/1 peer, and Relay measures one node carrying envelopes
// from a peer of one protocol to a peer of the same or the other (the generation
// bridge). `make bench` runs them with core/whisper's.

const (
	benchChats     = 100
	benchTTL       = 300
	benchPerPacket = 64
	benchTimeout   = 60 * time.Second
)

type benchFixture struct {
	alice  *ecdsa.PrivateKey
	topics [benchChats]whisper.Topic
	keys   [benchChats]*whisper.SymKey
	// data holds benchVariants signed messages per chat: no signature repeats within
	// 2 × whisper.SignerCacheSize envelopes, so the node's signer cache never answers
	// (real traffic does not repeat signatures; see core/whisper's Ingest).
	data [benchChats][benchVariants][]byte
}

const benchVariants = 2*whisper.SignerCacheSize/benchChats + 1

var (
	benchOnce sync.Once
	benchFx   *benchFixture
	benchErr  error
	// benchNonce is the first nonce of the next round, so no two envelopes of the
	// process share a hash. Benchmark rounds run one at a time.
	benchNonce uint64
)

// fixture is whisper's Ingest input: the chat-<i> topics and keys, and one signed,
// encrypted message of 256 bytes per chat whose Data every envelope reuses.
func fixture(b *testing.B) *benchFixture {
	b.Helper()
	benchOnce.Do(func() {
		fx := &benchFixture{}
		if fx.alice, benchErr = crypto.ToECDSA(crypto.Keccak256([]byte("alice"))); benchErr != nil {
			return
		}
		payload := bytes.Repeat([]byte{'x'}, 256)
		for i := range benchChats {
			name := fmt.Sprintf("chat-%d", i)
			fx.topics[i] = whisper.TopicFromName(name)
			if fx.keys[i], benchErr = whisper.SymKeyFromPassword(name); benchErr != nil {
				return
			}
			for v := range benchVariants {
				env, err := whisper.Wrap(&whisper.MessageParams{TTL: benchTTL, Src: fx.alice, KeySym: fx.keys[i], Topic: fx.topics[i], Payload: payload})
				if err != nil {
					benchErr = err
					return
				}
				fx.data[i][v] = env.Data()
			}
		}
		benchFx = fx
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFx
}

// packets builds b.N envelopes (round-robin over the chats) in code-1 packets.
func (fx *benchFixture) packets(b *testing.B) [][]byte {
	b.Helper()
	base := benchNonce
	benchNonce += uint64(b.N)
	now := uint32(time.Now().Unix())
	out := make([][]byte, 0, (b.N+benchPerPacket-1)/benchPerPacket)
	batch := make([]*whisper.Envelope, 0, benchPerPacket)
	for j := range b.N {
		env, err := whisper.NewEnvelope(now+benchTTL, benchTTL, fx.topics[j%benchChats], fx.data[j%benchChats][j/benchChats%benchVariants], base+uint64(j))
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, env)
		if len(batch) == benchPerPacket || j == b.N-1 {
			p, err := rlp.EncodeToBytes(batch)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, p)
			batch = batch[:0]
		}
	}
	return out
}

// unlimited are inbound limits that never drop (still applied), as geth has none.
var unlimited = whisper.PeerLimits{PacketsPerSecond: math.Inf(1), PacketBurst: math.MaxInt32,
	BytesPerSecond: math.Inf(1), ByteBurst: math.MaxInt32, SendPacketsPerSecond: math.Inf(1), SendPacketBurst: math.MaxInt32}

// benchPeer is a peer of wire w on a pipe to s, handshaken with a full-node status at
// PoW 0; handler errors go to done.
type benchPeer struct {
	rw   *p2p.MsgPipeRW
	done chan error
}

func connectBench(b *testing.B, s *whisper.Service, w whisper.Wire, id byte) *benchPeer {
	b.Helper()
	rwNode, rwPeer := p2p.MsgPipe()
	p := &benchPeer{rw: rwPeer, done: make(chan error, 1)}
	go func() {
		p.done <- s.RunPeerOn(w, whisper.WireConfig{Limits: unlimited}, p2p.NewPeer(enode.ID{id}, "bench", nil), rwNode)
	}()
	var status []byte
	var err error
	if w.Name() == Name {
		status, err = EncodeStatus(Options{PoW: ptr(0.0)}, w.Version())
	} else {
		status, err = whisper.EncodeStatus(whisper.Status{Bloom: whisper.FullBloom()})
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := rwPeer.WriteMsg(p2p.Msg{Code: 0, Size: uint32(len(status)), Payload: bytes.NewReader(status)}); err != nil {
		b.Fatalf("send status: %v", err)
	}
	msg, err := rwPeer.ReadMsg()
	if err != nil || msg.Code != 0 {
		b.Fatalf("read status: code %d, %v", msg.Code, err)
	}
	msg.Discard()
	return p
}

func (p *benchPeer) close() {
	p.rw.Close()
	<-p.done
}

func runService(b *testing.B, cfg whisper.Config) (*whisper.Service, func()) {
	b.Helper()
	s, err := whisper.NewService(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return s, func() { cancel(); <-done }
}

// BenchmarkIngestWaku is core/whisper's BenchmarkIngest with the envelopes arriving on
// a waku/1 peer: one envelope through a whole running node (decode, validate, pool,
// dispatch to 100 chat subscriptions, decrypt, verify the signature). The wire decides
// only the handshake, so it should cost what Ingest costs.
func BenchmarkIngestWaku(b *testing.B) {
	fx := fixture(b)
	packets := fx.packets(b)
	s, stop := runService(b, whisper.Config{Limits: unlimited})
	var got atomic.Int64
	all := make(chan struct{})
	var drain sync.WaitGroup
	defer func() {
		stop()
		drain.Wait() // Run closed the subscriptions
	}()
	want := int64(b.N)
	for i := range benchChats {
		sub, err := s.Subscribe(whisper.Filter{Topics: []whisper.Topic{fx.topics[i]}, SymKey: fx.keys[i]})
		if err != nil {
			b.Fatal(err)
		}
		drain.Add(1)
		go func() {
			defer drain.Done()
			for m := range sub.C() {
				if !m.Signed() {
					b.Error("unsigned message delivered")
				}
				if got.Add(1) == want {
					close(all)
				}
			}
		}()
	}
	p := connectBench(b, s, Wire(V1), 1)
	defer p.close()
	go discard(p.rw)

	b.ReportAllocs()
	b.ResetTimer()
	for _, pk := range packets {
		if err := p.rw.WriteMsg(p2p.Msg{Code: 1, Size: uint32(len(pk)), Payload: bytes.NewReader(pk)}); err != nil {
			b.Fatalf("write packet: %v", err)
		}
	}
	select {
	case <-all:
	case <-time.After(benchTimeout):
		b.Fatalf("timeout: %d of %d envelopes delivered", got.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// discard reads and drops whatever arrives on rw until it closes.
func discard(rw p2p.MsgReader) {
	for {
		msg, err := rw.ReadMsg()
		if err != nil {
			return
		}
		msg.Discard()
	}
}

// BenchmarkRelay is one envelope carried by a node from a peer of one protocol to a
// peer of another: b.N envelopes arrive on the first peer in packets of 64 (decode,
// validate, pool), and the timer stops when the second has received them all (eager
// forwarding, batching, the write). No subscription: only the relay. shh-waku and
// waku-shh are the generation bridge; shh-shh and waku-waku the same relay within one.
func BenchmarkRelay(b *testing.B) {
	wires := map[string]whisper.Wire{"shh": whisper.ShhWire(), "waku": Wire(V1)}
	for _, pair := range [][2]string{{"shh", "shh"}, {"shh", "waku"}, {"waku", "shh"}, {"waku", "waku"}} {
		b.Run(pair[0]+"-"+pair[1], func(b *testing.B) { relay(b, wires[pair[0]], wires[pair[1]]) })
	}
}

func relay(b *testing.B, from, to whisper.Wire) {
	fx := fixture(b)
	packets := fx.packets(b)
	s, stop := runService(b, whisper.Config{Limits: unlimited})
	defer stop()
	in := connectBench(b, s, from, 1)
	defer in.close()
	out := connectBench(b, s, to, 2)
	defer out.close()
	go discard(in.rw)
	var got atomic.Int64
	all := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			msg, err := out.rw.ReadMsg()
			if err != nil {
				return
			}
			if msg.Code == 1 {
				content, _, err := rlp.SplitList(mustRead(msg))
				if err == nil {
					if n, err := rlp.CountValues(content); err == nil && got.Add(int64(n)) >= int64(b.N) {
						select {
						case <-all:
						default:
							close(all)
						}
					}
				}
				continue
			}
			msg.Discard()
		}
	}()
	defer func() { out.rw.Close(); <-readDone }()

	b.ReportAllocs()
	b.ResetTimer()
	for _, pk := range packets {
		if err := in.rw.WriteMsg(p2p.Msg{Code: 1, Size: uint32(len(pk)), Payload: bytes.NewReader(pk)}); err != nil {
			b.Fatalf("write packet: %v", err)
		}
	}
	select {
	case <-all:
	case <-time.After(benchTimeout):
		b.Fatalf("timeout: %d of %d envelopes relayed", got.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

func mustRead(msg p2p.Msg) []byte {
	body := make([]byte, msg.Size)
	_, _ = io.ReadFull(msg.Payload, body)
	msg.Discard()
	return body
}
