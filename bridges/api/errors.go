package api

import (
	"errors"
	"fmt"
)

// Sentinel errors of the api connector. Callers use errors.Is.
var (
	// ErrInvalidConfig: a Config field breaks its rule; the message names the key.
	ErrInvalidConfig = errors.New("invalid api config")
	// ErrUnknownChannel: an Outbound or request names a channel this connector does
	// not serve. Send wraps it in bridges.Permanent.
	ErrUnknownChannel = errors.New("unknown channel")
	// ErrNotServing: Send was called while no session serves the HTTP API (before Run,
	// between sessions, after Run returned). Send wraps it with bridges.ErrTransient.
	ErrNotServing = errors.New("api not serving")
	// ErrBadRequest: a POST body breaks the request rules (decodePost); the message
	// says which, and the handler answers 400 with it.
	ErrBadRequest = errors.New("bad request")
)

func errBadRequestf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}
