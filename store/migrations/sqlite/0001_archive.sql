-- The mailserver archive (PROTOCOL.md §4.5): one row per envelope, keyed by hash,
-- scanned in (created, hash) order. created is Expiry − TTL in Unix seconds (uint32).
CREATE TABLE envelopes (
	created  INTEGER NOT NULL,
	hash     BLOB    NOT NULL PRIMARY KEY,
	topic    BLOB    NOT NULL,
	envelope BLOB    NOT NULL
);
CREATE INDEX envelopes_created_hash ON envelopes (created, hash);
