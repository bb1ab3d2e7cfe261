-- The peer identities each owner keeps secure-transport state about (installations,
-- sessions, agreed installations, negotiated secret), for the bound on their number
-- (core/ratchet Config.MaxPeers): when a new one would pass it, the least recently used
-- one that is not pinned is forgotten with all its rows. pinned: the local user opened
-- or started a conversation with it (never evicted). last_seen is Unix nanoseconds.
CREATE TABLE ratchet_peers (
	owner     BLOB    NOT NULL,
	peer      BLOB    NOT NULL,
	last_seen INTEGER NOT NULL,
	pinned    INTEGER NOT NULL,
	PRIMARY KEY (owner, peer)
);
CREATE INDEX ratchet_peers_lru ON ratchet_peers (owner, pinned, last_seen);
-- Peers of existing rows, least recently used of all; those we hold a negotiated
-- secret with (we sent them a message) are pinned.
INSERT INTO ratchet_peers (owner, peer, last_seen, pinned)
SELECT owner, peer, 0, MAX(pinned) FROM (
	SELECT owner, identity AS peer, 0 AS pinned FROM ratchet_devices
	UNION ALL SELECT owner, peer, 0 FROM ratchet_sessions
	UNION ALL SELECT owner, peer, 0 FROM ratchet_agreed
	UNION ALL SELECT owner, peer, 1 FROM ratchet_secret_peers
) t WHERE peer <> owner GROUP BY owner, peer;
