package sqlitebench

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3" // "sqlite3"
	_ "modernc.org/sqlite"          // "sqlite"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
)

// drivers open a SQLite file with the settings store.Open uses: WAL, 5 s busy timeout,
// foreign keys, BEGIN IMMEDIATE, and the synchronous level given (each driver has its own
// default: mattn sets NORMAL, modernc keeps SQLite's FULL, so it is always explicit).
var drivers = []struct {
	name, driver string
	dsn          func(path, sync string) string
}{
	{"mattn", "sqlite3", func(p, sync string) string {
		return "file:" + p + "?_journal_mode=WAL&_synchronous=" + sync + "&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate"
	}},
	{"modernc", "sqlite", func(p, sync string) string {
		return "file:" + p + "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_txlock=immediate"
	}},
}

// syncs are the synchronous levels measured: NORMAL (WAL synced at checkpoints, durable
// across process crashes) and FULL (WAL synced at every commit, durable across power loss).
var syncs = []string{"NORMAL", "FULL"}

const (
	count     = 10000 // envelopes per op
	dataLen   = 600   // envelope Data bytes (≈ 620-byte envelopes)
	batch     = 64    // records per Put
	queryPage = 1000  // Query limit
	t0        = 1575000000
)

func records(tb testing.TB) []mailserver.Record {
	topic := whisper.TopicFromName("status")
	data := make([]byte, dataLen)
	recs := make([]mailserver.Record, count)
	for j := range recs {
		created := uint32(t0 + j*3600/count)
		env, err := whisper.NewEnvelope(created+15, 15, topic, data, uint64(j))
		if err != nil {
			tb.Fatal(err)
		}
		recs[j] = mailserver.RecordOf(env)
	}
	return recs
}

func open(tb testing.TB, driver, dsn string) *store.Store {
	tb.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := store.OpenDB(context.Background(), db, store.DriverSQLite)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func put(tb testing.TB, a *store.Archive, recs []mailserver.Record) {
	for i := 0; i < len(recs); i += batch {
		if err := a.Put(context.Background(), recs[i:min(i+batch, len(recs))]); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkPut10K: one op puts 10,000 envelopes, 64 per Put, into a fresh file.
func BenchmarkPut10K(b *testing.B) {
	recs := records(b)
	for _, d := range drivers {
		for _, sync := range syncs {
			b.Run(d.name+"/"+sync, func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					b.StopTimer()
					a := open(b, d.driver, d.dsn(filepath.Join(b.TempDir(), "put.db"), sync)).Archive()
					b.StartTimer()
					put(b, a, recs)
				}
				b.ReportMetric(float64(b.N)*count/b.Elapsed().Seconds(), "envelopes/s")
			})
		}
	}
}

// BenchmarkQuery10K: one op reads all 10,000 envelopes in pages of 1000 (topic bloom).
func BenchmarkQuery10K(b *testing.B) {
	recs := records(b)
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			a := open(b, d.driver, d.dsn(filepath.Join(b.TempDir(), "query.db"), "NORMAL")).Archive()
			put(b, a, recs)
			q := mailserver.Query{Lower: t0, Upper: t0 + 3600, Bloom: recs[0].Topic.Bloom(), Limit: queryPage}
			b.ResetTimer()
			for range b.N {
				q.Cursor = nil
				n := 0
				for {
					envs, next, err := a.Query(context.Background(), q)
					if err != nil {
						b.Fatal(err)
					}
					n += len(envs)
					if len(next) == 0 {
						break
					}
					q.Cursor = next
				}
				if n != count {
					b.Fatalf("%d envelopes, want %d", n, count)
				}
			}
			b.ReportMetric(float64(b.N)*count/b.Elapsed().Seconds(), "envelopes/s")
		})
	}
}
