-- The secure transport (ratchet.Store): per owner (the compressed public key of the
-- identity a core/ratchet.Ratchet serves: the gateway's or a puppet's) its installation
-- id, its signed prekeys, the installations of every identity it met, its Double Ratchet
-- sessions with their stored message keys, and the negotiated-secret bookkeeping. Keys
-- are compressed secp256k1 public keys; times are Unix nanoseconds.
CREATE TABLE ratchet_owners (
	owner           BLOB    PRIMARY KEY,
	installation_id TEXT    NOT NULL,
	contact_code_at INTEGER NOT NULL DEFAULT 0
);
-- Our own signed prekeys, every version: a peer may start a session from an old bundle.
CREATE TABLE ratchet_prekeys (
	owner       BLOB    NOT NULL,
	public_key  BLOB    NOT NULL,
	private_key BLOB    NOT NULL,
	version     INTEGER NOT NULL,
	created     INTEGER NOT NULL,
	PRIMARY KEY (owner, public_key)
);
-- Installations of an identity as its newest bundle described them (at most 3 kept).
CREATE TABLE ratchet_devices (
	owner            BLOB    NOT NULL,
	identity         BLOB    NOT NULL,
	installation_id  TEXT    NOT NULL,
	signed_pre_key   BLOB    NOT NULL,
	prekey_version   INTEGER NOT NULL,
	protocol_version INTEGER NOT NULL,
	bundle_ts        INTEGER NOT NULL,
	enabled          INTEGER NOT NULL,
	PRIMARY KEY (owner, identity, installation_id)
);
-- One X3DH-started Double Ratchet session with one peer installation, and its state.
CREATE TABLE ratchet_sessions (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	owner           BLOB    NOT NULL,
	peer            BLOB    NOT NULL,
	installation_id TEXT    NOT NULL,
	bundle_id       BLOB    NOT NULL,
	ephemeral       BLOB    NOT NULL,
	initiator       INTEGER NOT NULL,
	confirmed       INTEGER NOT NULL,
	retired         INTEGER NOT NULL,
	sk              BLOB    NOT NULL,
	created         INTEGER NOT NULL,
	dhr             BLOB    NOT NULL,
	dhs_public      BLOB    NOT NULL,
	dhs_private     BLOB    NOT NULL,
	root_key        BLOB    NOT NULL,
	send_key        BLOB    NOT NULL,
	send_n          INTEGER NOT NULL,
	recv_key        BLOB    NOT NULL,
	recv_n          INTEGER NOT NULL,
	pn              INTEGER NOT NULL,
	step            INTEGER NOT NULL,
	keys_count      INTEGER NOT NULL
);
CREATE INDEX ratchet_sessions_by_peer ON ratchet_sessions (owner, peer, installation_id, id);
-- Receiving message keys: skipped ones, and used ones until the message is processed.
CREATE TABLE ratchet_keys (
	session_id  INTEGER NOT NULL,
	dh          BLOB    NOT NULL,
	n           INTEGER NOT NULL,
	message_key BLOB    NOT NULL,
	seq         INTEGER NOT NULL,
	PRIMARY KEY (session_id, dh, n)
);
CREATE INDEX ratchet_keys_by_seq ON ratchet_keys (session_id, seq);
-- Peers we hold a negotiated secret with (listen on its topic).
CREATE TABLE ratchet_secret_peers (
	owner BLOB NOT NULL,
	peer  BLOB NOT NULL,
	PRIMARY KEY (owner, peer)
);
-- Installations of a peer that confirmed the negotiated secret.
CREATE TABLE ratchet_agreed (
	owner           BLOB NOT NULL,
	peer            BLOB NOT NULL,
	installation_id TEXT NOT NULL,
	PRIMARY KEY (owner, peer, installation_id)
);
