-- The archive clustered in scan order: one B-tree keyed by (created, hash), which
-- history queries read as a range, instead of a rowid table with two indexes (hash and
-- (created, hash)). Every insert touched three trees, one of them (hash) at a random
-- place; now one, mostly at its end. The hash alone stays unique: created is part of the
-- hashed bytes (Expiry − TTL), so equal hashes have equal created and
-- ON CONFLICT (created, hash) deduplicates as the hash key did.
CREATE TABLE envelopes_clustered (
	created  INTEGER NOT NULL,
	hash     BLOB    NOT NULL,
	topic    BLOB    NOT NULL,
	envelope BLOB    NOT NULL,
	PRIMARY KEY (created, hash)
) WITHOUT ROWID;
INSERT INTO envelopes_clustered (created, hash, topic, envelope)
	SELECT created, hash, topic, envelope FROM envelopes;
DROP TABLE envelopes;
ALTER TABLE envelopes_clustered RENAME TO envelopes;
