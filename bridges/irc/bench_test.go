package irc

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/test/ircd"
)

// BenchmarkIRC_Send measures Status → IRC through the connector: b.N Sends, one after
// another as the outbox makes them, to a real ngircd (penalties off) with the token
// bucket wide open, so what is left is the connector's own cost (shaping, the queue,
// girc's writer) and the server's relay. An IRC user in the channel receives every
// line; the timer stops when the last one arrived.
//
// Metrics: msg/s delivered (to the user, not just written), p50-ms and p99-ms from the
// start of Send to the user's receipt of the line. allocs/op counts the whole process,
// so it includes the user's girc client reading the line. The latency is under load:
// b.N lines queue in girc's writer and the server. BenchmarkIRC_SendPaced waits for
// each line before the next Send, for the latency of one message on a quiet channel.
func BenchmarkIRC_Send(b *testing.B) { benchSend(b, false) }

// BenchmarkIRC_SendPaced is BenchmarkIRC_Send one message at a time.
func BenchmarkIRC_SendPaced(b *testing.B) { benchSend(b, true) }

func benchSend(b *testing.B, paced bool) {
	srv := ircd.Start(b, ircd.Options{})
	hum := startHuman(b, srv, "human")
	cfg := testConfig(srv)
	cfg.FloodRate, cfg.FloodBurst = 1e6, 1e6
	c, _ := startConnector(b, cfg)
	ch, err := c.ChannelID(testChannel)
	if err != nil {
		b.Fatal(err)
	}
	// Warm up: one line through, so the first measured one pays no handshake.
	if _, err := c.Send(context.Background(), outbound(b, c, bridges.KindMessage, "alice", "warm", 0)); err != nil {
		b.Fatal(err)
	}
	hum.next(b, 1)

	sent := make([]time.Time, b.N)
	got := make([]time.Time, b.N)
	done := make(chan int, 1)      // the number received, when all arrived or on a stray line
	each := make(chan struct{}, 1) // a token per line received, for paced runs
	go func() {
		for n := 0; n < b.N; n++ {
			l := <-hum.lines
			i, err := strconv.Atoi(strings.TrimPrefix(l.text, "<alice> m"))
			if err != nil || i < 0 || i >= b.N || !got[i].IsZero() {
				done <- n
				return
			}
			got[i] = time.Now()
			if paced {
				each <- struct{}{}
			}
		}
		done <- b.N
	}()
	outs := make([]bridges.Outbound, b.N)
	for i := range outs {
		outs[i] = bridges.Outbound{
			Event: bridges.Event{Kind: bridges.KindMessage,
				Origin: bridges.Origin{Network: "status", Channel: "status:chat", ID: bridges.RemoteMsgID("status:m" + strconv.Itoa(i))},
				Sender: bridges.Sender{ID: "status:0xabc", Name: "alice"}, Text: "m" + strconv.Itoa(i)},
			Channel: ch, Key: "bench-" + strconv.Itoa(i), // not the warm-up's "k0": a key posted once is not posted again
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range outs {
		sent[i] = time.Now()
		if _, err := c.Send(ctx, outs[i]); err != nil {
			b.Fatal(err)
		}
		if paced {
			select {
			case <-each:
			case <-time.After(wait):
				b.Fatalf("line %d not received within %s", i, wait)
			}
		}
	}
	select {
	case n := <-done:
		if n != b.N {
			b.Fatalf("the IRC user received %d of %d lines, then a stray or repeated one", n, b.N)
		}
	case <-time.After(wait + time.Duration(b.N)*time.Millisecond):
		b.Fatalf("the IRC user did not receive all %d lines", b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	lat := make([]float64, b.N)
	for i := range lat {
		lat[i] = float64(got[i].Sub(sent[i])) / float64(time.Millisecond)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
}
