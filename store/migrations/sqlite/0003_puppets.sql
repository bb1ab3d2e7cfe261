-- The puppet registry (puppet.Record): one row per remote user the gateway speaks for.
-- No private key is stored; keys are re-derived from the gateway secret. Times are Unix
-- nanoseconds.
CREATE TABLE puppets (
	network      TEXT    NOT NULL,
	account      TEXT    NOT NULL,
	remote_user  TEXT    NOT NULL,
	chat_key     TEXT    NOT NULL UNIQUE,
	display_name TEXT    NOT NULL DEFAULT '',
	first_seen   INTEGER NOT NULL,
	last_seen    INTEGER NOT NULL,
	PRIMARY KEY (network, account, remote_user)
);
CREATE INDEX puppets_by_user ON puppets (network, remote_user);
