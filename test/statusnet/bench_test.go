package statusnet_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/benchsamples"
	"github.com/statusgate/statusgate/test/statusnet"
)

// propagationInterval paces the posts: 40 messages per second, a busy public chat, below
// eager forwarding's default packet budget (50 per second per peer), so the figures are
// latencies, not a queue.
const propagationInterval = 25 * time.Millisecond

// BenchmarkPropagation10 measures how long messages take along a line of ten of our
// nodes over real RLPx on loopback, in both forwarding modes in one run: "periodic" is
// geth's pace (each hop waits for the sender's next 300 ms transmission cycle), "eager"
// ours (a hop sends as soon as an envelope is pooled, within the coalescing window and
// the packet budget). b.N signed messages (PoW 0.002) are posted on the first node every
// propagationInterval; every node subscribes, and each arrival is timed. Reported: the
// distribution over all messages of one hop (subscription on node k to subscription on
// node k+1, all nine hops pooled: hop-p50-ms, hop-p99-ms) and of the whole line (Post
// returning on node 0 to the subscription on node 9: p50-ms, p99-ms).
func BenchmarkPropagation10(b *testing.B) {
	for _, mode := range []struct {
		name     string
		periodic bool
	}{{"periodic", true}, {"eager", false}} {
		b.Run(mode.name, func(b *testing.B) { propagation(b, mode.periodic) })
	}
}

func propagation(b *testing.B, periodic bool) {
	const k = 10
	nodes := statusnet.NewNodes(b, k, node.Config{Whisper: whisper.Config{PeriodicOnly: periodic}})
	statusnet.Line(b, nodes)
	topic := whisper.TopicFromName("status")
	sym, err := whisper.SymKeyFromPassword("status")
	if err != nil {
		b.Fatal(err)
	}
	alice, err := crypto.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}

	// arrived[n][i] is when message i reached node n's subscription; each reader owns its
	// row until wg is done.
	arrived := make([][]time.Time, k)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), statusnet.WaitTimeout+time.Duration(b.N)*propagationInterval)
	defer cancel()
	for n, nd := range nodes {
		sub, err := nd.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Unsubscribe()
		arrived[n] = make([]time.Time, b.N)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got := 0; got < b.N; {
				select {
				case m := <-sub.C():
					i, err := strconv.Atoi(strings.TrimPrefix(string(m.Payload), "message "))
					if err != nil || i >= b.N || !arrived[n][i].IsZero() {
						b.Errorf("node %d: unexpected message %q", n, m.Payload)
						return
					}
					arrived[n][i] = time.Now()
					got++
				case <-ctx.Done():
					b.Errorf("node %d: %d of %d messages arrived", n, got, b.N)
					return
				}
			}
		}()
	}

	posted := make([]time.Time, b.N)
	pace := time.NewTicker(propagationInterval)
	defer pace.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: topic, KeySym: sym, Src: alice,
			Payload: []byte(fmt.Sprint("message ", i)), TTL: 60, PoW: 0.002, WorkTime: 5 * time.Second}); err != nil {
			b.Fatal(err)
		}
		posted[i] = time.Now()
		<-pace.C
	}
	wg.Wait()
	b.StopTimer()
	if b.Failed() {
		return
	}

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	line := make([]float64, b.N)
	hops := make([]float64, 0, b.N*(k-1))
	for i := range b.N {
		line[i] = ms(arrived[k-1][i].Sub(posted[i]))
		for n := 0; n+1 < k; n++ {
			hops = append(hops, ms(arrived[n+1][i].Sub(arrived[n][i])))
		}
	}
	benchsamples.Save(b, "hop-ms", hops)
	benchsamples.Save(b, "line-ms", line)
	b.ReportMetric(benchsamples.Quantile(hops, 0.50), "hop-p50-ms")
	b.ReportMetric(benchsamples.Quantile(hops, 0.99), "hop-p99-ms")
	b.ReportMetric(benchsamples.Quantile(line, 0.50), "p50-ms")
	b.ReportMetric(benchsamples.Quantile(line, 0.99), "p99-ms")
}
