package statusnet_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// BenchmarkPropagation10 measures how long a message takes from a post on the first node
// of a line of ten to the subscription on the last, over real RLPx on loopback: nine hops,
// each waiting for the sender's next 300 ms transmission cycle (the protocol's pace, as in
// geth), so expect about 9 × 150 ms on average.
func BenchmarkPropagation10(b *testing.B) {
	nodes := statusnet.NewNodes(b, 10, node.Config{})
	statusnet.Line(b, nodes)
	topic := whisper.TopicFromName("status")
	sym, err := whisper.SymKeyFromPassword("status")
	if err != nil {
		b.Fatal(err)
	}
	sub, err := nodes[9].Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	alice, err := crypto.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		text := fmt.Sprint("message ", i)
		if _, err := nodes[0].Post(context.Background(), &whisper.MessageParams{Topic: topic, KeySym: sym, Src: alice,
			Payload: []byte(text), TTL: 60, PoW: 0.002, WorkTime: 5 * time.Second}); err != nil {
			b.Fatal(err)
		}
		select {
		case m := <-sub.C():
			if string(m.Payload) != text {
				b.Fatalf("got %q, want %q", m.Payload, text)
			}
		case <-time.After(statusnet.WaitTimeout):
			b.Fatal("message did not cross the line")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/message")
}
