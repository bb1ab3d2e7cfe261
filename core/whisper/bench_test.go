package whisper

import (
	"fmt"
	"testing"
	"time"
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
