package whisper

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
)

// The workloads below are mirrored, input for input, by `whisper-ref bench` in
// test/reference (go-ethereum v1.9.20 whisperv6); `make bench` runs both and prints the
// ratio per benchmark name. Change one side only together with the other.

func benchPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

func benchWrap(b *testing.B, n int) {
	alice := keyOf(b, "alice")
	k := symKeyOf(b, "status")
	topic := TopicFromName("status")
	payload := benchPayload(n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Wrap(&MessageParams{TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second, Src: alice,
			KeySym: k, Topic: topic, Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrap256(b *testing.B) { benchWrap(b, 256) }
func BenchmarkWrap4K(b *testing.B)  { benchWrap(b, 4096) }

func benchSeal(b *testing.B, n int) {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i * 7)
	}
	e, err := NewEnvelope(1575000015, 15, TopicFromName("status"), data, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sealed *Envelope
	for i := 0; i < b.N; i++ {
		if sealed, err = e.Seal(SealOptions{PoW: 0.002, WorkTime: 5 * time.Second}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(sealed.Nonce()), "nonce")
}

func BenchmarkSeal256(b *testing.B) { benchSeal(b, 540) }
func BenchmarkSeal4K(b *testing.B)  { benchSeal(b, 4380) }

func BenchmarkOpenSym(b *testing.B) {
	k := symKeyOf(b, "status")
	env, err := Wrap(&MessageParams{TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second, Src: keyOf(b, "alice"),
		KeySym: k, Topic: TopicFromName("status"), Payload: benchPayload(256)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := env.OpenSymmetric(k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSymAgain is OpenSym for an envelope this node opened before (a
// mailserver's copy of one that came live, our own post read back): "recover" recovers
// its signer again, as every opening did before the Service's Signers; "remembered"
// opens it through Signers that already hold the answer (decryption and keccak remain).
func BenchmarkOpenSymAgain(b *testing.B) {
	k := symKeyOf(b, "status")
	env, err := Wrap(&MessageParams{TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second, Src: keyOf(b, "alice"),
		KeySym: k, Topic: TopicFromName("status"), Payload: benchPayload(256)})
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name    string
		signers *Signers
	}{{"recover", nil}, {"remembered", NewSigners(SignerCacheSize)}} {
		b.Run(v.name, func(b *testing.B) {
			if _, err := env.openSymmetric(k, v.signers, false); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := env.openSymmetric(k, v.signers, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenAsym(b *testing.B) {
	bob := keyOf(b, "bob")
	env, err := Wrap(&MessageParams{TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second, Src: keyOf(b, "alice"),
		Dst: &bob.PublicKey, Topic: TopicFromName("status"), Payload: benchPayload(256)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := env.OpenAsymmetric(bob); err != nil {
			b.Fatal(err)
		}
	}
}

var bloomSink bool

func BenchmarkBloomMatch(b *testing.B) {
	var filter Bloom
	for i := 0; i < 100; i++ {
		filter.Add(TopicFromName(fmt.Sprintf("chat-%d", i)))
	}
	sample := TopicToBloom(TopicFromName("chat-50"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bloomSink = filter.Matches(&sample)
	}
	if !bloomSink {
		b.Fatal("no match")
	}
}

func BenchmarkFilterDispatch100(b *testing.B) {
	fs := NewFilters()
	var k42 *SymKey
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("chat-%d", i)
		k := symKeyOf(b, name)
		if i == 42 {
			k42 = k
		}
		if _, err := fs.Install(Filter{Topics: []Topic{TopicFromName(name)}, SymKey: k}); err != nil {
			b.Fatal(err)
		}
	}
	env, err := Wrap(&MessageParams{TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second, Src: keyOf(b, "alice"),
		KeySym: k42, Topic: TopicFromName("chat-42"), Payload: benchPayload(256)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m := fs.Match(env, false); len(m) != 1 {
			b.Fatalf("%d matches", len(m))
		}
	}
}

// BenchmarkDecodeEnvelope has no reference twin: geth decodes through reflection-based
// rlp and hashes the same bytes; it is here to watch our own ingest cost.
func BenchmarkDecodeEnvelope(b *testing.B) {
	env, err := Wrap(&MessageParams{TTL: 15, KeySym: symKeyOf(b, "status"), Topic: TopicFromName("status"), Payload: benchPayload(256)})
	if err != nil {
		b.Fatal(err)
	}
	raw := env.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeEnvelope(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// Ingest: ingestChats public chats, envelopes of TTL ingestTTL sent in code-1 packets of
// ingestPerPacket, as in test/reference/bench.go.
const (
	ingestChats     = 100
	ingestTTL       = 300
	ingestPerPacket = 64
	ingestTimeout   = 60 * time.Second // for all b.N deliveries
)

// ingestFixture is Ingest's input, built once per process (deriving 100 PBKDF2 keys takes
// about a second): the chat-<i> topics and keys, and the encrypted, signed Data of one
// message per chat, which every round's envelopes reuse.
type ingestFixture struct {
	alice  *ecdsa.PrivateKey
	topics [ingestChats]Topic
	keys   [ingestChats]*SymKey
	// data holds ingestVariants signed messages per chat, so that no signature repeats
	// within 2 × SignerCacheSize envelopes: the Service remembers recovered signers
	// (Signers), and a fixture cycling through 100 messages would measure its cache,
	// not a recovery per envelope as real traffic needs (and as geth's twin, which
	// cycles through 100, does for each).
	data [ingestChats][ingestVariants][]byte
}

// ingestVariants is how many distinct signed messages each chat's envelopes cycle
// through: ingestChats × ingestVariants > 2 × SignerCacheSize, so the LRU never answers.
const ingestVariants = 2*SignerCacheSize/ingestChats + 1

var (
	ingestOnce sync.Once
	ingestFx   *ingestFixture
	ingestErr  error
	// ingestNonce is the first nonce of the next round: each round takes
	// [ingestNonce, ingestNonce+b.N), so no two envelopes of the process share a hash.
	// Benchmark rounds run one at a time.
	ingestNonce uint64
)

func ingestFixtures(b *testing.B) *ingestFixture {
	b.Helper()
	ingestOnce.Do(func() {
		fx := &ingestFixture{}
		if fx.alice, ingestErr = crypto.ToECDSA(crypto.Keccak256([]byte("alice"))); ingestErr != nil {
			return
		}
		for i := range ingestChats {
			name := fmt.Sprintf("chat-%d", i)
			fx.topics[i] = TopicFromName(name)
			if fx.keys[i], ingestErr = SymKeyFromPassword(name); ingestErr != nil {
				return
			}
			for v := range ingestVariants {
				env, err := Wrap(&MessageParams{TTL: ingestTTL, PoW: 0, Src: fx.alice, KeySym: fx.keys[i],
					Topic: fx.topics[i], Payload: benchPayload(256)})
				if err != nil {
					ingestErr = err
					return
				}
				if v == 0 {
					if _, err := env.OpenSymmetric(fx.keys[i]); err != nil {
						ingestErr = fmt.Errorf("chat-%d: setup envelope does not open: %w", i, err)
						return
					}
				}
				fx.data[i][v] = env.Data()
			}
		}
		ingestFx = fx
	})
	if ingestErr != nil {
		b.Fatal(ingestErr)
	}
	return ingestFx
}

// BenchmarkIngest is one envelope through a whole running Service, fed by a peer over
// p2p.MsgPipe: decode, validate, pool, bloom, dispatch to 100 chat subscriptions,
// decrypt, verify the signature. Each round runs a fresh service, outside the timer.
//
// geth's filters store opened messages in a map without ever blocking its workers, and
// the reference retrieves them after writing everything. Our subscriptions instead block
// a worker while their buffer (Config.QueueSize, 1024 = geth's messageQueueLimit) is
// full, so writing b.N envelopes before reading any would deadlock. Rather than enlarge
// QueueSize (it also sizes the peers-to-workers queue, which must stay geth's 1024 for the
// same backpressure on the peer), one goroutine per subscription drains and counts, the
// equivalent of geth's map store; the timed part ends when all b.N have arrived.
//
// geth v1.9.20 has no inbound rate limits; ours are set to unlimited (but still applied),
// or the default burst of 200 packets would drop most packets of a large b.N.
func BenchmarkIngest(b *testing.B) {
	fx := ingestFixtures(b)
	nonceBase := ingestNonce
	ingestNonce += uint64(b.N)

	s, err := NewService(Config{MinPoW: 0, Limits: PeerLimits{
		PacketsPerSecond: math.Inf(1), PacketBurst: math.MaxInt32,
		BytesPerSecond: math.Inf(1), ByteBurst: math.MaxInt32,
	}})
	if err != nil {
		b.Fatal(err)
	}
	// One goroutine per subscription counts deliveries; all is closed at the b.N-th.
	var (
		got     atomic.Int64
		sample  atomic.Pointer[ReceivedMessage]
		all     = make(chan struct{})
		drainWG sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	defer func() { // after the peer's teardown below: deferred calls run last-in first-out
		cancel()
		<-runDone
		drainWG.Wait() // Run closed the subscriptions
	}()

	want := int64(b.N)
	for i := range ingestChats {
		sub, err := s.Subscribe(Filter{Topics: []Topic{fx.topics[i]}, SymKey: fx.keys[i]})
		if err != nil {
			b.Fatal(err)
		}
		drainWG.Add(1)
		go func() {
			defer drainWG.Done()
			for m := range sub.C() { // closed when Run returns
				sample.CompareAndSwap(nil, m)
				if got.Add(1) == want {
					close(all)
				}
			}
		}()
	}

	now := uint32(time.Now().Unix())
	packets := make([][]byte, 0, (b.N+ingestPerPacket-1)/ingestPerPacket)
	batch := make([]*Envelope, 0, ingestPerPacket)
	for j := range b.N {
		env, err := NewEnvelope(now+ingestTTL, ingestTTL, fx.topics[j%ingestChats], fx.data[j%ingestChats][j/ingestChats%ingestVariants], nonceBase+uint64(j))
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, env)
		if len(batch) == ingestPerPacket || j == b.N-1 {
			p, err := rlp.EncodeToBytes(batch)
			if err != nil {
				b.Fatal(err)
			}
			packets = append(packets, p)
			batch = batch[:0]
		}
	}

	// The node side of the pipe is rwNode; closing either end closes both.
	rwNode, rwPeer := p2p.MsgPipe()
	peerDone := make(chan error, 1)
	go func() { peerDone <- s.RunPeer(p2p.NewPeer(enode.ID{1}, "bench", nil), rwNode) }()
	drained := make(chan struct{})
	defer func() {
		rwPeer.Close()
		<-peerDone
		<-drained
	}()

	// Handshake as the remote peer, with geth's four-item status; then read ours.
	status, err := rlp.EncodeToBytes([]any{ProtocolVersion, math.Float64bits(0), fullBloomBytes(), false})
	if err != nil {
		close(drained)
		b.Fatal(err)
	}
	if err := rwPeer.WriteMsg(p2p.Msg{Code: statusCode, Size: uint32(len(status)), Payload: bytes.NewReader(status)}); err != nil {
		close(drained)
		b.Fatalf("send status: %v", err)
	}
	msg, err := rwPeer.ReadMsg()
	if err != nil || msg.Code != statusCode {
		close(drained)
		b.Fatalf("read status: code %d, %v", msg.Code, err)
	}
	msg.Discard()
	// Drain whatever the node sends (its broadcasts) so it never blocks.
	go func() {
		defer close(drained)
		for {
			msg, err := rwPeer.ReadMsg()
			if err != nil {
				return
			}
			msg.Discard()
		}
	}()

	b.ReportAllocs()
	b.ResetTimer()
	for _, p := range packets {
		if err := rwPeer.WriteMsg(p2p.Msg{Code: messagesCode, Size: uint32(len(p)), Payload: bytes.NewReader(p)}); err != nil {
			b.Fatalf("write packet: %v", err)
		}
	}
	select {
	case <-all:
	case <-time.After(ingestTimeout):
		b.Fatalf("timeout: %d of %d envelopes delivered after %v", got.Load(), b.N, ingestTimeout)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")

	m := sample.Load()
	if !m.Signed() || !m.Src.Equal(&fx.alice.PublicKey) {
		b.Fatal("delivered message is not signed by alice")
	}
	if !bytes.Equal(m.Payload, benchPayload(256)) {
		b.Fatal("delivered message has the wrong payload")
	}
}

func fullBloomBytes() []byte {
	full := FullBloom()
	return full[:]
}

// BenchmarkIngestFloor is the floor under Ingest: one libsecp256k1 signer recovery per
// op (what every signed envelope costs a decrypting worker, and the largest part of
// Ingest), on every core at once (b.RunParallel, GOMAXPROCS goroutines), as Ingest's
// workers run. `make bench` prints Ingest / IngestFloor: how far one envelope through a
// whole node is above the cost it cannot avoid. No reference twin.
func BenchmarkIngestFloor(b *testing.B) {
	key, err := crypto.ToECDSA(crypto.Keccak256([]byte("alice")))
	if err != nil {
		b.Fatal(err)
	}
	hash := crypto.Keccak256(benchPayload(256))
	sig, err := crypto.Sign(hash, key)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := crypto.Ecrecover(hash, sig); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPoolMemory is the memory one pooled envelope costs: b.N envelopes of a
// Status chat message's size (a 256-byte payload, signed and padded: 540 bytes of Data)
// are decoded from code-1 packets of 64, as a peer delivers them, and pooled. The
// packets' bytes are already on the heap before the clock starts (the envelopes keep
// them), so the growth of the Go heap after GC, per envelope, is the pool's overhead
// beyond the envelope's own bytes (overhead-B/env: the Envelope, its pool entry, the
// hash map and the heaps); size-B/env is the envelope's Size. No reference twin.
func BenchmarkPoolMemory(b *testing.B) {
	b.ReportAllocs()
	p := newPool(math.MaxInt)
	data := make([]byte, 540)
	now := uint32(time.Now().Unix())
	bodies := make([][]byte, 0, b.N/64+1)
	batch := make([]*Envelope, 0, 64)
	for j := range b.N {
		env, err := NewEnvelope(now+300, 300, TopicFromName("status"), data, uint64(j))
		if err != nil {
			b.Fatal(err)
		}
		if batch = append(batch, env); len(batch) == 64 || j == b.N-1 {
			body, err := rlp.EncodeToBytes(batch)
			if err != nil {
				b.Fatal(err)
			}
			bodies = append(bodies, body)
			batch = batch[:0]
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var peer enode.ID
	size := 0
	for i, body := range bodies {
		envs, err := decodeEnvelopeList(body)
		if err != nil {
			b.Fatal(err)
		}
		peer[0] = byte(i % 25) // 25 peers' shares, as with a full peer set
		for _, env := range envs {
			size += env.Size()
			if res, _ := p.add(env, 1, peer, false, 1); res != poolAdded {
				b.Fatalf("pool refused an envelope: %v", res)
			}
		}
		bodies[i] = nil // the pool's envelopes keep what they need of the packet
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "overhead-B/env")
	b.ReportMetric(float64(size)/float64(b.N), "size-B/env")
	runtime.KeepAlive(p)
}
