-- The 1:1 messages each identity of ours (owner: its compressed public key) was given,
-- by Status message id, so that one re-delivered after a restart (from a peer's pool or
-- a mailserver) is not given twice: a DH-mode message decrypts again, it has no key to
-- delete. seen_at is Unix nanoseconds; rows older than the longest history a mailserver
-- serves are pruned (store.SeenRetention).
CREATE TABLE direct_seen (
	owner   BLOB    NOT NULL,
	id      BLOB    NOT NULL,
	seen_at INTEGER NOT NULL,
	PRIMARY KEY (owner, id)
);
CREATE INDEX direct_seen_at ON direct_seen (seen_at);
