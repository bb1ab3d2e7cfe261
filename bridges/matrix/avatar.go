package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
)

// Ghost avatars. The connector draws nothing itself (it may import only bridges and the
// SDK): Config.AvatarURLBase names an HTTP endpoint serving each Status author's
// picture by URL-escaped sender ID (the gateway's /identicons/), and a ghost without an
// avatar gets that picture uploaded to the content repository once.
const (
	// maxAvatarBytes bounds a fetched picture (an identicon PNG is a few KiB).
	maxAvatarBytes = 1 << 20
	// avatarTimeout bounds fetching, uploading and setting one avatar.
	avatarTimeout = 10 * time.Second
	// avatarRetry is how long a ghost whose avatar failed waits before the next try,
	// so a down endpoint costs one attempt per ghost per interval, not one per message.
	avatarRetry = 10 * time.Minute
)

// avatarState is what the connector knows of a ghost's avatar.
type avatarState struct {
	done    bool      // the ghost has an avatar (ours, or one found already set)
	retryAt time.Time // after a failure: no new attempt before
}

// ensureAvatar gives the ghost uid of author s its avatar, once: a profile that already
// has one (a previous run, an operator) is left alone, so a restart uploads nothing.
// Failures are logged and retried after avatarRetry; they never fail the message.
func (c *Connector) ensureAvatar(ctx context.Context, intent *appservice.IntentAPI, uid id.UserID, s bridges.RemoteUserID) {
	if c.cfg.AvatarURLBase == "" {
		return
	}
	now := c.now()
	c.mu.Lock()
	st := c.avatars[uid]
	c.mu.Unlock()
	if st.done || now.Before(st.retryAt) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, avatarTimeout)
	defer cancel()
	err := c.setAvatar(ctx, intent, s)
	c.mu.Lock()
	if _, ok := c.avatars[uid]; !ok && len(c.avatars) >= c.ghostCache {
		clear(c.avatars) // maxGhosts
	}
	if err != nil {
		c.avatars[uid] = avatarState{retryAt: now.Add(avatarRetry)}
	} else {
		c.avatars[uid] = avatarState{done: true}
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("set ghost avatar; retrying later", "ghost", uid, "retry_in", avatarRetry, "err", err)
	}
}

func (c *Connector) setAvatar(ctx context.Context, intent *appservice.IntentAPI, s bridges.RemoteUserID) error {
	have, err := intent.Client.GetOwnAvatarURL(ctx)
	if err != nil && !errors.Is(err, mautrix.MNotFound) {
		return fmt.Errorf("get avatar of %s: %w", intent.UserID, err)
	}
	if !have.IsEmpty() {
		return nil
	}
	data, ctype, err := c.fetchAvatar(ctx, s)
	if err != nil {
		return err
	}
	var up *mautrix.RespMediaUpload
	err = c.withRateLimit(ctx, func() (err error) {
		up, err = intent.Client.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: data, ContentType: ctype, FileName: "avatar.png"})
		return err
	})
	if err != nil {
		return fmt.Errorf("upload avatar of %s: %w", intent.UserID, err)
	}
	err = c.withRateLimit(ctx, func() error { return intent.Client.SetAvatarURL(ctx, up.ContentURI) })
	if err != nil {
		return fmt.Errorf("set avatar of %s: %w", intent.UserID, err)
	}
	c.log.Debug("ghost avatar set", "ghost", intent.UserID, "mxc", up.ContentURI)
	return nil
}

// fetchAvatar GETs AvatarURLBase + the URL-escaped sender ID: an image/* answer of at
// most maxAvatarBytes.
func (c *Connector) fetchAvatar(ctx context.Context, s bridges.RemoteUserID) ([]byte, string, error) {
	u := c.cfg.AvatarURLBase + url.PathEscape(string(s))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("fetch avatar %s: %w", u, err)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("fetch avatar: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("fetch avatar %s: status %s", u, resp.Status)
	}
	ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !strings.HasPrefix(ctype, "image/") {
		return nil, "", fmt.Errorf("fetch avatar %s: content type %q, want image/*", u, ctype)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAvatarBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("fetch avatar %s: %w", u, err)
	}
	if len(data) == 0 || len(data) > maxAvatarBytes {
		return nil, "", fmt.Errorf("fetch avatar %s: %d bytes, want 1..%d", u, len(data), maxAvatarBytes)
	}
	return data, ctype, nil
}
