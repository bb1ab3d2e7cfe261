-- The route table (gateway routes at run time): a Status conversation and its remote
-- channels. Routes of the configuration file are loaded into it at every start; the
-- admin API adds and removes others. kind names what chat is ("public": a public chat's
-- name); a channel is in one route at most.
CREATE TABLE gateway_routes (
	chat      TEXT NOT NULL PRIMARY KEY,
	kind      TEXT NOT NULL DEFAULT 'public',
	long_text TEXT NOT NULL DEFAULT '',
	source    TEXT NOT NULL DEFAULT 'api'
);
CREATE TABLE gateway_route_channels (
	channel   TEXT NOT NULL PRIMARY KEY,
	chat      TEXT NOT NULL REFERENCES gateway_routes (chat) ON DELETE CASCADE,
	direction TEXT NOT NULL DEFAULT 'both',
	position  INTEGER NOT NULL
);
CREATE INDEX gateway_route_channels_chat ON gateway_route_channels (chat, position);
