package matrix

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
)

// BenchmarkMatrix_Send measures Status → Matrix through the connector against a real
// Dendrite (test/homeserver, SQLite, -ci config: no rate limits): b.N Sends one after
// another, as the gateway's outbox makes them, from 10 Status authors (ghosts
// registered, joined and named during warm-up). A Send returns when the homeserver
// has accepted and persisted the event, so the figures are the connector's cost plus
// Dendrite's send path; the human's client then reads the last event back.
//
// Metrics: msg/s, and p50-ms / p99-ms of one Send. allocs/op counts the whole process.
func BenchmarkMatrix_Send(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()
	const authors = 10
	for a := range authors {
		out := outbound(b, bridges.KindMessage, fmt.Sprintf("status:0x04%02d", a), fmt.Sprintf("Author %d", a), "warm", fmt.Sprintf("warm-%d", a))
		if _, err := r.c.Send(ctx, out); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var last string
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		a := i % authors
		out := outbound(b, bridges.KindMessage, fmt.Sprintf("status:0x04%02d", a), fmt.Sprintf("Author %d", a),
			fmt.Sprintf("message **%d**", i), fmt.Sprintf("bench-%d-%d", b.N, i))
		t0 := time.Now()
		rc, err := r.c.Send(ctx, out)
		if err != nil {
			b.Fatalf("send %d: %v", i, err)
		}
		lat[i] = time.Since(t0)
		last = rc.ID.Local()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if _, err := r.getEvent(ctx, r.room, id.EventID(last)); err != nil {
		b.Fatalf("the human cannot read the last event %s: %v", last, err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
