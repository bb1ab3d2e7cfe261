// Package matrix is the Matrix connector: an application service (the plain mautrix
// appservice package, not bridgev2) that shows each routed Status chat as a Matrix
// portal room, posts Status authors as ghost users (@<ghost_prefix><hash>:server) and
// delivers what Matrix users say in the portal rooms to the gateway.
//
// It serves the homeserver's appservice API itself (http.go): every request must carry
// the hs_token (else 403 M_FORBIDDEN), and a transaction is answered 200 only after
// every event in it was handed to Host.Deliver, so the homeserver redelivers what the
// gateway has not persisted. Transaction IDs already processed are remembered (a
// bounded set) and answered at once; across a connector restart, redelivered events
// keep their Origin (the Matrix event ID) and the gateway deduplicates them.
//
// Formatting goes through convert.go only: Matrix HTML is read with a non-strict
// tokenizer into canonical text (everything outside the canonical subset flattened to
// text), and canonical text is written as escaped HTML, so no markup from another
// network reaches a Matrix client as HTML.
//
// It imports only the standard library, bridges and mautrix (appservice, event, id and
// the client core). It does not know routes, Status or storage.
package matrix
