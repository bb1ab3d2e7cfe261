package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/pgtest"
)

// backend is one database the suite runs against; config returns a fresh, empty one.
type backend struct {
	name   string
	config func(tb testing.TB) Config
}

var backends = []backend{
	{DriverSQLite, func(tb testing.TB) Config {
		return Config{Path: filepath.Join(tb.TempDir(), "store.db")} // Driver defaults to sqlite
	}},
	{DriverPostgres, func(tb testing.TB) Config {
		return Config{Driver: DriverPostgres, DSN: pgtest.Start(tb)}
	}},
}

func openStore(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newRecord builds the archive record of a real envelope created at the given time.
func newRecord(tb testing.TB, created uint32, topic whisper.Topic, nonce uint64, dataLen int) mailserver.Record {
	tb.Helper()
	data := make([]byte, dataLen)
	for i := range data {
		data[i] = byte(nonce >> (8 * (i % 8)))
	}
	env, err := whisper.NewEnvelope(created+15, 15, topic, data, nonce)
	if err != nil {
		tb.Fatal(err)
	}
	return mailserver.RecordOf(env)
}

// sorted returns the envelopes of recs in archive order: ascending (created, hash).
func sorted(recs []mailserver.Record) [][]byte {
	rs := slices.Clone(recs)
	slices.SortFunc(rs, func(a, b mailserver.Record) int {
		if a.Created != b.Created {
			return int(int64(a.Created) - int64(b.Created))
		}
		return bytes.Compare(a.Hash[:], b.Hash[:])
	})
	out := make([][]byte, len(rs))
	for i := range rs {
		out[i] = rs[i].Envelope
	}
	return out
}

func queryAll(tb testing.TB, a *Archive, lower, upper uint32, bloom whisper.Bloom) [][]byte {
	tb.Helper()
	envs, next, err := a.Query(context.Background(), mailserver.Query{Lower: lower, Upper: upper, Bloom: bloom, Limit: 1 << 20})
	if err != nil {
		tb.Fatalf("query [%d, %d]: %v", lower, upper, err)
	}
	if len(next) != 0 {
		tb.Fatalf("query [%d, %d]: cursor %x after a partial result", lower, upper, next)
	}
	return envs
}

func equalEnvelopes(tb testing.TB, what string, got, want [][]byte) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d envelopes, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			tb.Fatalf("%s: envelope %d differs", what, i)
		}
	}
}

var (
	topicA = whisper.TopicFromName("a")
	topicB = whisper.TopicFromName("b")
	topicC = whisper.TopicFromName("status")
)

func TestArchive(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range archiveCases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, be)
				})
			}
		})
	}
}

var archiveCases = []struct {
	name string
	run  func(t *testing.T, be backend)
}{
	{"put_dedupe", testPutDedupe},
	{"query_order", testQueryOrder},
	{"inclusive_bounds", testInclusiveBounds},
	{"bloom_filter", testBloomFilter},
	{"cursor_paging", testCursorPaging},
	{"cursor_paging_filtered", testCursorPagingFiltered},
	{"cursor_after_filtered_rows", testCursorAfterFilteredRows},
	{"max_bytes", testMaxBytes},
	{"topics", testTopics},
	{"malformed_query", testMalformedQuery},
	{"prune", testPrune},
	{"prune_bytes", testPruneBytes},
	{"reopen", testReopen},
	{"concurrent_put", testConcurrentPut},
}

func testPutDedupe(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs []mailserver.Record
	for i := range 15 {
		recs = append(recs, newRecord(t, 1000+uint32(i), topicA, uint64(i), 100))
	}
	if err := a.Put(ctx, recs[:10]); err != nil {
		t.Fatal(err)
	}
	// Redelivery: 10 known (one with different bytes under a known hash, which must not
	// replace the stored envelope), 5 new, and a duplicate inside the batch.
	again := slices.Clone(recs)
	again[3].Envelope = []byte("not the stored envelope")
	again = append(again, recs[12])
	if err := a.Put(ctx, again); err != nil {
		t.Fatalf("put known hashes: %v", err)
	}
	if err := a.Put(ctx, nil); err != nil {
		t.Fatalf("put nothing: %v", err)
	}
	equalEnvelopes(t, "after redelivery", queryAll(t, a, 0, math.MaxUint32, whisper.FullBloom()), sorted(recs))
}

