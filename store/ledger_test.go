// The ledger tests are an external test package: core/gateway may import store
// (ARCHITECTURE.md), so an in-package test importing core/gateway could become an import
// cycle. They reach the backends through store.Open like any consumer.
package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/records"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/pgtest"
)

// store may not import core/gateway: *Store implements gateway.Ledger with package
// records' types. This checks it at compile time (the dependency check ignores test
// imports).
var _ gateway.Ledger = (*store.Store)(nil)

// ledgerBackends are store_test.go's backends, seen from outside the package.
var ledgerBackends = []struct {
	name   string
	config func(tb testing.TB) store.Config
}{
	{store.DriverSQLite, func(tb testing.TB) store.Config {
		return store.Config{Path: filepath.Join(tb.TempDir(), "store.db")}
	}},
	{store.DriverPostgres, func(tb testing.TB) store.Config {
		return store.Config{Driver: store.DriverPostgres, DSN: pgtest.Start(tb)}
	}},
}

func openLedger(tb testing.TB, cfg store.Config) *store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestLedger(t *testing.T) {
	for _, be := range ledgerBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range ledgerCases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, openLedger(t, be.config(t)))
				})
			}
		})
	}
}

var ledgerCases = []struct {
	name string
	run  func(t *testing.T, s *store.Store)
}{
	{"ingest_pending_order", testIngestPendingOrder},
	{"duplicate_origin", testDuplicateOrigin},
	{"delivered_copy_dedupes", testDeliveredCopyDedupes},
	{"empty_msg_id", testEmptyMsgID},
	{"mark_delivered", testMarkDelivered},
	{"mark_retry_failed", testMarkRetryFailed},
	{"clock_round_trip", testClockRoundTrip},
	{"concurrent_ingest", testConcurrentIngest},
	{"ingest_batch", testIngestBatch},
	{"ingest_batch_atomic", testIngestBatchAtomic},
	{"mark_delivered_batch", testMarkDeliveredBatch},
	{"aliases", testAliases},
	{"event_of", testEventOf},
}

// testEventOf: the event of a message is found by its origin ID and by a delivered
// copy's ID, with its body; an unknown or empty ID is not found.
func testEventOf(t *testing.T, s *store.Store) {
	ctx := context.Background()
	ev := event("matrix:room", 1)
	ingest(t, s, ev, dests("slack:C1"))
	es := pending(t, s, "slack:C1", 0, 10)
	if err := s.MarkDelivered(ctx, es[0].ID, []string{"slack:C1/ts1"}, t0); err != nil {
		t.Fatal(err)
	}
	for _, q := range [][2]string{{"matrix:room", ev.MsgID}, {"slack:C1", "slack:C1/ts1"}} {
		got, found, err := s.EventOf(ctx, q[0], q[1])
		if err != nil || !found || got.Network != ev.Network || got.Channel != ev.Channel || got.MsgID != ev.MsgID ||
			got.Kind != ev.Kind || string(got.Body) != string(ev.Body) || !got.Received.Equal(ev.Received) {
			t.Errorf("EventOf(%s, %s) = %+v, %v, %v; want %+v", q[0], q[1], got, found, err, ev)
		}
	}
	for _, q := range [][2]string{{"slack:C1", "slack:C1/nope"}, {"matrix:room", ""}, {"slack:C1", ev.MsgID}} {
		if got, found, err := s.EventOf(ctx, q[0], q[1]); err != nil || found {
			t.Errorf("EventOf(%s, %q) = %+v, %v, %v; want not found", q[0], q[1], got, found, err)
		}
	}
}

