// Package puppet keeps the registry of puppets: the Status identities the gateway speaks
// as on behalf of remote users. A remote user (network, gateway account, user ID) maps to
// exactly one puppet key, derived deterministically from the gateway secret
// (identity.Secret.PuppetKey), and to a Record holding its chat key, display name and
// first and last sighting. The reverse lookup (Whois) answers "who is this chat key?" and
// "which puppet stands for network:user?", for the `bridge whois` command.
//
// Private keys are never stored: the Store persists Records only, and keys are
// re-derived from the secret, with a bounded in-memory LRU cache so the hot path does not
// redo HMAC-SHA256 and the scalar-to-key conversion for every message.
//
// A puppet can never speak as a user it does not belong to: a key is only ever obtained
// through Registry.Key for a validated identity.PuppetID, the cache is keyed by the full
// PuppetID (network, account, user), and the store's unique chat key column refuses a
// second remote user claiming the same key.
//
// puppet imports identity and bridges only; it defines the Store it needs and store/
// implements it (ARCHITECTURE.md, dependency direction).
package puppet