func testQueryOrder(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	rng := rand.New(rand.NewPCG(1, 2))
	var recs []mailserver.Record
	for i := range 200 {
		// Few distinct times, so many envelopes share a created time and order by hash.
		recs = append(recs, newRecord(t, 5000+uint32(rng.IntN(7)), topicA, uint64(i), 50))
	}
	shuffled := slices.Clone(recs)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 0; i < len(shuffled); i += 30 {
		if err := a.Put(ctx, shuffled[i:min(i+30, len(shuffled))]); err != nil {
			t.Fatal(err)
		}
	}
	equalEnvelopes(t, "order", queryAll(t, a, 0, math.MaxUint32, whisper.FullBloom()), sorted(recs))
}

func testInclusiveBounds(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs []mailserver.Record
	for c := uint32(10); c <= 20; c++ {
		recs = append(recs, newRecord(t, c, topicA, uint64(c), 10))
	}
	// The uint32 extremes survive the round trip (PostgreSQL INTEGER would not).
	first := newRecord(t, 0, topicA, 1<<40, 10)
	lastEnv, err := whisper.NewEnvelope(math.MaxUint32, 0, topicA, []byte("last"), 7)
	if err != nil {
		t.Fatal(err)
	}
	last := mailserver.RecordOf(lastEnv)
	if err := a.Put(ctx, append(slices.Clone(recs), first, last)); err != nil {
		t.Fatal(err)
	}
	full := whisper.FullBloom()
	equalEnvelopes(t, "[12, 15]", queryAll(t, a, 12, 15, full), sorted(recs[2:6]))
	equalEnvelopes(t, "[13, 13]", queryAll(t, a, 13, 13, full), sorted(recs[3:4]))
	equalEnvelopes(t, "[16, 12]", queryAll(t, a, 16, 12, full), nil)
	equalEnvelopes(t, "[0, 0]", queryAll(t, a, 0, 0, full), [][]byte{first.Envelope})
	equalEnvelopes(t, "[max, max]", queryAll(t, a, math.MaxUint32, math.MaxUint32, full), [][]byte{last.Envelope})
	equalEnvelopes(t, "[21, max-1]", queryAll(t, a, 21, math.MaxUint32-1, full), nil)
}

func testBloomFilter(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs []mailserver.Record
	for i := range 30 {
		recs = append(recs, newRecord(t, 100+uint32(i), []whisper.Topic{topicA, topicB, topicC}[i%3], uint64(i), 20))
	}
	if err := a.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	ab := whisper.BloomOf(topicA, topicB)
	if cb := topicC.Bloom(); ab.Matches(&cb) {
		t.Fatal("test topics: bloom(a, b) matches c")
	}
	var want []mailserver.Record
	for _, r := range recs {
		if r.Topic != topicC {
			want = append(want, r)
		}
	}
	equalEnvelopes(t, "bloom(a, b)", queryAll(t, a, 0, math.MaxUint32, ab), sorted(want))
	var wantC []mailserver.Record
	for _, r := range recs {
		if r.Topic == topicC {
			wantC = append(wantC, r)
		}
	}
	equalEnvelopes(t, "bloom(status)", queryAll(t, a, 0, math.MaxUint32, topicC.Bloom()), sorted(wantC))
	equalEnvelopes(t, "bloom(status) in [101, 106]", queryAll(t, a, 101, 106, topicC.Bloom()), sorted(wantC[:2]))
	equalEnvelopes(t, "full bloom", queryAll(t, a, 0, math.MaxUint32, whisper.FullBloom()), sorted(recs))
	other := whisper.TopicFromName("not archived")
	ob := other.Bloom()
	for _, tp := range []whisper.Topic{topicA, topicB, topicC} {
		if tb := tp.Bloom(); ob.Matches(&tb) {
			t.Fatalf("test topics: bloom(%v) matches %v", other, tp)
		}
	}
	equalEnvelopes(t, "bloom(not archived)", queryAll(t, a, 0, math.MaxUint32, ob), nil)
}