// testAliases: an alias answers lookups for its event, from and to its channel, makes a
// later event with it as origin a duplicate, is skipped for an unknown message, and
// adding it twice is harmless.
func testAliases(t *testing.T, s *store.Store) {
	ctx := context.Background()
	ev := event("status:status", 1)
	ingest(t, s, ev, dests("slack:C1"))
	es := pending(t, s, "slack:C1", 0, 10)
	if err := s.MarkDelivered(ctx, es[0].ID, []string{"slack:C1/ts1"}, t0); err != nil {
		t.Fatal(err)
	}
	aliases := []records.Alias{
		{Channel: "status:status", MsgID: ev.MsgID, Alias: "status:0xreal"},
		{Channel: "status:status", MsgID: "status:status/unknown", Alias: "status:0xother"},
	}
	for range 2 {
		if err := s.AddAliases(ctx, aliases); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.MappedIDs(ctx, "slack:C1", "slack:C1/ts1", "status:status"); err != nil || len(got) != 2 ||
		got[0] != ev.MsgID || got[1] != "status:0xreal" {
		t.Fatalf("from the copy: %v %v", got, err)
	}
	if got, err := s.MappedIDs(ctx, "status:status", "status:0xreal", "slack:C1"); err != nil || len(got) != 1 || got[0] != "slack:C1/ts1" {
		t.Fatalf("from the alias: %v %v", got, err)
	}
	if got, _ := s.MappedIDs(ctx, "status:status", "status:0xother", "slack:C1"); len(got) != 0 {
		t.Fatalf("an alias of an unknown message was mapped: %v", got)
	}
	again := event("status:status", 2)
	again.MsgID = "status:0xreal"
	if _, ok, err := s.IngestEvent(ctx, again, dests("slack:C1")); err != nil || ok {
		t.Fatalf("an event whose origin is an alias: inserted %v, %v", ok, err)
	}
}

var t0 = time.Unix(1600000000, 123456789)

// event is a Status message numbered n in channel ch.
func event(ch string, n int) records.Event {
	return records.Event{Network: "status", Channel: ch, MsgID: fmt.Sprintf("%s/m%d", ch, n), Kind: "message",
		Body: []byte(fmt.Sprintf("body %d", n)), Received: t0.Add(time.Duration(n) * time.Second)}
}

func dests(names ...string) []records.Dest {
	out := make([]records.Dest, len(names))
	for i, n := range names {
		out[i] = records.Dest{Dest: n, Key: "key-" + n}
	}
	return out
}

func ingest(t *testing.T, s *store.Store, ev records.Event, ds []records.Dest) int64 {
	t.Helper()
	id, ok, err := s.IngestEvent(context.Background(), ev, ds)
	if err != nil || !ok || id <= 0 {
		t.Fatalf("ingest %s: id %d, inserted %v, err %v", ev.MsgID, id, ok, err)
	}
	return id
}

func pending(t *testing.T, s *store.Store, dest string, after int64, limit int) []records.OutboxEntry {
	t.Helper()
	es, err := s.PendingEntries(context.Background(), dest, after, limit)
	if err != nil {
		t.Fatalf("pending entries of %s after %d: %v", dest, after, err)
	}
	return es
}

func countPending(t *testing.T, s *store.Store, dest string) int64 {
	t.Helper()
	n, err := s.CountPending(context.Background(), dest)
	if err != nil {
		t.Fatalf("count pending of %s: %v", dest, err)
	}
	return n
}

func mapped(t *testing.T, s *store.Store, src, msgID, dest string) []string {
	t.Helper()
	ids, err := s.MappedIDs(context.Background(), src, msgID, dest)
	if err != nil {
		t.Fatalf("mapped IDs of %s/%s in %s: %v", src, msgID, dest, err)
	}
	return ids
}

func testIngestPendingOrder(t *testing.T, s *store.Store) {
	e1 := ingest(t, s, event("status:a", 1), dests("matrix:x", "irc:y"))
	e2 := ingest(t, s, event("status:a", 2), dests("irc:y"))
	ev3 := event("status:a", 3)
	ev3.Body = nil // stored as empty
	e3 := ingest(t, s, ev3, dests("irc:y", "matrix:x", "slack:z"))
	if !(e1 < e2 && e2 < e3) {
		t.Fatalf("event IDs %d, %d, %d not increasing", e1, e2, e3)
	}

	x := pending(t, s, "matrix:x", 0, 10)
	y := pending(t, s, "irc:y", 0, 10)
	z := pending(t, s, "slack:z", 0, 10)
	if len(x) != 2 || len(y) != 3 || len(z) != 1 {
		t.Fatalf("pending: %d for x, %d for y, %d for z; want 2, 3, 1", len(x), len(y), len(z))
	}
	for _, c := range []struct {
		e     records.OutboxEntry
		event int64
		n     int
	}{{x[0], e1, 1}, {x[1], e3, 3}, {y[0], e1, 1}, {y[1], e2, 2}, {y[2], e3, 3}, {z[0], e3, 3}} {
		e := c.e
		wantBody := []byte(fmt.Sprintf("body %d", c.n))
		if c.n == 3 {
			wantBody = nil
		}
		if e.EventID != c.event || e.Key != "key-"+e.Dest || e.Clock != 0 || e.Attempts != 0 ||
			!e.NextAttempt.IsZero() || !bytes.Equal(e.Body, wantBody) || !e.Received.Equal(t0.Add(time.Duration(c.n)*time.Second)) {
			t.Errorf("entry %+v; want event %d, body %q", e, c.event, wantBody)
		}
	}
	// Entry IDs follow the order of dests within an event, and events' order across them.
	if !(x[0].ID < y[0].ID && y[0].ID < y[1].ID && y[1].ID < y[2].ID && y[2].ID < x[1].ID && x[1].ID < z[0].ID) {
		t.Fatalf("entry IDs out of order: x %d %d, y %d %d %d, z %d", x[0].ID, x[1].ID, y[0].ID, y[1].ID, y[2].ID, z[0].ID)
	}
	// Paging by after and limit.
	if got := pending(t, s, "irc:y", y[0].ID, 1); len(got) != 1 || got[0].ID != y[1].ID {
		t.Fatalf("after %d limit 1: %+v; want entry %d", y[0].ID, got, y[1].ID)
	}
	if got := pending(t, s, "irc:y", y[2].ID, 10); len(got) != 0 {
		t.Fatalf("after the last entry: %+v", got)
	}
	if got := pending(t, s, "nowhere", 0, 10); len(got) != 0 {
		t.Fatalf("unknown dest: %+v", got)
	}
	if n := countPending(t, s, "irc:y"); n != 3 {
		t.Fatalf("count pending irc:y = %d, want 3", n)
	}
	if _, err := s.PendingEntries(context.Background(), "irc:y", 0, 0); !errors.Is(err, store.ErrInvalidQuery) {
		t.Fatalf("limit 0: err %v, want ErrInvalidQuery", err)
	}
	// No destinations: the event is recorded (and mapped), nothing is queued.
	ingest(t, s, event("status:a", 4), nil)
	if n := countPending(t, s, "irc:y"); n != 3 {
		t.Fatalf("after an event without destinations: count %d, want 3", n)
	}
}

func testDuplicateOrigin(t *testing.T, s *store.Store) {
	ctx := context.Background()
	ev := event("status:a", 1)
	ingest(t, s, ev, dests("matrix:x"))
	again := ev
	again.Body = []byte("redelivered")
	id, ok, err := s.IngestEvent(ctx, again, dests("matrix:x", "irc:y"))
	if err != nil || ok || id != 0 {
		t.Fatalf("redelivery: id %d, inserted %v, err %v; want 0, false, nil", id, ok, err)
	}
	if n := countPending(t, s, "matrix:x"); n != 1 {
		t.Fatalf("count pending matrix:x = %d, want 1", n)
	}
	if n := countPending(t, s, "irc:y"); n != 0 {
		t.Fatalf("count pending irc:y = %d, want 0", n)
	}
	if es := pending(t, s, "matrix:x", 0, 10); len(es) != 1 || string(es[0].Body) != "body 1" {
		t.Fatalf("pending after redelivery: %+v", es)
	}
	// The same msg_id in another channel is another message.
	other := ev
	other.Channel = "status:b"
	ingest(t, s, other, dests("matrix:x"))
}

// testDeliveredCopyDedupes: a copy the gateway posted comes back from the destination
// network as a new event; its (channel, msg ID) is mapped, so it is not bridged again.
func testDeliveredCopyDedupes(t *testing.T, s *store.Store) {
	ctx := context.Background()
	ingest(t, s, event("status:a", 1), dests("matrix:x", "irc:y"))
	x := pending(t, s, "matrix:x", 0, 10)
	if err := s.MarkDelivered(ctx, x[0].ID, []string{"$ev1", "$ev2"}, t0); err != nil {
		t.Fatal(err)
	}
	echo := records.Event{Network: "matrix", Channel: "matrix:x", MsgID: "$ev2", Kind: "message", Received: t0}
	id, ok, err := s.IngestEvent(ctx, echo, dests("status:a", "irc:y"))
	if err != nil || ok || id != 0 {
		t.Fatalf("echo of a delivered copy: id %d, inserted %v, err %v; want 0, false, nil", id, ok, err)
	}
	if n := countPending(t, s, "irc:y"); n != 1 {
		t.Fatalf("count pending irc:y = %d, want 1", n)
	}
	if n := countPending(t, s, "status:a"); n != 0 {
		t.Fatalf("count pending status:a = %d, want 0", n)
	}
}

func testEmptyMsgID(t *testing.T, s *store.Store) {
	join := records.Event{Network: "irc", Channel: "irc:y", Kind: "join", Received: t0}
	a := ingest(t, s, join, dests("matrix:x"))
	b := ingest(t, s, join, dests("matrix:x"))
	if a == b {
		t.Fatalf("two joins got event %d", a)
	}
	if n := countPending(t, s, "matrix:x"); n != 2 {
		t.Fatalf("count pending = %d, want 2", n)
	}
	es := pending(t, s, "matrix:x", 0, 10)
	// A delivery reporting the empty ID maps nothing.
	if err := s.MarkDelivered(context.Background(), es[0].ID, []string{""}, t0); err != nil {
		t.Fatal(err)
	}
	if ids := mapped(t, s, "irc:y", "", "matrix:x"); len(ids) != 0 {
		t.Fatalf("mapped IDs of the empty ID: %q", ids)
	}
	if ids := mapped(t, s, "matrix:x", "", "irc:y"); len(ids) != 0 {
		t.Fatalf("mapped IDs of the empty ID: %q", ids)
	}
}

func testMarkDelivered(t *testing.T, s *store.Store) {
	ctx := context.Background()
	ev := event("status:a", 1)
	ingest(t, s, ev, dests("matrix:x", "irc:y"))
	ingest(t, s, event("status:a", 2), dests("irc:y"))
	y := pending(t, s, "irc:y", 0, 10)
	// IDs in an order that is neither lexical nor reverse lexical: insertion order wins.
	ids := []string{"irc:m9", "irc:m10", "irc:m1"}
	if err := s.MarkDelivered(ctx, y[0].ID, ids, t0); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, s, "irc:y", 0, 10); len(got) != 1 || got[0].ID != y[1].ID {
		t.Fatalf("pending after delivery: %+v; want only entry %d", got, y[1].ID)
	}
	if n := countPending(t, s, "irc:y"); n != 1 {
		t.Fatalf("count pending = %d, want 1", n)
	}
	// Again, with one more ID (a split message's late part): harmless, adds the new ID.
	if err := s.MarkDelivered(ctx, y[0].ID, append(slices.Clone(ids), "irc:m11"), t0.Add(time.Hour)); err != nil {
		t.Fatalf("second mark: %v", err)
	}
	if n := countPending(t, s, "irc:y"); n != 1 {
		t.Fatalf("count pending after second mark = %d, want 1", n)
	}
	want := append(slices.Clone(ids), "irc:m11")
	if got := mapped(t, s, "status:a", ev.MsgID, "irc:y"); !slices.Equal(got, want) {
		t.Fatalf("mapped IDs origin → irc:y: %q, want %q", got, want)
	}
	// From a copy back to the origin, from a copy to itself, and to other channels.
	if got := mapped(t, s, "irc:y", "irc:m10", "status:a"); !slices.Equal(got, []string{ev.MsgID}) {
		t.Fatalf("mapped IDs copy → origin: %q", got)
	}
	if got := mapped(t, s, "irc:y", "irc:m10", "irc:y"); !slices.Equal(got, want) {
		t.Fatalf("mapped IDs copy → its channel: %q", got)
	}
	if got := mapped(t, s, "status:a", ev.MsgID, "matrix:x"); len(got) != 0 {
		t.Fatalf("mapped IDs in a channel not yet delivered to: %q", got)
	}
	if got := mapped(t, s, "status:a", "unknown", "irc:y"); len(got) != 0 {
		t.Fatalf("mapped IDs of an unknown message: %q", got)
	}
	if got := mapped(t, s, "matrix:x", ev.MsgID, "irc:y"); len(got) != 0 {
		t.Fatalf("mapped IDs of a message ID in the wrong channel: %q", got)
	}
	// No IDs (a network that reports none): delivered, nothing mapped.
	x := pending(t, s, "matrix:x", 0, 10)
	if err := s.MarkDelivered(ctx, x[0].ID, nil, t0); err != nil {
		t.Fatal(err)
	}
	if n := countPending(t, s, "matrix:x"); n != 0 {
		t.Fatalf("count pending matrix:x = %d, want 0", n)
	}
	if err := s.MarkDelivered(ctx, 1<<40, []string{"irc:m99"}, t0); !errors.Is(err, records.ErrUnknownEntry) {
		t.Fatalf("unknown entry: err %v, want records.ErrUnknownEntry", err)
	}
}

