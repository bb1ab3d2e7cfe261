-- The remote ratchet keys of a session's previous receiving chains older than the 16 in
-- ratchet_sessions.prev_dhr (at most core/ratchet Config.OldChains per session, the
-- oldest dropped first): a message of such a chain whose key is gone is a replay.
CREATE TABLE ratchet_old_chains (
	session_id BIGINT NOT NULL,
	dh         BYTEA  NOT NULL,
	seq        BIGINT NOT NULL,
	PRIMARY KEY (session_id, dh)
);
CREATE INDEX ratchet_old_chains_by_seq ON ratchet_old_chains (session_id, seq);
