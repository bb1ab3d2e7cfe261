-- How far each chat's history has been fetched from mailservers (mailserver.SyncState).
-- Times are Unix nanoseconds; cursor and to_time are set only for an interrupted range.
CREATE TABLE mailserver_sync (
	chat     TEXT    NOT NULL PRIMARY KEY,
	covered  INTEGER NOT NULL,
	cursor   BLOB,
	to_time  INTEGER
);
