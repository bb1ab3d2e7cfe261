-- The gateway ledger (gateway.Ledger): every accepted event, one ordered outbox per
-- destination channel, and the message map that ties each event to its IDs on every
-- network. Times are Unix nanoseconds (0: none, or for next_attempt: now).
-- AUTOINCREMENT: IDs are never reused, even after rows are deleted, so an outbox ID is
-- later than every entry ever recorded (dispatchers page by "id > after").
CREATE TABLE gateway_events (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	network  TEXT    NOT NULL,
	channel  TEXT    NOT NULL,
	msg_id   TEXT    NOT NULL DEFAULT '',
	kind     TEXT    NOT NULL,
	body     BLOB    NOT NULL,
	received INTEGER NOT NULL
);
-- clock is a uint64 Lamport clock kept below 2^63 (the store rejects larger ones).
CREATE TABLE gateway_outbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id     INTEGER NOT NULL REFERENCES gateway_events (id),
	dest         TEXT    NOT NULL,
	idem_key     TEXT    NOT NULL,
	clock        INTEGER NOT NULL DEFAULT 0 CHECK (clock >= 0),
	state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	done_at      INTEGER NOT NULL DEFAULT 0
);
-- PendingEntries and CountPending: the pending entries of one destination in ID order.
CREATE INDEX gateway_outbox_pending ON gateway_outbox (dest, id) WHERE state = 'pending';
-- (channel, msg_id) → event: the origin's ID and each delivered copy's. id orders an
-- event's IDs in one channel by insertion.
CREATE TABLE gateway_msgmap (
	id       INTEGER PRIMARY KEY,
	event_id INTEGER NOT NULL REFERENCES gateway_events (id),
	channel  TEXT    NOT NULL,
	msg_id   TEXT    NOT NULL,
	UNIQUE (channel, msg_id)
);
CREATE INDEX gateway_msgmap_event ON gateway_msgmap (event_id, channel, id);
