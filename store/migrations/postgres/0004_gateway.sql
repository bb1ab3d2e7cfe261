-- The gateway ledger (gateway.Ledger): every accepted event, one ordered outbox per
-- destination channel, and the message map that ties each event to its IDs on every
-- network. Times are Unix nanoseconds (0: none, or for next_attempt: now).
-- Identity columns never reuse IDs; IngestEvent takes an advisory lock so that outbox
-- IDs are also allocated in commit order (dispatchers page by "id > after").
CREATE TABLE gateway_events (
	id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	network  TEXT   NOT NULL,
	channel  TEXT   NOT NULL,
	msg_id   TEXT   NOT NULL DEFAULT '',
	kind     TEXT   NOT NULL,
	body     BYTEA  NOT NULL,
	received BIGINT NOT NULL
);
-- clock is a uint64 Lamport clock kept below 2^63 (the store rejects larger ones).
CREATE TABLE gateway_outbox (
	id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id     BIGINT  NOT NULL REFERENCES gateway_events (id),
	dest         TEXT    NOT NULL,
	idem_key     TEXT    NOT NULL,
	clock        BIGINT  NOT NULL DEFAULT 0 CHECK (clock >= 0),
	state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt BIGINT  NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	done_at      BIGINT  NOT NULL DEFAULT 0
);
-- PendingEntries and CountPending: the pending entries of one destination in ID order.
CREATE INDEX gateway_outbox_pending ON gateway_outbox (dest, id) WHERE state = 'pending';
-- (channel, msg_id) → event: the origin's ID and each delivered copy's. id orders an
-- event's IDs in one channel by insertion.
CREATE TABLE gateway_msgmap (
	id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id BIGINT NOT NULL REFERENCES gateway_events (id),
	channel  TEXT   NOT NULL,
	msg_id   TEXT   NOT NULL,
	UNIQUE (channel, msg_id)
);
CREATE INDEX gateway_msgmap_event ON gateway_msgmap (event_id, channel, id);