// pageAll follows cursors from the start and checks that every page but the last is
// full and ends at its cursor.
func pageAll(t *testing.T, a *Archive, q mailserver.Query) (pages [][][]byte) {
	t.Helper()
	for {
		envs, next, err := a.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("page %d: %v", len(pages)+1, err)
		}
		pages = append(pages, envs)
		if len(next) == 0 {
			return pages
		}
		if len(envs) != q.Limit {
			t.Fatalf("page %d: %d envelopes with a cursor, want %d", len(pages), len(envs), q.Limit)
		}
		env, err := whisper.DecodeEnvelope(envs[len(envs)-1])
		if err != nil {
			t.Fatal(err)
		}
		if want := mailserver.CursorOf(env.Sent(), env.Hash()); !bytes.Equal(next, want) {
			t.Fatalf("page %d: cursor %x, want the last envelope's %x", len(pages), next, want)
		}
		if len(pages) > 100 {
			t.Fatal("cursor does not advance")
		}
		q.Cursor = next
	}
}

func testCursorPaging(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs []mailserver.Record
	for i := range 50 {
		recs = append(recs, newRecord(t, 2000+uint32(i/4), topicA, uint64(i), 30)) // 4 per second
	}
	if err := a.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	pages := pageAll(t, a, mailserver.Query{Lower: 2000, Upper: 3000, Bloom: whisper.FullBloom(), Limit: 10})
	if len(pages) != 5 {
		t.Fatalf("%d pages, want 5 (the fifth exhausts the range, so no cursor)", len(pages))
	}
	equalEnvelopes(t, "pages concatenated", slices.Concat(pages...), sorted(recs))
	// One more envelope: the fifth page now ends with a cursor, and a sixth holds it.
	extra := newRecord(t, 3000, topicA, 999, 30)
	if err := a.Put(ctx, []mailserver.Record{extra}); err != nil {
		t.Fatal(err)
	}
	pages = pageAll(t, a, mailserver.Query{Lower: 2000, Upper: 3000, Bloom: whisper.FullBloom(), Limit: 10})
	if len(pages) != 6 || len(pages[5]) != 1 {
		t.Fatalf("%d pages, want 6 with one envelope in the last", len(pages))
	}
	equalEnvelopes(t, "pages concatenated", slices.Concat(pages...), sorted(append(recs, extra)))
	// A cursor below Lower starts at Lower; one above Upper returns nothing.
	envs, next, err := a.Query(ctx, mailserver.Query{Lower: 2005, Upper: 2005, Bloom: whisper.FullBloom(), Limit: 10,
		Cursor: mailserver.CursorOf(1999, [32]byte{0xff})})
	if err != nil || len(next) != 0 {
		t.Fatalf("cursor below lower: next %x, err %v", next, err)
	}
	equalEnvelopes(t, "cursor below lower", envs, sorted(recs[20:24]))
	envs, next, err = a.Query(ctx, mailserver.Query{Lower: 2000, Upper: 2005, Bloom: whisper.FullBloom(), Limit: 10,
		Cursor: mailserver.CursorOf(2006, [32]byte{})})
	if err != nil || len(next) != 0 || len(envs) != 0 {
		t.Fatalf("cursor above upper: %d envelopes, next %x, err %v", len(envs), next, err)
	}
}

// testCursorPagingFiltered pages through a bloom that matches half the rows, so Query
// reads past rows it filters out.
func testCursorPagingFiltered(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	// 1100 envelopes: A at even i, B at odd i < 100, C at odd i ≥ 100. The bloom of B
	// and C matches 550, read in 5 pages of 110, each skipping as many A rows.
	var recs, want []mailserver.Record
	for i := range 1100 {
		tp := topicA
		if i%2 == 1 {
			tp = topicB
			if i > 100 {
				tp = topicC
			}
		}
		recs = append(recs, newRecord(t, 7000+uint32(i), tp, uint64(i), 10))
	}
	if err := a.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Topic == topicB || r.Topic == topicC {
			want = append(want, r)
		}
	}
	bc := whisper.BloomOf(topicB, topicC)
	if ab := topicA.Bloom(); bc.Matches(&ab) {
		t.Fatal("test topics: bloom(b, c) matches a")
	}
	pages := pageAll(t, a, mailserver.Query{Lower: 0, Upper: math.MaxUint32, Bloom: bc, Limit: 110})
	if len(pages) != 5 {
		t.Fatalf("%d pages, want 5", len(pages))
	}
	equalEnvelopes(t, "filtered pages concatenated", slices.Concat(pages...), sorted(want))
}

