// Package sqlitebench is a benchmark-only module: it measures the two SQLite drivers
// considered for package store, mattn/go-sqlite3 (cgo) and modernc.org/sqlite (pure Go,
// transpiled C), on the mailserver archive workload, through store.OpenDB so both run
// the product's schema and queries. The product keeps only the chosen driver; this
// module exists so the decision in docs/benchmarks.md ("SQLite driver") can be re-run:
//
//	cd store/sqlitebench && go test -run '^$' -bench . -benchmem -count 3
//
// It is a separate module (replace ../..) so the rejected driver never enters the main
// module's dependencies; `go test ./...` from the root does not run it.
package sqlitebench
