// Package mailserver implements Status's offline inbox on top of core/whisper: the
// server side archives every envelope the node accepts and answers history requests
// (code 126) with direct deliveries (code 127) and a completion (code 125); the client
// side asks a trusted mailserver for the history of the chats it follows and pages
// through cursors (PROTOCOL.md §4).
//
// Storage is behind the Archive interface, defined here and implemented by package
// store (SQLite by default, PostgreSQL at scale). The package knows nothing of chats'
// payloads or of bridges.
package mailserver
