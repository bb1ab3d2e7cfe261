package identity

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of these, so callers
// branch with errors.Is; the wrapping text says what failed and how. The narrower key
// errors also wrap ErrInvalidKey, and the narrower word-list errors wrap ErrAliasWords.
var (
	// ErrInvalidKey: a string is not a secp256k1 public key in any accepted form.
	ErrInvalidKey = errors.New("invalid chat key")
	// ErrKeyEncoding: the text is neither hex nor "z"-prefixed base58btc, or does not
	// decode as such.
	ErrKeyEncoding = fmt.Errorf("%w: bad encoding", ErrInvalidKey)
	// ErrKeyLength: the decoded key is not 65 bytes (04‖X‖Y) or 33 bytes (02/03‖X), or its
	// prefix byte does not match its length.
	ErrKeyLength = fmt.Errorf("%w: bad length or prefix byte", ErrInvalidKey)
	// ErrMulticodec: a multibase key whose multicodec prefix is not secp256k1-pub (e7 01).
	ErrMulticodec = fmt.Errorf("%w: multicodec is not secp256k1-pub (e7 01)", ErrInvalidKey)
	// ErrNotOnCurve: the coordinates are not a point of secp256k1.
	ErrNotOnCurve = fmt.Errorf("%w: not a point on secp256k1", ErrInvalidKey)

	// ErrAliasWords: an alias word list is missing, unreadable or malformed.
	ErrAliasWords = errors.New("invalid alias word list")
	// ErrWordCount: a word list does not hold exactly the number of words status-go's
	// alias algorithm reduces modulo (AdjectiveCount, AnimalCount).
	ErrWordCount = fmt.Errorf("%w: wrong word count", ErrAliasWords)
)

// Sentinel errors of the puppet-key derivation (puppet.go).
var (
	// ErrInvalidSecret: a gateway secret is missing, too short, or not hex.
	ErrInvalidSecret = errors.New("invalid gateway secret")
	// ErrInvalidPuppetID: a PuppetID field is empty, not valid UTF-8 or longer than
	// MaxPuppetIDField bytes.
	ErrInvalidPuppetID = errors.New("invalid puppet id")
)
