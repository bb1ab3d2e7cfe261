package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/statusgate/statusgate/bridges"
)

// server is one run of the HTTP server: the routes, authentication and the handler
// accounting that lets Run wait for every handler before it returns.
type server struct {
	c    *Connector
	host bridges.Host
	log  *slog.Logger

	mu       sync.Mutex // guards closed and wg.Add; held only for that
	closed   bool
	handlers sync.WaitGroup
}

// routes returns the handler of the whole API. Every request passes guard first, so
// every request, even one for an unknown path, is authenticated.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/channels", s.handleChannels)
	mux.HandleFunc("POST /v1/channels/{name}/messages", s.handlePost)
	mux.HandleFunc("GET /v1/channels/{name}/events", s.handleEvents)
	// Method-less twins answer other methods with a JSON 405 instead of the mux's
	// plain-text one.
	mux.Handle("/v1/channels", methodNotAllowed("GET"))
	mux.Handle("/v1/channels/{name}/messages", methodNotAllowed("POST"))
	mux.Handle("/v1/channels/{name}/events", methodNotAllowed("GET"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	return s.guard(mux)
}

// guard counts the handler for closeAndWait, recovers a panic into a 500 (STYLE.md
// rule 17; a bug must cost one request, not the gateway) and checks the token.
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, "shutting down")
			return
		}
		defer s.handlers.Done()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in api handler", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		switch s.authorize(r) {
		case authMissing:
			w.Header().Set("WWW-Authenticate", `Bearer realm="statusgate"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token")
			return
		case authWrong:
			w.Header().Set("WWW-Authenticate", `Bearer realm="statusgate", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// enter registers a handler unless the server is closing.
func (s *server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

// closeAndWait refuses further handlers and waits for the running ones. Their
// contexts are already cancelled, so they end promptly.
func (s *server) closeAndWait() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.handlers.Wait()
}

type authResult int

const (
	authOK authResult = iota
	authMissing
	authWrong
)

// authorize checks "Authorization: Bearer <token>" and, for the SSE endpoint only
// (browsers' EventSource cannot set headers), "?access_token=". The token is compared
// as a SHA-256 digest in constant time, so neither its content nor its length leaks
// through timing. It is never logged.
func (s *server) authorize(r *http.Request) authResult {
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok && isEventsPath(r) {
		tok = r.URL.Query().Get("access_token")
		ok = tok != ""
	}
	if !ok {
		return authMissing
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], s.c.tokenSum[:]) != 1 {
		return authWrong
	}
	return authOK
}

// bearer returns the token of an Authorization header value "Bearer <token>" (the
// scheme is case-insensitive).
func bearer(h string) (string, bool) {
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func isEventsPath(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.HasPrefix(r.URL.Path, "/v1/channels/") && strings.HasSuffix(r.URL.Path, "/events")
}

// handleChannels answers GET /v1/channels with the JSON list of channel names.
func (s *server) handleChannels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.c.chans.Load().names())
}

// lookup returns the channel named in the path, or answers 404 and returns nil.
func (s *server) lookup(w http.ResponseWriter, r *http.Request) *channel {
	name := r.PathValue("name")
	ch := s.c.chans.Load().byName[name]
	if ch == nil {
		writeError(w, http.StatusNotFound, "unknown channel "+strconv.Quote(name))
	}
	return ch
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+allow)
	})
}

type errorBody struct {
	Error string `json:"error"`
	// RetryID, on a 503 to a POST without an id, is the id to send when retrying, so
	// that the gateway can deduplicate in case the first attempt was persisted.
	RetryID string `json:"retry_id,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen: our own types
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
