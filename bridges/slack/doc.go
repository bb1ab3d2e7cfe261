// Package slack is the Slack connector: it relays between the gateway and the channels
// of one Slack workspace, as one Slack app.
//
// Transport: by default Socket Mode (slack-go's socketmode client over the app-level
// xapp- token) receives message events; with Config.Transport "http" the Events API
// does instead: Slack POSTs each event to an endpoint the connector serves on
// Config.Listen, and every request is checked against the signing secret
// (events_http.go). Both transports feed one event path (handle_remote.go). The Web API
// over the bot xoxb- token posts. Run checks the bot token with auth.test, reports
// StateBadCredentials and retries every few minutes when Slack rejects a token, and
// otherwise keeps a Socket Mode connection up, reconnecting with backoff. An event is
// acknowledged (envelope ack, HTTP 200) only after Host.Deliver accepted it, so an
// event lost to a restart or a failed Deliver is re-sent by Slack; Events API retries
// of a delivered event are recognised by event_id and not delivered twice.
//
// Slack → gateway: plain messages, thread replies (ReplyTo the thread root, also for
// "also send to channel"), /me messages (KindAction), edits (message_changed →
// KindEdit) and deletes (message_deleted → KindDelete), with mrkdwn converted to
// canonical text and mentions resolved through users.info (cached, bounded). Posts of
// our own bot carry Sender.IsBridge so that the gateway drops them.
//
// Gateway → Slack: chat.postMessage with the Status author's name as username and,
// when Config.IconURLBase is set, an icon_url per author (needs chat:write.customize);
// threads through thread_ts; edits through chat.update and deletes through
// chat.delete. Rate limiting, 429 handling and idempotency: handle_gateway.go.
//
// IDs: id.go. Text conversion: convert.go.
//
// The package imports only the standard library, bridges, slack-go and
// golang.org/x/time/rate. Its tests run against test/slackfake, a stateful fake of the
// Web API and Socket Mode, and POST signed Events API requests as Slack would: Slack is
// a hosted service and cannot run here.
package slack
