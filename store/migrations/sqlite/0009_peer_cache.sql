-- The peer pool's cache of good peers (core/peers.Cache): per discovery topic, the nodes
-- the pool connected to (or, for the mailserver topic, found), newest first; it seeds the
-- next start. Bounded per topic by the store (peerCacheLimit). Times are Unix nanoseconds.
CREATE TABLE peer_cache (
	topic    TEXT    NOT NULL,
	node_id  TEXT    NOT NULL,
	enode    TEXT    NOT NULL,
	added_at BIGINT  NOT NULL,
	PRIMARY KEY (topic, node_id)
);
CREATE INDEX peer_cache_by_age ON peer_cache (topic, added_at);
