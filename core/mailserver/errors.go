package mailserver

import "errors"

// Sentinel errors; every error of this package wraps one.
var (
	// ErrBadRequest: a history request that cannot be decoded or is out of bounds.
	ErrBadRequest = errors.New("bad history request")
	// ErrRequestPoW: the request envelope's PoW is below the server's requirement.
	ErrRequestPoW = errors.New("request PoW too low")
	// ErrUnsignedRequest: the request envelope carries no signature.
	ErrUnsignedRequest = errors.New("unsigned history request")
	// ErrUndecryptable: no key of the server opens the request envelope.
	ErrUndecryptable = errors.New("history request not decryptable")
	// ErrRateLimited: the peer sent requests faster than the server allows.
	ErrRateLimited = errors.New("history requests rate limited")
	// ErrBusy: the server was serving its maximum of requests for too long.
	ErrBusy = errors.New("mailserver busy")
	// ErrPeerGone: the mailserver disconnected before answering; resume from the last
	// cursor once it is back.
	ErrPeerGone = errors.New("mailserver disconnected")
	// ErrCursor: a cursor of the wrong length.
	ErrCursor = errors.New("malformed cursor")
)