// testCursorAfterFilteredRows: the page that reaches the limit ends in rows the bloom
// filters out, and a match lies beyond it; Query cannot know without reading on, so it
// must return a cursor rather than declare the range exhausted.
func testCursorAfterFilteredRows(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs, want []mailserver.Record
	for i := range 1000 {
		tp := topicB
		if i < 300 || i == 999 {
			tp = topicA
		}
		r := newRecord(t, 8000+uint32(i), tp, uint64(i), 10)
		recs = append(recs, r)
		if tp == topicA {
			want = append(want, r)
		}
	}
	if err := a.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	pages := pageAll(t, a, mailserver.Query{Upper: math.MaxUint32, Bloom: topicA.Bloom(), Limit: 300})
	if len(pages) != 2 || len(pages[1]) != 1 {
		t.Fatalf("%d pages, want 2: 300 envelopes, then the last one", len(pages))
	}
	equalEnvelopes(t, "pages concatenated", slices.Concat(pages...), sorted(want))
}

// testMaxBytes: a page ends before the envelope that would take it past MaxBytes, with
// the cursor of its last envelope; an envelope larger than the budget still comes alone;
// paging delivers every envelope once (security finding 6).
func testMaxBytes(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs []mailserver.Record
	for i := range 30 {
		n := 1000
		if i == 7 {
			n = 5000 // larger than the budget on its own
		}
		recs = append(recs, newRecord(t, 9000+uint32(i), topicA, uint64(i), n))
	}
	if err := a.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	want := sorted(recs)
	budget := 4 * len(want[0]) // four of the small ones
	var got [][]byte
	q := mailserver.Query{Upper: math.MaxUint32, Bloom: whisper.FullBloom(), Limit: 1000, MaxBytes: budget}
	for page := 0; ; page++ {
		envs, next, err := a.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, e := range envs {
			size += len(e)
		}
		if len(envs) == 0 || size > budget && len(envs) > 1 {
			t.Fatalf("page %d: %d envelopes, %d bytes, budget %d", page, len(envs), size, budget)
		}
		got = append(got, envs...)
		if len(next) == 0 {
			break
		}
		if len(got) < len(want) && size+len(want[len(got)]) <= budget {
			t.Fatalf("page %d: ended at %d bytes though the next envelope (%d bytes) fits in %d", page, size, len(want[len(got)]), budget)
		}
		if page > 30 {
			t.Fatal("cursor does not advance")
		}
		q.Cursor = next
	}
	equalEnvelopes(t, "byte-bounded pages concatenated", got, want)
}

