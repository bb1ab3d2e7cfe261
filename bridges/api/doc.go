// Package api is the api connector: the simplest way for a bot, a script or a moderator
// tool to take part in a bridged Status chat. It serves a small HTTP API on
// Config.Listen. Clients POST messages, which go to the gateway through
// bridges.Host.Deliver, and read what the gateway sends to the channel as Server-Sent
// Events. It is the connector `make run` enables by default, and the client
// end-to-end tests use it.
//
// It must not import any statusgate package but bridges (test/archtest checks); it
// keeps no state across restarts beyond what its IDs encode.
//
// # Walkthrough
//
// With Config{Token: "s3cret-0123456789", Channels: []string{"status"}}:
//
//	# the channels this connector serves
//	curl -H 'Authorization: Bearer s3cret-0123456789' http://127.0.0.1:8480/v1/channels
//	["status"]
//
//	# follow the channel (-N: no buffering); the stream starts empty
//	curl -N -H 'Authorization: Bearer s3cret-0123456789' \
//	     http://127.0.0.1:8480/v1/channels/status/events
//	id: 1
//	event: message
//	data: {"id":"api:status/3f2a…","kind":"message","channel":"status",
//	       "origin":{"network":"status","channel":"status:…","id":"status:…"},
//	       "sender":{"id":"status:0x04…","name":"Tall Bold Owl"},"text":"hi bots",
//	       "reply_to":"","target":"","reaction":"","time":"2024-05-01T12:00:00.123Z"}
//	(the data line is one line on the wire)
//
//	# resume after event 41, e.g. after a disconnect; browsers send Last-Event-ID
//	# themselves and may pass the token as ?access_token=
//	curl -N -H 'Authorization: Bearer s3cret-0123456789' -H 'Last-Event-ID: 41' \
//	     http://127.0.0.1:8480/v1/channels/status/events
//
//	# post as alice; "id" makes retries idempotent, "reply_to" takes an "id" from SSE
//	curl -H 'Authorization: Bearer s3cret-0123456789' \
//	     -d '{"user":"alice","name":"Alice","text":"hello","id":"m-1"}' \
//	     http://127.0.0.1:8480/v1/channels/status/messages
//	{"id":"api:status/m-1"}
//
// # Endpoints
//
// Every request needs "Authorization: Bearer <Config.Token>" (401 otherwise, with
// WWW-Authenticate); the events endpoint also takes ?access_token=. Errors are JSON
// objects {"error": "..."}.
//
//	GET  /v1/channels                  200 ["status", ...]
//	POST /v1/channels/{name}/messages  202 {"id": origin ID} once the gateway persisted
//	                                   it; 400 bad body (not UTF-8, unknown field, bad
//	                                   user/text/id/kind/reply_to), 404 unknown channel,
//	                                   413 body over MaxBodyBytes, 422 refused by the
//	                                   gateway as invalid, 429 + Retry-After past the
//	                                   RateLimit (of the user or of all users), 503 +
//	                                   Retry-After: 1 not accepted (retry with the same
//	                                   id after Retry-After)
//	GET  /v1/channels/{name}/events    text/event-stream; 404 unknown channel
//
// The POST body is {"user", "name", "text", "id", "reply_to", "kind"}: user (1..128
// bytes, no control characters) and text (canonical text, bridges.ValidText) are
// required; kind is message (default), action or notice; id (1..200 bytes, no '/')
// names the message, api:<channel>/<id>, so that posting it again is harmless; without
// it the connector picks a random one.
//
// SSE event kinds are message, action, notice, edit, delete and reaction (the last
// three carry "target"), and gap: {"missed_from": n, "missed_to": m} when a resuming
// client's Last-Event-ID is older than the events kept per channel (Config.Replay
// events, at most Config.ReplayBytes bytes), with "reset": true when it comes from
// before a restart (numbering starts at 1 each run).
//
// # Concurrency
//
// Run owns the HTTP server and waits for its goroutines and every handler. Each
// channel's replay ring and subscriber set sit behind one mutex (the connector's only
// lock tier), held without I/O. Each SSE stream has a bounded queue; a stream whose
// queue is full is disconnected and resumes with Last-Event-ID, so Send never blocks.
package api
