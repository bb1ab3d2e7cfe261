-- The mailserver archive (PROTOCOL.md §4.5): one row per envelope, keyed by hash,
-- scanned in (created, hash) order. created is Expiry − TTL in Unix seconds: a uint32,
-- so BIGINT (PostgreSQL's INTEGER is signed 32-bit). bytea sorts like SQLite's BLOB
-- (memcmp, then length), so both backends return the same order.
CREATE TABLE envelopes (
	created  BIGINT NOT NULL CHECK (created BETWEEN 0 AND 4294967295),
	hash     BYTEA  NOT NULL PRIMARY KEY,
	topic    BYTEA  NOT NULL,
	envelope BYTEA  NOT NULL
);
CREATE INDEX envelopes_created_hash ON envelopes (created, hash);
