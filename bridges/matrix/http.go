package matrix

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// maxTxnBody bounds a transaction body (the homeserver batches at most a few hundred
// events of at most 64 KiB each).
const maxTxnBody = 32 << 20

// serveHTTP is the appservice API. Every request must carry the hs_token in
// "Authorization: Bearer"; anything else is answered 403 M_FORBIDDEN before the path is
// looked at.
func (c *Connector) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.authorized(r) {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "bad or missing hs_token")
		return
	}
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPut && strings.HasPrefix(path, "/_matrix/app/v1/transactions/"):
		c.putTransaction(w, r, strings.TrimPrefix(path, "/_matrix/app/v1/transactions/"))
	case r.Method == http.MethodPut && strings.HasPrefix(path, "/transactions/"): // legacy path
		c.putTransaction(w, r, strings.TrimPrefix(path, "/transactions/"))
	case r.Method == http.MethodPost && path == "/_matrix/app/v1/ping":
		// The homeserver checks that it reaches us (Matrix v1.7, MSC2659); the hs_token
		// was checked above, and the body (a transaction_id) needs no answer.
		writeJSON(w, http.StatusOK, struct{}{})
	case r.Method == http.MethodGet && (strings.HasPrefix(path, "/_matrix/app/v1/users/") || strings.HasPrefix(path, "/_matrix/app/v1/rooms/")):
		// Ghosts and portals are created on demand by the connector, never by a query.
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "created by the bridge on demand")
	default:
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "unrecognized request")
	}
}

// authorized checks the hs_token of "Authorization: Bearer". The legacy
// ?access_token= query parameter is not accepted: query strings end up in reverse
// proxies' and access logs, and homeservers send the header (Matrix v1.4): Dendrite
// always, Synapse since 1.70 (the query as well until 1.90, after that only under
// use_appservice_legacy_authorization).
func (c *Connector) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(c.cfg.HSToken)) == 1
}

// transaction is the body of PUT /transactions/{txnId}; events stay raw until each is
// parsed on its own, so one odd event does not fail the batch.
type transaction struct {
	Events []json.RawMessage `json:"events"`
}

// putTransaction handles one transaction: it waits for the portal rooms, answers a
// transaction ID already processed at once, and otherwise hands every event to
// Host.Deliver in order, answering 200 only when all were accepted. A Deliver failure
// answers 500, so the homeserver sends the transaction again later.
func (c *Connector) putTransaction(w http.ResponseWriter, r *http.Request, txnID string) {
	if txnID == "" || strings.Contains(txnID, "/") {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "bad transaction ID")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTxnBody+1))
	if err != nil || len(body) > maxTxnBody {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "unreadable or too large body")
		return
	}
	var txn transaction
	if err := json.Unmarshal(body, &txn); err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "body is not a transaction")
		return
	}
	select {
	case <-c.ready:
	case <-r.Context().Done():
		writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "bridge starting")
		return
	}
	c.txnMu.Lock()
	defer c.txnMu.Unlock()
	if c.txns.has(txnID) {
		c.log.Debug("duplicate transaction", "txn", txnID)
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	for _, raw := range txn.Events {
		if err := c.handleEvent(r.Context(), raw); err != nil {
			c.log.Warn("deliver transaction; homeserver will retry", "txn", txnID, "err", err)
			writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "not delivered, retry later")
			return
		}
	}
	c.txns.add(txnID)
	writeJSON(w, http.StatusOK, struct{}{})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"errcode": code, "error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