func testMarkRetryFailed(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for n := 1; n <= 3; n++ {
		ingest(t, s, event("status:a", n), dests("matrix:x"))
	}
	es := pending(t, s, "matrix:x", 0, 10)
	next := t0.Add(time.Minute)
	if err := s.MarkRetry(ctx, es[1].ID, 2, next, "HTTP 502"); err != nil {
		t.Fatal(err)
	}
	got := pending(t, s, "matrix:x", 0, 10)
	if len(got) != 3 || got[1].Attempts != 2 || !got[1].NextAttempt.Equal(next) || got[0].Attempts != 0 {
		t.Fatalf("after retry: %+v", got)
	}
	// Retry "now" (the zero time) round-trips as the zero time.
	if err := s.MarkRetry(ctx, es[1].ID, 3, time.Time{}, "HTTP 502"); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, s, "matrix:x", 0, 10); got[1].Attempts != 3 || !got[1].NextAttempt.IsZero() {
		t.Fatalf("after retry now: %+v", got[1])
	}
	if err := s.MarkFailed(ctx, es[1].ID, 4, "HTTP 403", t0); err != nil {
		t.Fatal(err)
	}
	got = pending(t, s, "matrix:x", 0, 10)
	if len(got) != 2 || got[0].ID != es[0].ID || got[1].ID != es[2].ID {
		t.Fatalf("after failure: %+v; want entries %d and %d", got, es[0].ID, es[2].ID)
	}
	if n := countPending(t, s, "matrix:x"); n != 2 {
		t.Fatalf("count pending = %d, want 2", n)
	}
	// A delivered entry stays delivered: a late failure does not touch it.
	if err := s.MarkDelivered(ctx, es[0].ID, nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx, es[0].ID, 1, "late", t0); err != nil {
		t.Fatal(err)
	}
	if n := countPending(t, s, "matrix:x"); n != 1 {
		t.Fatalf("count pending = %d, want 1", n)
	}
	for name, err := range map[string]error{
		"retry":  s.MarkRetry(ctx, 1<<40, 1, next, "x"),
		"failed": s.MarkFailed(ctx, 1<<40, 1, "x", t0),
	} {
		if !errors.Is(err, records.ErrUnknownEntry) {
			t.Errorf("%s of an unknown entry: err %v, want records.ErrUnknownEntry", name, err)
		}
	}
}

