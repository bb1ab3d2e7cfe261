-- The remote ratchet keys of a session's previous receiving chains (newest first, 33
-- bytes each, at most 16): a message of such a chain whose key is gone is a replay.
ALTER TABLE ratchet_sessions ADD COLUMN prev_dhr BLOB NOT NULL DEFAULT X'';
