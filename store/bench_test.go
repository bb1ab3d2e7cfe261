package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/whisper"
)

// The archive workloads mirror test/reference's twins (geth v1.9.20's LevelDB
// mailserver, "ArchiveIngest" and "HistoryQuery10K"): envelopes of topic "status" with
// 600 bytes of data and TTL 15, created times spread over [benchT0, benchT0+benchSpan).
const (
	benchDataLen = 600
	benchTTL     = 15
	benchT0      = 1575000000
	benchSpan    = 3600
	historyCount = 10000
	historyLimit = 2000 // the Status client's first request limit (PROTOCOL.md §4.6)
)

func benchRecords(tb testing.TB, n int) []mailserver.Record {
	envs := benchEnvelopes(tb, n)
	recs := make([]mailserver.Record, n)
	for j, env := range envs {
		recs[j] = mailserver.RecordOf(env)
	}
	return recs
}

func benchEnvelopes(tb testing.TB, n int) []*whisper.Envelope {
	topic := whisper.TopicFromName("status")
	data := make([]byte, benchDataLen)
	for i := range data {
		data[i] = byte(i * 7)
	}
	envs := make([]*whisper.Envelope, n)
	for j := range envs {
		created := uint32(benchT0 + uint64(j)*benchSpan/uint64(n))
		env, err := whisper.NewEnvelope(created+benchTTL, benchTTL, topic, data, uint64(j))
		if err != nil {
			tb.Fatal(err)
		}
		envs[j] = env
	}
	return envs
}

// BenchmarkArchiveIngest archives b.N envelopes (one op = one envelope) into a fresh
// store through the product's path, as the node hands them over: mailserver.Server's
// Archive per envelope (geth's twin calls WMailServer.Archive per envelope), its writer
// committing whatever is queued at each flush in one transaction (group commit). The
// clock stops when Run has returned, i.e. every envelope is committed (on SQLite, synced
// to the WAL: synchronous FULL).
func BenchmarkArchiveIngest(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			b.ReportAllocs()
			envs := benchEnvelopes(b, b.N)
			srv, err := mailserver.NewServer(openStore(b, be.config(b)).Archive(), mailserver.ServerConfig{Retention: 100 * 365 * 24 * time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ResetTimer()
			go func() { done <- srv.Run(ctx) }()
			for _, env := range envs {
				srv.Archive(env)
			}
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if st := srv.Stats(); st.Archived != uint64(b.N) || st.Lost != 0 {
				b.Fatalf("archived %d, lost %d of %d", st.Archived, st.Lost, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
		})
	}
}

// BenchmarkHistoryQuery10K is one history request over historyCount stored envelopes
// (one op): Query with the topic's bloom at Limit historyLimit, following the cursor
// until it is empty.
func BenchmarkHistoryQuery10K(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			recs := benchRecords(b, historyCount)
			a := openStore(b, be.config(b)).Archive()
			for i := 0; i < len(recs); i += 1000 {
				if err := a.Put(ctx, recs[i:i+1000]); err != nil {
					b.Fatal(err)
				}
			}
			q := mailserver.Query{Lower: benchT0, Upper: benchT0 + benchSpan, Bloom: recs[0].Topic.Bloom(), Limit: historyLimit}
			b.ResetTimer()
			for range b.N {
				q.Cursor = nil
				got := 0
				for {
					envs, next, err := a.Query(ctx, q)
					if err != nil {
						b.Fatal(err)
					}
					got += len(envs)
					if len(next) == 0 {
						break
					}
					q.Cursor = next
				}
				if got != historyCount {
					b.Fatalf("query returned %d envelopes, want %d", got, historyCount)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*historyCount/b.Elapsed().Seconds(), "envelopes/s")
		})
	}
}

// The topic-list workload: a busy mailserver's archive of topicsArchived envelopes
// spread over topicsCount topics, and a client that follows topicsAsked of them (its
// chats), asking for the whole range at status-go's page limit.
const (
	topicsArchived = 50000
	topicsCount    = 500
	topicsAsked    = 10
	topicsLimit    = 1000 // status-go's maximum
)

// BenchmarkHistoryQueryTopics is one history request (one op, following cursors to the
// end) for topicsAsked topics out of topicsCount over topicsArchived envelopes, in the
// two forms a status-go client may send: "bloom" (the late-2019 payload and the
// Messenger's struct: the OR of the topics' blooms, a range scan filtered row by row,
// false positives included) and "topics" (the payload with Topics, status-go from
// bc2d0184: exactly those topics, one index range each, merged by the database).
func BenchmarkHistoryQueryTopics(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			topics := make([]whisper.Topic, topicsCount)
			for i := range topics {
				topics[i] = whisper.TopicFromName(fmt.Sprintf("chat %d", i))
			}
			data := make([]byte, benchDataLen)
			recs := make([]mailserver.Record, topicsArchived)
			for j := range recs {
				created := uint32(benchT0 + uint64(j)*benchSpan/topicsArchived)
				env, err := whisper.NewEnvelope(created+benchTTL, benchTTL, topics[j%topicsCount], data, uint64(j))
				if err != nil {
					b.Fatal(err)
				}
				recs[j] = mailserver.RecordOf(env)
			}
			a := openStore(b, be.config(b)).Archive()
			for i := 0; i < len(recs); i += 1000 {
				if err := a.Put(ctx, recs[i:i+1000]); err != nil {
					b.Fatal(err)
				}
			}
			asked := topics[:topicsAsked]
			want := topicsArchived / topicsCount * topicsAsked
			for _, form := range []struct {
				name string
				q    mailserver.Query
			}{
				{"bloom", mailserver.Query{Lower: benchT0, Upper: benchT0 + benchSpan, Bloom: whisper.BloomOf(asked...), Limit: topicsLimit}},
				{"topics", mailserver.Query{Lower: benchT0, Upper: benchT0 + benchSpan, Bloom: whisper.BloomOf(asked...), Topics: asked, Limit: topicsLimit}},
			} {
				b.Run(form.name, func(b *testing.B) {
					b.ReportAllocs()
					q := form.q
					got := 0
					for range b.N {
						q.Cursor, got = nil, 0
						for {
							envs, next, err := a.Query(ctx, q)
							if err != nil {
								b.Fatal(err)
							}
							got += len(envs)
							if len(next) == 0 {
								break
							}
							q.Cursor = next
						}
					}
					b.StopTimer()
					if got < want || form.name == "topics" && got != want {
						b.Fatalf("%d envelopes, want %d (the bloom may add false positives)", got, want)
					}
					b.ReportMetric(float64(b.N)*float64(want)/b.Elapsed().Seconds(), "envelopes/s")
					b.ReportMetric(float64(got), "returned")
				})
			}
		})
	}
}
