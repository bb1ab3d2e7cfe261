-- The remote ratchet keys of a session's previous receiving chains older than the 16 in
-- ratchet_sessions.prev_dhr (at most core/ratchet Config.OldChains per session, the
-- oldest dropped first): a message of such a chain whose key is gone is a replay.
CREATE TABLE ratchet_old_chains (
	session_id INTEGER NOT NULL,
	dh         BLOB    NOT NULL,
	seq        INTEGER NOT NULL,
	PRIMARY KEY (session_id, dh)
);
CREATE INDEX ratchet_old_chains_by_seq ON ratchet_old_chains (session_id, seq);
