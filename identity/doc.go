// Package identity turns secp256k1 public keys into the forms Status shows and exchanges
// (PROTOCOL.md §8): the 2019 chat key "0x04…" (130 hex characters), the compressed 33-byte
// form, the multibase display key "zQ3…", the short key "0x04261c…88bc6", the three-word
// alias ("Experienced Splendid Gibbon") and the 5×5 identicon, all with status-go's Go
// (1.x) algorithms so that a bridged user looks the same in the bridge as in a Status app.
//
// The alias word lists are Status's data and come with status-go's
// protocol/identity/alias, a module dependency (v0.70.1, the version the ratchet is
// checked against); this package keeps none of its own. An operator may override them
// with lists loaded at run time by LoadAliasWords from the directory named by the config
// key identity.alias_words.
//
// It also derives puppet keys: the secp256k1 signing key of each remote user, from the
// gateway Secret with HMAC-SHA256 over a versioned, length-prefixed (network, account,
// user) encoding (Secret.PuppetKey; ARCHITECTURE.md key decision 3). Deterministic across
// restarts, unlinkable and unforgeable without the secret; only package puppet hands such
// keys on, and a Secret never prints or logs itself.
//
// It must not import any other statusgate package (ARCHITECTURE.md; test/archtest checks
// this; it is also the only package that imports status-go), keep package-level mutable state, do I/O outside LoadAliasWords, or hold or
// derive private keys for display purposes. Every function is safe for concurrent use;
// *AliasWords and *Namer are immutable after construction.
package identity
