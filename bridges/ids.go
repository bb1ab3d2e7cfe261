package bridges

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Typed, opaque, namespaced IDs (STYLE.md rule 6).
//
// Every ID is the string "network:local". network is the Name of the connector that
// owns the ID (see ValidNetwork); local is whatever that connector needs to find the
// thing again on its own network (a Matrix room ID "!abc:example.org", an IRC
// "libera/#status", a Slack "T0123/C0456"). local may itself contain ':', because the
// network part never does and the ID is split at the first ':'.
//
// Only the owning connector builds IDs (with NewChannelID, NewRemoteUserID,
// NewRemoteMsgID, usually from its own id.go) and only it reads Local. Everyone else
// (gateway, store, puppet) treats an ID as an opaque, comparable value: it may compare,
// store, log and map it, and may read Network to find the owner, but never parses or
// builds the local part. A connector must build the same ID for the same remote thing
// every time, across restarts: IDs are keys in the store and inputs to puppet key
// derivation.

// ChannelID names a room, channel or conversation on one network.
type ChannelID string

// RemoteUserID names a user (or bot) account on one network.
type RemoteUserID string

// RemoteMsgID names one message (or other event the network numbers) on one network.
type RemoteMsgID string

// Limits on IDs. They keep IDs usable as store keys and metric labels.
const (
	// MaxNetworkLen is the longest network name, in bytes.
	MaxNetworkLen = 32
	// MaxLocalIDLen is the longest local part of an ID, in bytes.
	MaxLocalIDLen = 512
)

// NewChannelID returns the ID network:local, or an error wrapping ErrInvalidID when
// network is not a valid network name (ValidNetwork) or local is empty, too long, not
// UTF-8 or holds a control character.
func NewChannelID(network, local string) (ChannelID, error) {
	s, err := makeID(network, local)
	return ChannelID(s), err
}

// NewRemoteUserID is NewChannelID for user IDs.
func NewRemoteUserID(network, local string) (RemoteUserID, error) {
	s, err := makeID(network, local)
	return RemoteUserID(s), err
}

// NewRemoteMsgID is NewChannelID for message IDs.
func NewRemoteMsgID(network, local string) (RemoteMsgID, error) {
	s, err := makeID(network, local)
	return RemoteMsgID(s), err
}

// Network returns the owning connector's name, or "" if id is not valid.
func (id ChannelID) Network() string { n, _, _ := splitID(string(id)); return n }

// Local returns the part only the owning connector interprets, or "" if id is not valid.
func (id ChannelID) Local() string { _, l, _ := splitID(string(id)); return l }

// Validate returns nil if id is well formed, else an error wrapping ErrInvalidID. Use it
// on IDs read back from storage or configuration; New* already validates.
func (id ChannelID) Validate() error { return validateID("channel", string(id)) }

// String returns the ID as stored and logged.
func (id ChannelID) String() string { return string(id) }

// Network returns the owning connector's name, or "" if id is not valid.
func (id RemoteUserID) Network() string { n, _, _ := splitID(string(id)); return n }

// Local returns the part only the owning connector interprets, or "" if id is not valid.
func (id RemoteUserID) Local() string { _, l, _ := splitID(string(id)); return l }

// Validate returns nil if id is well formed, else an error wrapping ErrInvalidID.
func (id RemoteUserID) Validate() error { return validateID("user", string(id)) }

// String returns the ID as stored and logged.
func (id RemoteUserID) String() string { return string(id) }

// Network returns the owning connector's name, or "" if id is not valid.
func (id RemoteMsgID) Network() string { n, _, _ := splitID(string(id)); return n }

// Local returns the part only the owning connector interprets, or "" if id is not valid.
func (id RemoteMsgID) Local() string { _, l, _ := splitID(string(id)); return l }

// Validate returns nil if id is well formed, else an error wrapping ErrInvalidID.
func (id RemoteMsgID) Validate() error { return validateID("message", string(id)) }

// String returns the ID as stored and logged.
func (id RemoteMsgID) String() string { return string(id) }

// ValidNetwork returns nil if name can be a network name (a Connector's Name and the
// namespace of its IDs): 1 to MaxNetworkLen bytes of lowercase ASCII letters, digits,
// '-' and '_', starting with a letter. Otherwise it returns an error wrapping
// ErrInvalidID.
func ValidNetwork(name string) error {
	if name == "" || len(name) > MaxNetworkLen {
		return fmt.Errorf("%w: network %q: length not 1..%d", ErrInvalidID, name, MaxNetworkLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := 'a' <= c && c <= 'z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '-' || c == '_')) {
			return fmt.Errorf("%w: network %q: want [a-z][a-z0-9_-]*", ErrInvalidID, name)
		}
	}
	return nil
}

func makeID(network, local string) (string, error) {
	if err := ValidNetwork(network); err != nil {
		return "", err
	}
	if err := validLocal(local); err != nil {
		return "", fmt.Errorf("%w (network %s)", err, network)
	}
	return network + ":" + local, nil
}

// splitID splits a valid ID into its parts; ok is false (and both parts "") otherwise.
func splitID(id string) (network, local string, ok bool) {
	network, local, found := strings.Cut(id, ":")
	if !found || ValidNetwork(network) != nil || validLocal(local) != nil {
		return "", "", false
	}
	return network, local, true
}

func validateID(kind, id string) error {
	network, local, found := strings.Cut(id, ":")
	if !found {
		return fmt.Errorf("%w: %s ID %q: no network prefix", ErrInvalidID, kind, id)
	}
	if err := ValidNetwork(network); err != nil {
		return fmt.Errorf("%s ID: %w", kind, err)
	}
	if err := validLocal(local); err != nil {
		return fmt.Errorf("%s ID: %w", kind, err)
	}
	return nil
}

func validLocal(local string) error {
	switch {
	case local == "":
		return fmt.Errorf("%w: empty local part", ErrInvalidID)
	case len(local) > MaxLocalIDLen:
		return fmt.Errorf("%w: local part longer than %d bytes", ErrInvalidID, MaxLocalIDLen)
	case !utf8.ValidString(local):
		return fmt.Errorf("%w: local part %q is not UTF-8", ErrInvalidID, local)
	case strings.IndexFunc(local, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: local part %q holds a control character", ErrInvalidID, local)
	}
	return nil
}