// testTopics: a topic list selects exactly those topics, whatever the bloom says, in
// archive order, across cursor pages and byte-bounded pages, by the merge statement
// (up to maxMergeTopics topics) and by the range scan (more) alike.
func testTopics(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	topics := make([]whisper.Topic, 100)
	for i := range topics {
		topics[i] = whisper.TopicFromName(fmt.Sprintf("t%d", i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var recs []mailserver.Record
	for i := range 3000 {
		// Several envelopes per second, so that pages end inside a second.
		recs = append(recs, newRecord(t, 10000+uint32(rng.IntN(600)), topics[rng.IntN(len(topics))], uint64(i), 20+rng.IntN(200)))
	}
	if err := a.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	want := func(ts []whisper.Topic, lower, upper uint32) [][]byte {
		var w []mailserver.Record
		for _, r := range recs {
			if slices.Contains(ts, r.Topic) && r.Created >= lower && r.Created <= upper {
				w = append(w, r)
			}
		}
		return sorted(w)
	}
	page := func(q mailserver.Query) [][]byte {
		var got [][]byte
		for n := 0; ; n++ {
			envs, next, err := a.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(next) > 0 && len(envs) < q.Limit && q.MaxBytes == 0 {
				t.Fatalf("page %d: %d envelopes with a cursor, limit %d", n, len(envs), q.Limit)
			}
			got = append(got, envs...)
			if len(next) == 0 {
				return got
			}
			if n > 3000 {
				t.Fatal("cursor does not advance")
			}
			q.Cursor = next
		}
	}
	none := whisper.BloomOf(whisper.TopicFromName("nothing archived"))
	for _, tc := range []struct {
		name         string
		topics       []whisper.Topic
		lower, upper uint32
		limit, bytes int
	}{
		{"one topic", topics[3:4], 0, math.MaxUint32, 7, 0},
		{"three topics, a range", []whisper.Topic{topics[5], topics[50], topics[99]}, 10100, 10400, 10, 0},
		{"merge bound", topics[:maxMergeTopics], 0, math.MaxUint32, 500, 0},
		{"range scan", topics[:maxMergeTopics+1], 0, math.MaxUint32, 500, 0},
		{"byte bound", topics[10:20], 0, math.MaxUint32, 1000, 2000},
		{"absent topic", []whisper.Topic{whisper.TopicFromName("absent")}, 0, math.MaxUint32, 10, 0},
	} {
		q := mailserver.Query{Lower: tc.lower, Upper: tc.upper, Bloom: none, Topics: tc.topics, Limit: tc.limit, MaxBytes: tc.bytes}
		equalEnvelopes(t, tc.name, page(q), want(tc.topics, tc.lower, tc.upper))
	}
	// A cursor from a bloom query resumes a topic query at the same place: cursors name
	// positions in the archive, not queries.
	all := want(topics[:1], 0, math.MaxUint32)
	env, err := whisper.DecodeEnvelope(all[2])
	if err != nil {
		t.Fatal(err)
	}
	envs, _, err := a.Query(ctx, mailserver.Query{Upper: math.MaxUint32, Topics: topics[:1], Limit: 1000, Cursor: mailserver.CursorOf(env.Sent(), env.Hash())})
	if err != nil {
		t.Fatal(err)
	}
	equalEnvelopes(t, "resumed after the third", envs, all[3:])
}

func testMalformedQuery(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	for _, n := range []int{1, 32, mailserver.CursorLength - 1, mailserver.CursorLength + 4} {
		_, _, err := a.Query(ctx, mailserver.Query{Upper: 10, Bloom: whisper.FullBloom(), Limit: 10, Cursor: make([]byte, n)})
		if !errors.Is(err, ErrMalformedCursor) {
			t.Errorf("cursor of %d bytes: err %v, want ErrMalformedCursor", n, err)
		}
	}
	if _, _, err := a.Query(ctx, mailserver.Query{Upper: 10, Bloom: whisper.FullBloom()}); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("limit 0: err %v, want ErrInvalidQuery", err)
	}
}

func testPrune(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs []mailserver.Record
	for c := uint32(100); c < 110; c++ {
		recs = append(recs, newRecord(t, c, topicA, uint64(c), 10))
	}
	if err := a.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		before time.Time
		n      int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(-5, 0), 0},
		{time.Unix(105, 0), 5},               // 100..104
		{time.Unix(105, 0), 0},               // again: nothing left before 105
		{time.Unix(106, 1), 2},               // 105 and 106 (106 < 106.000000001)
		{time.Unix(math.MaxUint32+10, 0), 3}, // 107..109
	} {
		n, err := a.Prune(ctx, step.before)
		if err != nil || n != step.n {
			t.Fatalf("prune before %v: %d, %v; want %d", step.before.Unix(), n, err, step.n)
		}
		if step.before.Unix() == 105 {
			equalEnvelopes(t, "after prune", queryAll(t, a, 0, math.MaxUint32, whisper.FullBloom()), sorted(recs[5:]))
		}
	}
	equalEnvelopes(t, "after pruning all", queryAll(t, a, 0, math.MaxUint32, whisper.FullBloom()), nil)
}

