-- The negotiated topic's Whisper key (PBKDF2 of the secret's hex, 65,356 rounds), kept
-- so that a start joins every negotiated topic without deriving each key again. NULL
-- until derived; as secret as the session keys beside it.
ALTER TABLE ratchet_secret_peers ADD COLUMN topic_key BLOB;
