-- The secure transport (ratchet.Store): per owner (the compressed public key of the
-- identity a core/ratchet.Ratchet serves: the gateway's or a puppet's) its installation
-- id, its signed prekeys, the installations of every identity it met, its Double Ratchet
-- sessions with their stored message keys, and the negotiated-secret bookkeeping. Keys
-- are compressed secp256k1 public keys; times are Unix nanoseconds.
CREATE TABLE ratchet_owners (
	owner           BYTEA   PRIMARY KEY,
	installation_id TEXT    NOT NULL,
	contact_code_at BIGINT  NOT NULL DEFAULT 0
);
-- Our own signed prekeys, every version: a peer may start a session from an old bundle.
CREATE TABLE ratchet_prekeys (
	owner       BYTEA   NOT NULL,
	public_key  BYTEA   NOT NULL,
	private_key BYTEA   NOT NULL,
	version     BIGINT  NOT NULL,
	created     BIGINT  NOT NULL,
	PRIMARY KEY (owner, public_key)
);
-- Installations of an identity as its newest bundle described them (at most 3 kept).
CREATE TABLE ratchet_devices (
	owner            BYTEA   NOT NULL,
	identity         BYTEA   NOT NULL,
	installation_id  TEXT    NOT NULL,
	signed_pre_key   BYTEA   NOT NULL,
	prekey_version   BIGINT  NOT NULL,
	protocol_version BIGINT  NOT NULL,
	bundle_ts        BIGINT  NOT NULL,
	enabled          BOOLEAN NOT NULL,
	PRIMARY KEY (owner, identity, installation_id)
);
-- One X3DH-started Double Ratchet session with one peer installation, and its state.
CREATE TABLE ratchet_sessions (
	id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner           BYTEA   NOT NULL,
	peer            BYTEA   NOT NULL,
	installation_id TEXT    NOT NULL,
	bundle_id       BYTEA   NOT NULL,
	ephemeral       BYTEA   NOT NULL,
	initiator       BOOLEAN NOT NULL,
	confirmed       BOOLEAN NOT NULL,
	retired         BOOLEAN NOT NULL,
	sk              BYTEA   NOT NULL,
	created         BIGINT  NOT NULL,
	dhr             BYTEA   NOT NULL,
	dhs_public      BYTEA   NOT NULL,
	dhs_private     BYTEA   NOT NULL,
	root_key        BYTEA   NOT NULL,
	send_key        BYTEA   NOT NULL,
	send_n          BIGINT  NOT NULL,
	recv_key        BYTEA   NOT NULL,
	recv_n          BIGINT  NOT NULL,
	pn              BIGINT  NOT NULL,
	step            BIGINT  NOT NULL,
	keys_count      BIGINT  NOT NULL
);
CREATE INDEX ratchet_sessions_by_peer ON ratchet_sessions (owner, peer, installation_id, id);
-- Receiving message keys: skipped ones, and used ones until the message is processed.
CREATE TABLE ratchet_keys (
	session_id  BIGINT  NOT NULL,
	dh          BYTEA   NOT NULL,
	n           BIGINT  NOT NULL,
	message_key BYTEA   NOT NULL,
	seq         BIGINT  NOT NULL,
	PRIMARY KEY (session_id, dh, n)
);
CREATE INDEX ratchet_keys_by_seq ON ratchet_keys (session_id, seq);
-- Peers we hold a negotiated secret with (listen on its topic).
CREATE TABLE ratchet_secret_peers (
	owner BYTEA NOT NULL,
	peer  BYTEA NOT NULL,
	PRIMARY KEY (owner, peer)
);
-- Installations of a peer that confirmed the negotiated secret.
CREATE TABLE ratchet_agreed (
	owner           BYTEA NOT NULL,
	peer            BYTEA NOT NULL,
	installation_id TEXT NOT NULL,
	PRIMARY KEY (owner, peer, installation_id)
);