// testPruneBytes: the archive's size cap drops the oldest envelopes, in (created,
// hash) order, until the envelopes kept hold at most the cap.
func testPruneBytes(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs []mailserver.Record
	for c := uint32(100); c < 120; c++ {
		recs = append(recs, newRecord(t, c, topicA, uint64(c), 1000))
	}
	if err := a.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// newest(k) is the bytes of the k newest envelopes in archive order.
	order := sorted(recs)
	newest := func(k int) int64 {
		var n int64
		for _, e := range order[len(order)-k:] {
			n += int64(len(e))
		}
		return n
	}
	for _, step := range []struct {
		max  int64
		n    int64
		kept int
	}{
		{0, 0, 20},               // no cap
		{10 * newest(20), 0, 20}, // under the cap
		{newest(20), 0, 20},      // exactly at it
		{newest(15) + 10, 5, 15}, // the 15 newest fit, not 16
		{newest(1), 14, 1},
	} {
		n, err := a.PruneBytes(ctx, step.max)
		if err != nil || n != step.n {
			t.Fatalf("prune to %d bytes: %d, %v; want %d", step.max, n, err, step.n)
		}
		equalEnvelopes(t, fmt.Sprintf("after pruning to %d bytes", step.max),
			queryAll(t, a, 0, math.MaxUint32, whisper.FullBloom()), order[len(order)-step.kept:])
	}
}

func testReopen(t *testing.T, be backend) {
	ctx := context.Background()
	cfg := be.config(t)
	ms, err := loadMigrations(be.name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.applied != len(ms) {
		t.Fatalf("first open applied %d migrations, want %d", s.applied, len(ms))
	}
	rec := newRecord(t, 42, topicA, 1, 10)
	if err := s.Archive().Put(ctx, []mailserver.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg)
	if s.applied != 0 {
		t.Fatalf("reopen applied %d migrations, want 0", s.applied)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("schema_migrations: %d rows (%v), want %d", n, err, len(ms))
	}
	equalEnvelopes(t, "after reopen", queryAll(t, s.Archive(), 0, math.MaxUint32, whisper.FullBloom()), [][]byte{rec.Envelope})
}

// testConcurrentPut writes overlapping batches from several goroutines (run with -race;
// on SQLite the writers queue on the busy timeout).
func testConcurrentPut(t *testing.T, be backend) {
	ctx := context.Background()
	a := openStore(t, be.config(t)).Archive()
	var recs []mailserver.Record
	for i := range 400 {
		recs = append(recs, newRecord(t, 9000+uint32(i%50), topicA, uint64(i), 40))
	}
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			// Each writer puts a window of 200 records in batches of 16: windows overlap.
			mine := recs[w*25 : w*25+200]
			for i := 0; i < len(mine) && errs[w] == nil; i += 16 {
				errs[w] = a.Put(ctx, mine[i:min(i+16, len(mine))])
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	equalEnvelopes(t, "after concurrent puts", queryAll(t, a, 0, math.MaxUint32, whisper.FullBloom()), sorted(recs[:7*25+200]))
}

func TestMigrations_sameSetPerDialect(t *testing.T) {
	var names [][]string
	for _, d := range []string{DriverSQLite, DriverPostgres} {
		ms, err := loadMigrations(d)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, m := range ms {
			n = append(n, fmt.Sprintf("%04d_%s", m.version, m.name))
		}
		names = append(names, n)
	}
	if !slices.Equal(names[0], names[1]) {
		t.Fatalf("sqlite migrations %v, postgres %v", names[0], names[1])
	}
}

func TestConfig_validate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{Path: "x.db"}, true},
		{Config{}, false},
		{Config{Driver: DriverPostgres}, false},
		{Config{Driver: DriverPostgres, DSN: "host=x"}, true},
		{Config{Driver: "mysql", DSN: "x"}, false},
		{Config{Path: "x.db", MaxBytes: 1 << 30}, true},
		{Config{Path: "x.db", MaxBytes: 1000}, false}, // below the schema
		{Config{Path: "x.db", MaxBytes: -1}, false},
		{Config{Driver: DriverPostgres, DSN: "host=x", MaxBytes: 1 << 30}, false}, // sqlite only
	} {
		err := tc.cfg.withDefaults().Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}
