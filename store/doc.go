// Package store persists the gateway's state in SQL: SQLite (the embedded default, one
// file in WAL mode) or PostgreSQL (shared, for scale), with the same semantics on both.
// Open applies the embedded, numbered migrations (migrations/<dialect>/NNNN_name.sql) in
// one transaction and records them in schema_migrations, so reopening is idempotent.
//
// The store implements the small storage interfaces its consumers define
// (mailserver.Archive in archive.go, mailserver.SyncStore in sync.go, puppet.Store in
// puppets.go, ratchet.Store in ratchet.go, and gateway.Ledger — events, per-destination
// outboxes and the message map — in ledger.go); it holds no business logic, and it must
// not import core/gateway, core/status or any connector. Both backends run the same test
// suite (store_test.go; PostgreSQL through test/pgtest).
//
// Durability: on SQLite every table but the archive is written at synchronous FULL (the
// delivery ledger, outboxes, puppets, sessions: a commit is on disk when it returns).
// The archive writes through a pool of its own at synchronous NORMAL and becomes durable
// at Archive.Checkpoint, which the mailserver calls every
// mailserver.DefaultCheckpointInterval (20 ms): on power loss the archive may trail by
// that bounded few milliseconds; a process crash loses nothing committed. On PostgreSQL
// every commit is durable.
package store
