package chat

import (
	"fmt"
	"strings"

	"github.com/statusgate/statusgate/core/whisper"
)

// MaxChatNameLength caps public chat names, in bytes (= characters, the alphabet being
// ASCII). status-react imposed no length limit; 64 is far above any real chat name
// ("status", "status-chinese", …) and keeps names usable as topic strings, log keys and
// bridge identifiers.
const MaxChatNameLength = 64

// ValidateChatName checks a public chat name as status-react did (§3.3): the bare name,
// one or more of [a-z0-9-], that is not a public key, here also at most
// MaxChatNameLength bytes. The name is the chat id and the key password: "#status" is
// what the UI shows, "status" is the name. Errors wrap ErrInvalidChatName.
func ValidateChatName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("validate chat name: empty: %w", ErrInvalidChatName)
	case name[0] == '#':
		return fmt.Errorf("validate chat name %q: drop the leading '#' (use %q): %w",
			name, strings.TrimLeft(name, "#"), ErrInvalidChatName)
	case looksLikePublicKey(name):
		return fmt.Errorf("validate chat name %.12q…: a public key names a one-to-one chat, not a public chat: %w",
			name, ErrInvalidChatName)
	case len(name) > MaxChatNameLength:
		return fmt.Errorf("validate chat name %.12q…: %d bytes, at most %d: %w",
			name, len(name), MaxChatNameLength, ErrInvalidChatName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("validate chat name %q: character %q at %d, want [a-z0-9-]: %w",
				name, rune(c), i, ErrInvalidChatName)
		}
	}
	return nil
}

// looksLikePublicKey reports whether s has the shape of a hex chat key (0x04…, 04…,
// 02…/03…, with or without "0x"), whether or not the point is valid.
func looksLikePublicKey(s string) bool {
	h := strings.TrimPrefix(s, "0x")
	if len(h) != 130 && len(h) != 66 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// PublicChatTopic returns the Whisper topic of public chat name: keccak256(name)[:4]
// ("status" → 0xcd423760). It does not validate the name.
func PublicChatTopic(name string) whisper.Topic { return whisper.TopicFromName(name) }

// PublicChatKey returns the chat's symmetric key, PBKDF2(name) as Status derives it
// (§2.8; "status" → 36224048…ecc4). It does not validate the name. It costs 65356
// PBKDF2 rounds (a few ms): derive once per joined chat.
func PublicChatKey(name string) (*whisper.SymKey, error) {
	k, err := whisper.SymKeyFromPassword(name)
	if err != nil {
		return nil, fmt.Errorf("derive public chat key for %q: %w", name, err)
	}
	return k, nil
}
