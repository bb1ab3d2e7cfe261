package irc

import (
	"errors"
	"fmt"

	"github.com/statusgate/statusgate/bridges"
)

// Sentinel errors of the irc connector. Callers use errors.Is.
var (
	// ErrInvalidConfig: a Config field breaks its rule; the message names the key.
	ErrInvalidConfig = errors.New("invalid irc config")
	// ErrUnknownChannel: an Outbound names a channel this connector has not joined by
	// configuration. Send wraps it in bridges.Permanent.
	ErrUnknownChannel = errors.New("unknown channel")
	// ErrNotConnected: Send was called while the connection is down or the channel
	// not joined yet. Send wraps it with bridges.ErrTransient.
	ErrNotConnected = errors.New("not connected")
	// errBadCredentials: the server rejected PASS or SASL; Run returns it, and the
	// gateway shows bad_credentials.
	errBadCredentials = fmt.Errorf("irc: PASS or SASL: %w", bridges.ErrBadCredentials)
)