func testClockRoundTrip(t *testing.T, s *store.Store) {
	ctx := context.Background()
	clocks := []uint64{0, 1, 1600000000123, 1 << 62, math.MaxInt64}
	ds := make([]records.Dest, len(clocks))
	for i, c := range clocks {
		ds[i] = records.Dest{Dest: fmt.Sprintf("status:c%d", i), Key: "k", Clock: c}
	}
	ingest(t, s, event("matrix:x", 1), ds)
	for i, c := range clocks {
		if es := pending(t, s, ds[i].Dest, 0, 10); len(es) != 1 || es[0].Clock != c {
			t.Fatalf("clock %d: read back %+v", c, es)
		}
	}
	// Beyond the int64 column: an error, and nothing written (the event can come again).
	ev := event("matrix:x", 2)
	if _, _, err := s.IngestEvent(ctx, ev, []records.Dest{{Dest: "status:big", Clock: 1 << 63}}); err == nil {
		t.Fatal("clock 1<<63 accepted")
	}
	if n := countPending(t, s, "status:big"); n != 0 {
		t.Fatalf("count pending after a rejected clock = %d", n)
	}
	ingest(t, s, ev, []records.Dest{{Dest: "status:big", Clock: 5}})
}

// testConcurrentIngest: 8 writers ingest at once, half of them in batches of 5, while a
// dispatcher pages one destination by "ID > after". Every entry must reach the dispatcher exactly once,
// which holds only if entry IDs are allocated in commit order; and each writer's
// events keep its order in every outbox.
func testConcurrentIngest(t *testing.T, s *store.Store) {
	const writers, perWriter = 8, 25
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg       sync.WaitGroup
		errs     = make(chan error, writers)
		done     = make(chan struct{})
		seen     []records.OutboxEntry
		readErr  error
		readDone = make(chan struct{})
	)
	go func() { // the dispatcher; it ends when the writers have and it has read all
		defer close(readDone)
		var after int64
		finished := false
		for {
			es, err := s.PendingEntries(ctx, "matrix:x", after, 7)
			if err != nil {
				readErr = err
				return
			}
			seen = append(seen, es...)
			if len(es) > 0 {
				after = es[len(es)-1].ID
				continue
			}
			if finished {
				return
			}
			select {
			case <-done:
				finished = true // one more pass after the last commit
			default:
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := fmt.Sprintf("status:w%d", w)
			if w%2 == 1 { // odd writers group their events, 5 per IngestEvents
				for n := 0; n < perWriter; n += 5 {
					var batch []records.Ingest
					for k := n; k < min(n+5, perWriter); k++ {
						batch = append(batch, records.Ingest{Event: event(ch, k), Dests: dests("matrix:x", ch+"-copy")})
					}
					res, err := s.IngestEvents(ctx, batch)
					if err != nil {
						errs <- fmt.Errorf("writer %d events %d…: %v", w, n, err)
						return
					}
					for k, r := range res {
						if !r.Inserted || r.EventID <= 0 {
							errs <- fmt.Errorf("writer %d event %d: %+v", w, n+k, r)
							return
						}
					}
				}
				return
			}
			for n := range perWriter {
				ev := event(ch, n)
				if _, ok, err := s.IngestEvent(ctx, ev, dests("matrix:x", ch+"-copy")); err != nil || !ok {
					errs <- fmt.Errorf("writer %d event %d: inserted %v, err %v", w, n, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	<-readDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if readErr != nil {
		t.Fatalf("dispatcher: %v", readErr)
	}
	all := pending(t, s, "matrix:x", 0, writers*perWriter+1)
	if len(all) != writers*perWriter || len(seen) != len(all) {
		t.Fatalf("%d entries, dispatcher saw %d; want %d", len(all), len(seen), writers*perWriter)
	}
	for i, e := range all {
		if seen[i].ID != e.ID {
			t.Fatalf("dispatcher's entry %d is %d, want %d", i, seen[i].ID, e.ID)
		}
		// Ingests are serialized, so event IDs follow commit order as entry IDs do.
		if i > 0 && (e.ID <= all[i-1].ID || e.EventID <= all[i-1].EventID) {
			t.Fatalf("entry %d (event %d) after entry %d (event %d)", e.ID, e.EventID, all[i-1].ID, all[i-1].EventID)
		}
	}
	for w := range writers {
		ch := fmt.Sprintf("status:w%d", w)
		es := pending(t, s, ch+"-copy", 0, perWriter+1)
		if len(es) != perWriter {
			t.Fatalf("%s: %d entries, want %d", ch, len(es), perWriter)
		}
		for n, e := range es {
			if want := fmt.Sprintf("body %d", n); string(e.Body) != want {
				t.Fatalf("%s entry %d: body %q, want %q (writer order lost)", ch, n, e.Body, want)
			}
		}
	}
}

// testIngestBatch: one IngestEvents with new events, an origin already ingested, an
// echo of a delivered copy, an origin repeated within the batch, and events without
// MsgID; results, IDs and outboxes as if ingested one by one.
func testIngestBatch(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if res, err := s.IngestEvents(ctx, nil); err != nil || len(res) != 0 {
		t.Fatalf("empty batch: %+v, %v", res, err)
	}
	first := ingest(t, s, event("status:a", 1), dests("matrix:x"))
	x := pending(t, s, "matrix:x", 0, 10)
	if err := s.MarkDelivered(ctx, x[0].ID, []string{"$c1"}, t0); err != nil {
		t.Fatal(err)
	}
	join := records.Event{Network: "irc", Channel: "irc:y", Kind: "join", Received: t0}
	again := event("status:a", 2)
	again.Body = []byte("repeated in the batch")
	batch := []records.Ingest{
		{Event: event("status:a", 2), Dests: dests("matrix:x", "irc:y")},                                                     // 0 new
		{Event: event("status:a", 1), Dests: dests("irc:y")},                                                                 // 1 already ingested
		{Event: event("status:a", 3), Dests: dests("irc:y")},                                                                 // 2 new
		{Event: again, Dests: dests("slack:z")},                                                                              // 3 repeats 0
		{Event: join, Dests: dests("matrix:x")},                                                                              // 4 new (no MsgID)
		{Event: records.Event{Network: "matrix", Channel: "matrix:x", MsgID: "$c1", Kind: "message"}, Dests: dests("irc:y")}, // 5 echo
		{Event: join, Dests: dests("matrix:x")},                                                                              // 6 new (no MsgID)
		{Event: event("status:b", 2), Dests: nil},                                                                            // 7 new, nothing queued
		{Event: event("status:a", 3), Dests: dests("slack:z")},                                                               // 8 repeats 2
	}
	res, err := s.IngestEvents(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	wantNew := []bool{true, false, true, false, true, false, true, true, false}
	if len(res) != len(batch) {
		t.Fatalf("%d results for %d events", len(res), len(batch))
	}
	last := first
	for i, r := range res {
		if r.Inserted != wantNew[i] {
			t.Fatalf("result %d: %+v, want inserted %v", i, r, wantNew[i])
		}
		if !r.Inserted {
			if r.EventID != 0 {
				t.Fatalf("duplicate %d: event ID %d, want 0", i, r.EventID)
			}
			continue
		}
		if r.EventID <= last {
			t.Fatalf("result %d: event ID %d not after %d", i, r.EventID, last)
		}
		last = r.EventID
	}
	if n := countPending(t, s, "slack:z"); n != 0 {
		t.Fatalf("count pending slack:z = %d, want 0 (only duplicates go there)", n)
	}
	x = pending(t, s, "matrix:x", x[0].ID, 10)
	y := pending(t, s, "irc:y", 0, 10)
	if len(x) != 3 || len(y) != 2 {
		t.Fatalf("pending: %d for x, %d for y; want 3, 2", len(x), len(y))
	}
	for i, c := range []struct {
		e     records.OutboxEntry
		event int64
		body  string
	}{{x[0], res[0].EventID, "body 2"}, {x[1], res[4].EventID, ""}, {x[2], res[6].EventID, ""},
		{y[0], res[0].EventID, "body 2"}, {y[1], res[2].EventID, "body 3"}} {
		if c.e.EventID != c.event || string(c.e.Body) != c.body || c.e.Key != "key-"+c.e.Dest {
			t.Errorf("entry %d: %+v; want event %d, body %q", i, c.e, c.event, c.body)
		}
	}
	// Entry IDs follow batch order, and dests order within an event.
	if !(x[0].ID < y[0].ID && y[0].ID < y[1].ID && y[1].ID < x[1].ID && x[1].ID < x[2].ID) {
		t.Fatalf("entry IDs out of batch order: x %d %d %d, y %d %d", x[0].ID, x[1].ID, x[2].ID, y[0].ID, y[1].ID)
	}
	// The origins are mapped: the same batch again is all duplicates but the joins.
	res, err = s.IngestEvents(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := batch[i].Event.MsgID == ""; r.Inserted != want {
			t.Fatalf("second time, result %d: %+v, want inserted %v", i, r, want)
		}
	}
}

// testIngestBatchAtomic: an error in the third element writes nothing of the first two.
func testIngestBatchAtomic(t *testing.T, s *store.Store) {
	ctx := context.Background()
	batch := []records.Ingest{
		{Event: event("status:a", 1), Dests: dests("matrix:x")},
		{Event: event("status:a", 2), Dests: dests("matrix:x")},
		{Event: event("status:a", 3), Dests: []records.Dest{{Dest: "status:big", Clock: 1 << 63}}},
	}
	if res, err := s.IngestEvents(ctx, batch); err == nil {
		t.Fatalf("clock 1<<63 in element 3 accepted: %+v", res)
	}
	if n := countPending(t, s, "matrix:x"); n != 0 {
		t.Fatalf("count pending after a failed batch = %d, want 0", n)
	}
	// A failure inside the database: PostgreSQL rejects NUL in text (SQLite stores it,
	// so there the batch succeeds and is not checked).
	nul := batch[2]
	nul.Event.Kind, nul.Dests = "mess\x00age", dests("matrix:x")
	if _, err := s.IngestEvents(ctx, []records.Ingest{batch[0], batch[1], nul}); err != nil {
		if n := countPending(t, s, "matrix:x"); n != 0 {
			t.Fatalf("count pending after a batch the database failed = %d, want 0", n)
		}
		if ids := mapped(t, s, "status:a", batch[0].Event.MsgID, "status:a"); len(ids) != 0 {
			t.Fatalf("origin of a failed batch mapped: %q", ids)
		}
		batch[2].Dests[0].Clock = 5
		res, err := s.IngestEvents(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if !r.Inserted {
				t.Fatalf("after failed batches, result %d: %+v; want inserted", i, r)
			}
		}
		if n := countPending(t, s, "matrix:x"); n != 2 {
			t.Fatalf("count pending = %d, want 2", n)
		}
	}
}

// testMarkDeliveredBatch: one MarkDeliveredBatch marks every entry and maps every ID,
// as MarkDelivered one by one would; again is harmless; an unknown entry fails it all.
func testMarkDeliveredBatch(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if err := s.MarkDeliveredBatch(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	for n := 1; n <= 3; n++ {
		ingest(t, s, event("status:a", n), dests("matrix:x", "irc:y"))
	}
	x, y := pending(t, s, "matrix:x", 0, 10), pending(t, s, "irc:y", 0, 10)
	batch := []records.Delivery{
		{EntryID: x[0].ID, IDs: []string{"$a", "$b"}, At: t0},
		{EntryID: y[0].ID, IDs: []string{"y:1"}, At: t0},
		{EntryID: x[1].ID, At: t0},
		{EntryID: x[0].ID, IDs: []string{"$c", "$a"}, At: t0.Add(time.Hour)}, // again: adds $c
		{EntryID: y[1].ID, IDs: []string{"", "y:2", "y:3"}, At: t0},
	}
	check := func(when string) {
		t.Helper()
		if got := pending(t, s, "matrix:x", 0, 10); len(got) != 1 || got[0].ID != x[2].ID {
			t.Fatalf("%s: pending x %+v; want only entry %d", when, got, x[2].ID)
		}
		if got := pending(t, s, "irc:y", 0, 10); len(got) != 1 || got[0].ID != y[2].ID {
			t.Fatalf("%s: pending y %+v; want only entry %d", when, got, y[2].ID)
		}
		for _, c := range []struct {
			src, msgID, dest string
			want             []string
		}{
			{"status:a", "status:a/m1", "matrix:x", []string{"$a", "$b", "$c"}},
			{"status:a", "status:a/m1", "irc:y", []string{"y:1"}},
			{"status:a", "status:a/m2", "matrix:x", nil},
			{"status:a", "status:a/m2", "irc:y", []string{"y:2", "y:3"}},
			{"matrix:x", "$c", "status:a", []string{"status:a/m1"}},
			{"irc:y", "y:3", "matrix:x", nil},
		} {
			if got := mapped(t, s, c.src, c.msgID, c.dest); !slices.Equal(got, c.want) {
				t.Fatalf("%s: mapped IDs of %s/%s in %s: %q, want %q", when, c.src, c.msgID, c.dest, got, c.want)
			}
		}
	}
	if err := s.MarkDeliveredBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	check("after the batch")
	if err := s.MarkDeliveredBatch(ctx, batch); err != nil {
		t.Fatalf("again: %v", err)
	}
	check("after the batch again")
	// An unknown entry in element 3: elements 1 and 2 are not marked, nothing is mapped.
	err := s.MarkDeliveredBatch(ctx, []records.Delivery{
		{EntryID: x[2].ID, IDs: []string{"$z"}, At: t0},
		{EntryID: y[2].ID, IDs: []string{"y:z"}, At: t0},
		{EntryID: 1 << 40, IDs: []string{"y:zz"}, At: t0},
	})
	if !errors.Is(err, records.ErrUnknownEntry) {
		t.Fatalf("unknown entry: err %v, want records.ErrUnknownEntry", err)
	}
	check("after a failed batch")
	if got := mapped(t, s, "matrix:x", "$z", "status:a"); len(got) != 0 {
		t.Fatalf("ID of a failed batch mapped: %q", got)
	}
}

// BenchmarkLedgerIngest is the gateway's hot path: one IngestEvent (one op) of a
// message with a 300-byte body to two destinations, each its own transaction (on SQLite
// with synchronous FULL, so a sync per commit), into a fresh store.
func BenchmarkLedgerIngest(b *testing.B) {
	for _, be := range ledgerBackends {
		b.Run(be.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			s := openLedger(b, be.config(b))
			body := bytes.Repeat([]byte{'x'}, 300)
			ds := []records.Dest{{Dest: "matrix:!room:example.org", Key: "k1"}, {Dest: "irc:#chan", Key: "k2"}}
			msgIDs := make([]string, b.N)
			for i := range msgIDs {
				msgIDs[i] = fmt.Sprintf("status:0x%064x", i)
			}
			b.ResetTimer()
			for i := range b.N {
				ev := records.Event{Network: "status", Channel: "status:statusgate-dev", MsgID: msgIDs[i],
					Kind: "message", Body: body, Received: t0}
				if _, ok, err := s.IngestEvent(ctx, ev, ds); err != nil || !ok {
					b.Fatalf("ingest %d: inserted %v, err %v", i, ok, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchIngestBatch is the events of BenchmarkLedgerIngest, n of them, as IngestEvents
// elements.
func benchIngestBatch(n int) []records.Ingest {
	body := bytes.Repeat([]byte{'x'}, 300)
	ds := []records.Dest{{Dest: "matrix:!room:example.org", Key: "k1"}, {Dest: "irc:#chan", Key: "k2"}}
	batch := make([]records.Ingest, n)
	for i := range batch {
		batch[i] = records.Ingest{Event: records.Event{Network: "status", Channel: "status:statusgate-dev",
			MsgID: fmt.Sprintf("status:0x%064x", i), Kind: "message", Body: body, Received: t0}, Dests: ds}
	}
	return batch
}

// benchBatch is how many requests the gateway's writer groups in these benchmarks.
const benchBatch = 64

// BenchmarkLedgerIngestBatch64 is BenchmarkLedgerIngest through the gateway's group
// commit: b.N events (one op each) in IngestEvents calls of 64, so one transaction and
// one sync per 64 events.
func BenchmarkLedgerIngestBatch64(b *testing.B) {
	for _, be := range ledgerBackends {
		b.Run(be.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			s := openLedger(b, be.config(b))
			all := benchIngestBatch(b.N)
			b.ResetTimer()
			for batch := range slices.Chunk(all, benchBatch) {
				res, err := s.IngestEvents(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				for i, r := range res {
					if !r.Inserted {
						b.Fatalf("event %s not inserted", batch[i].Event.MsgID)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLedgerMarkDeliveredBatch64: b.N deliveries (one op each, one posted ID
// each) in MarkDeliveredBatch calls of 64, of entries ingested beforehand (untimed).
func BenchmarkLedgerMarkDeliveredBatch64(b *testing.B) {
	for _, be := range ledgerBackends {
		b.Run(be.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			s := openLedger(b, be.config(b))
			events := (b.N + 1) / 2 // two destinations each
			for batch := range slices.Chunk(benchIngestBatch(events), 256) {
				if _, err := s.IngestEvents(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			var ds []records.Delivery
			for _, dest := range []string{"matrix:!room:example.org", "irc:#chan"} {
				es, err := s.PendingEntries(ctx, dest, 0, events)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range es {
					ds = append(ds, records.Delivery{EntryID: e.ID, IDs: []string{fmt.Sprintf("%s/%d", dest, e.ID)}, At: t0})
				}
			}
			ds = ds[:b.N]
			b.ResetTimer()
			for batch := range slices.Chunk(ds, benchBatch) {
				if err := s.MarkDeliveredBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
