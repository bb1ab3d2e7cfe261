-- The archive keyed by (created, hash), the order history queries scan, instead of a
-- hash key plus a (created, hash) index: one index to maintain per insert instead of
-- two. The hash alone stays unique: created is part of the hashed bytes (Expiry − TTL),
-- so equal hashes have equal created and ON CONFLICT (created, hash) deduplicates as
-- the hash key did. (SQLite's migration also clusters the rows in that order.)
ALTER TABLE envelopes DROP CONSTRAINT envelopes_pkey;
DROP INDEX envelopes_created_hash;
ALTER TABLE envelopes ADD PRIMARY KEY (created, hash);
