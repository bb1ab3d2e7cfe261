package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/statusgate/statusgate/core/ratchet"
)

// The secure transport's tables (migration 0005): Store implements ratchet.Store.
var _ ratchet.Store = (*Store)(nil)

// nz turns a nil slice into an empty one: the columns are NOT NULL and database/sql sends
// a nil []byte as NULL.
func nz(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// InstallationID implements ratchet.Store.
func (s *Store) InstallationID(ctx context.Context, owner []byte) (string, bool, error) {
	var id string
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT installation_id FROM ratchet_owners WHERE owner = ?`), owner).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && id == "":
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read installation id: %w", err)
	}
	return id, true, nil
}

// SetInstallationID implements ratchet.Store: the first id written wins.
func (s *Store) SetInstallationID(ctx context.Context, owner []byte, id string) (_ string, err error) {
	defer fullErr(&err)
	if _, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO ratchet_owners (owner, installation_id) VALUES (?, ?)
ON CONFLICT (owner) DO UPDATE SET installation_id = excluded.installation_id
WHERE ratchet_owners.installation_id = ''`), owner, id); err != nil {
		return "", fmt.Errorf("write installation id: %w", err)
	}
	got, _, err := s.InstallationID(ctx, owner)
	return got, err
}

// Prekeys implements ratchet.Store.
func (s *Store) Prekeys(ctx context.Context, owner []byte) ([]ratchet.Prekey, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT public_key, private_key, version, created
FROM ratchet_prekeys WHERE owner = ? ORDER BY version DESC`), owner)
	if err != nil {
		return nil, fmt.Errorf("read prekeys: %w", err)
	}
	defer rows.Close()
	var out []ratchet.Prekey
	for rows.Next() {
		p, err := scanPrekey(rows)
		if err != nil {
			return nil, fmt.Errorf("read prekeys: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read prekeys: %w", err)
	}
	return out, nil
}

// AddPrekey implements ratchet.Store.
func (s *Store) AddPrekey(ctx context.Context, owner []byte, p ratchet.Prekey) (err error) {
	defer fullErr(&err)
	if _, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO ratchet_prekeys (owner, public_key, private_key, version, created)
VALUES (?, ?, ?, ?, ?)`), owner, p.Public, p.Private, int64(p.Version), p.Created.UnixNano()); err != nil {
		return fmt.Errorf("add prekey: %w", err)
	}
	return nil
}

// PrunePrekeys implements ratchet.Store: a prekey is superseded when the next version
// was created (versions are consecutive), and is among the newest keep replaced ones
// when fewer than keep+1 versions are above it.
func (s *Store) PrunePrekeys(ctx context.Context, owner []byte, keep int, supersededBefore time.Time) (n int, err error) {
	defer fullErr(&err)
	res, err := s.db.ExecContext(ctx, s.d.rebind(`DELETE FROM ratchet_prekeys
WHERE owner = ? AND version < (SELECT MAX(m.version) FROM ratchet_prekeys m WHERE m.owner = ?) - ?
	AND EXISTS (SELECT 1 FROM ratchet_prekeys n
	WHERE n.owner = ratchet_prekeys.owner AND n.version = ratchet_prekeys.version + 1 AND n.created < ?)`),
		owner, owner, keep, supersededBefore.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("prune prekeys: %w", err)
	}
	c, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune prekeys: %w", err)
	}
	return int(c), nil
}

// PrekeyByPublic implements ratchet.Store.
func (s *Store) PrekeyByPublic(ctx context.Context, owner, pub []byte) (ratchet.Prekey, bool, error) {
	row := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT public_key, private_key, version, created
FROM ratchet_prekeys WHERE owner = ? AND public_key = ?`), owner, pub)
	p, err := scanPrekey(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ratchet.Prekey{}, false, nil
	case err != nil:
		return ratchet.Prekey{}, false, fmt.Errorf("read prekey: %w", err)
	}
	return p, true, nil
}

func scanPrekey(row interface{ Scan(...any) error }) (ratchet.Prekey, error) {
	var (
		p                ratchet.Prekey
		version, created int64
	)
	if err := row.Scan(&p.Public, &p.Private, &version, &created); err != nil {
		return p, err
	}
	p.Version, p.Created = uint32(version), time.Unix(0, created)
	return p, nil
}

const deviceColumns = `identity, installation_id, signed_pre_key, prekey_version, protocol_version, bundle_ts, enabled`

// Devices implements ratchet.Store.
func (s *Store) Devices(ctx context.Context, owner, identity []byte) ([]ratchet.Device, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+deviceColumns+`
FROM ratchet_devices WHERE owner = ? AND identity = ? ORDER BY bundle_ts DESC, installation_id`), owner, identity)
	if err != nil {
		return nil, fmt.Errorf("read installations: %w", err)
	}
	defer rows.Close()
	var out []ratchet.Device
	for rows.Next() {
		var (
			d                   ratchet.Device
			pv, prot, timestamp int64
		)
		if err := rows.Scan(&d.Identity, &d.InstallationID, &d.SignedPreKey, &pv, &prot, &timestamp, &d.Enabled); err != nil {
			return nil, fmt.Errorf("read installations: %w", err)
		}
		d.PrekeyVersion, d.ProtocolVersion, d.Timestamp = uint32(pv), uint32(prot), timestamp
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read installations: %w", err)
	}
	return out, nil
}

// SaveDevice implements ratchet.Store.
func (s *Store) SaveDevice(ctx context.Context, owner []byte, d ratchet.Device, keep int) (err error) {
	defer fullErr(&err)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save installation: begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO ratchet_devices (owner, `+deviceColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (owner, identity, installation_id) DO UPDATE SET
	signed_pre_key = excluded.signed_pre_key,
	prekey_version = excluded.prekey_version,
	protocol_version = excluded.protocol_version,
	bundle_ts = excluded.bundle_ts`),
		owner, d.Identity, d.InstallationID, nz(d.SignedPreKey), int64(d.PrekeyVersion), int64(d.ProtocolVersion), d.Timestamp, d.Enabled); err != nil {
		return fmt.Errorf("save installation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM ratchet_devices WHERE owner = ? AND identity = ? AND installation_id NOT IN (
	SELECT installation_id FROM ratchet_devices WHERE owner = ? AND identity = ?
	ORDER BY bundle_ts DESC, installation_id LIMIT ?)`), owner, d.Identity, owner, d.Identity, keep); err != nil {
		return fmt.Errorf("cap installations: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save installation: commit: %w", err)
	}
	return nil
}

// SetDeviceEnabled implements ratchet.Store.
func (s *Store) SetDeviceEnabled(ctx context.Context, owner, identity []byte, installationID string, enabled bool) (_ bool, err error) {
	defer fullErr(&err)
	res, err := s.db.ExecContext(ctx, s.d.rebind(`UPDATE ratchet_devices SET enabled = ?
WHERE owner = ? AND identity = ? AND installation_id = ?`), enabled, owner, identity, installationID)
	if err != nil {
		return false, fmt.Errorf("enable installation: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("enable installation: %w", err)
	}
	return n > 0, nil
}

const sessionColumns = `id, peer, installation_id, bundle_id, ephemeral, initiator, confirmed, retired, sk, created,
	dhr, dhs_public, dhs_private, root_key, send_key, send_n, recv_key, recv_n, pn, step, keys_count, prev_dhr`

// Sessions implements ratchet.Store.
func (s *Store) Sessions(ctx context.Context, owner, peer []byte, installationID string) ([]ratchet.Session, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+sessionColumns+` FROM ratchet_sessions
WHERE owner = ? AND peer = ? AND installation_id = ? ORDER BY id DESC`), owner, peer, installationID)
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	defer rows.Close()
	var out []ratchet.Session
	for rows.Next() {
		var (
			r                                    ratchet.Session
			created, sn, rn, pn, step, keysCount int64
		)
		st := &r.State
		if err := rows.Scan(&r.ID, &r.Peer, &r.InstallationID, &r.BundleID, &r.Ephemeral, &r.Initiator, &r.Confirmed, &r.Retired,
			&r.SK, &created, &st.DHr, &st.DHsPublic, &st.DHsPrivate, &st.RootKey, &st.SendKey, &sn, &st.RecvKey, &rn,
			&pn, &step, &keysCount, &st.PrevDHr); err != nil {
			return nil, fmt.Errorf("read sessions: %w", err)
		}
		r.Created = time.Unix(0, created)
		st.SendN, st.RecvN, st.PN, st.Step, st.KeysCount = uint32(sn), uint32(rn), uint32(pn), uint32(step), uint32(keysCount)
		if len(st.DHr) == 0 {
			st.DHr = nil // a responder's state before its first message: no remote key yet
		}
		if len(st.PrevDHr) == 0 {
			st.PrevDHr = nil
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	return out, nil
}

// InsertSession implements ratchet.Store.
func (s *Store) InsertSession(ctx context.Context, owner []byte, n ratchet.NewSession) (_ int64, err error) {
	defer fullErr(&err)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("insert session: begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	r, st := n.Session, n.Session.State
	var id int64
	if err := tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO ratchet_sessions (owner, peer, installation_id, bundle_id, ephemeral,
	initiator, confirmed, retired, sk, created, dhr, dhs_public, dhs_private, root_key, send_key, send_n, recv_key, recv_n,
	pn, step, keys_count, prev_dhr)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		owner, r.Peer, r.InstallationID, r.BundleID, nz(r.Ephemeral), r.Initiator, r.Confirmed, r.Retired, r.SK,
		r.Created.UnixNano(), nz(st.DHr), nz(st.DHsPublic), nz(st.DHsPrivate), nz(st.RootKey), nz(st.SendKey),
		int64(st.SendN), nz(st.RecvKey), int64(st.RecvN), int64(st.PN), int64(st.Step), int64(st.KeysCount), nz(st.PrevDHr)).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert session: %w", err)
	}
	if err := s.putKeys(ctx, tx, id, n.Keys); err != nil {
		return 0, err
	}
	if n.Retire != 0 {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE ratchet_sessions SET retired = ? WHERE owner = ? AND id = ?`),
			true, owner, n.Retire); err != nil {
			return 0, fmt.Errorf("retire session: %w", err)
		}
	}
	if n.Keep > 0 {
		old := `SELECT id FROM ratchet_sessions WHERE owner = ? AND peer = ? AND installation_id = ? AND id NOT IN (
	SELECT id FROM ratchet_sessions WHERE owner = ? AND peer = ? AND installation_id = ? ORDER BY id DESC LIMIT ?)`
		args := []any{owner, r.Peer, r.InstallationID, owner, r.Peer, r.InstallationID, n.Keep}
		if err := s.deleteSessions(ctx, tx, old, args...); err != nil {
			return 0, fmt.Errorf("delete old sessions: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("insert session: commit: %w", err)
	}
	return id, nil
}

// deleteSessions deletes the sessions ids (a query of session ids taking args) with
// their message keys and old chains.
func (s *Store) deleteSessions(ctx context.Context, tx *sql.Tx, ids string, args ...any) error {
	for _, q := range []string{
		`DELETE FROM ratchet_keys WHERE session_id IN (`,
		`DELETE FROM ratchet_old_chains WHERE session_id IN (`,
		`DELETE FROM ratchet_sessions WHERE id IN (`,
	} {
		if _, err := tx.ExecContext(ctx, s.d.rebind(q+ids+`)`), args...); err != nil {
			return err
		}
	}
	return nil
}

// UpdateSession implements ratchet.Store.
func (s *Store) UpdateSession(ctx context.Context, owner []byte, u ratchet.SessionUpdate) (err error) {
	defer fullErr(&err)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update session: begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	st := u.State
	res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE ratchet_sessions SET confirmed = ?, dhr = ?, dhs_public = ?,
	dhs_private = ?, root_key = ?, send_key = ?, send_n = ?, recv_key = ?, recv_n = ?, pn = ?, step = ?, keys_count = ?,
	prev_dhr = ?
WHERE owner = ? AND id = ?`),
		u.Confirmed, nz(st.DHr), nz(st.DHsPublic), nz(st.DHsPrivate), nz(st.RootKey), nz(st.SendKey), int64(st.SendN),
		nz(st.RecvKey), int64(st.RecvN), int64(st.PN), int64(st.Step), int64(st.KeysCount), nz(st.PrevDHr), owner, u.Session)
	if err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update session %d: %d rows (%v)", u.Session, n, err)
	}
	if err := s.putKeys(ctx, tx, u.Session, u.Keys); err != nil {
		return err
	}
	if u.MaxKeys > 0 {
		// Keep the MaxKeys newest: delete from the (MaxKeys+1)-th newest down.
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM ratchet_keys WHERE session_id = ? AND seq <= (
	SELECT seq FROM ratchet_keys WHERE session_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`),
			u.Session, u.Session, u.MaxKeys); err != nil {
			return fmt.Errorf("cap message keys: %w", err)
		}
	}
	if u.DeleteUpTo >= 0 {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM ratchet_keys WHERE session_id = ? AND seq <= ?`),
			u.Session, u.DeleteUpTo); err != nil {
			return fmt.Errorf("delete old message keys: %w", err)
		}
	}
	if len(u.OldChain) > 0 && u.OldChainsKept > 0 {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO ratchet_old_chains (session_id, dh, seq)
SELECT ?, ?, COALESCE(MAX(seq), 0) + 1 FROM ratchet_old_chains WHERE session_id = ?
ON CONFLICT (session_id, dh) DO NOTHING`), u.Session, u.OldChain, u.Session); err != nil {
			return fmt.Errorf("remember old chain: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM ratchet_old_chains WHERE session_id = ? AND seq <= (
	SELECT seq FROM ratchet_old_chains WHERE session_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`),
			u.Session, u.Session, u.OldChainsKept); err != nil {
			return fmt.Errorf("cap old chains: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update session: commit: %w", err)
	}
	return nil
}

// putKeys inserts message keys; a key already stored is replaced (the library derives
// the same key for the same position).
func (s *Store) putKeys(ctx context.Context, tx *sql.Tx, session int64, keys []ratchet.MessageKey) error {
	if len(keys) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, s.d.rebind(`INSERT INTO ratchet_keys (session_id, dh, n, message_key, seq)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (session_id, dh, n) DO UPDATE SET message_key = excluded.message_key, seq = excluded.seq`))
	if err != nil {
		return fmt.Errorf("store message keys: %w", err)
	}
	defer stmt.Close()
	for _, k := range keys {
		if _, err := stmt.ExecContext(ctx, session, nz(k.DH), int64(k.N), k.Key, int64(k.Seq)); err != nil {
			return fmt.Errorf("store message key: %w", err)
		}
	}
	return nil
}

// MessageKey implements ratchet.Store.
func (s *Store) MessageKey(ctx context.Context, session int64, dh []byte, n uint32) ([]byte, bool, error) {
	var mk []byte
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT message_key FROM ratchet_keys WHERE session_id = ? AND dh = ? AND n = ?`),
		session, nz(dh), int64(n)).Scan(&mk)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read message key: %w", err)
	}
	return mk, true, nil
}

// DeleteMessageKey implements ratchet.Store.
func (s *Store) DeleteMessageKey(ctx context.Context, session int64, dh []byte, n uint32) (err error) {
	defer fullErr(&err)
	if _, err := s.db.ExecContext(ctx, s.d.rebind(`DELETE FROM ratchet_keys WHERE session_id = ? AND dh = ? AND n = ?`),
		session, nz(dh), int64(n)); err != nil {
		return fmt.Errorf("delete message key: %w", err)
	}
	return nil
}

// OldChain implements ratchet.Store.
func (s *Store) OldChain(ctx context.Context, session int64, dh []byte) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT 1 FROM ratchet_old_chains WHERE session_id = ? AND dh = ?`),
		session, nz(dh)).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read old chains: %w", err)
	}
	return true, nil
}

// UsePeer implements ratchet.Store: the bound on an owner's peers, least recently used
// first, never a pinned one.
func (s *Store) UsePeer(ctx context.Context, owner, peer []byte, u ratchet.PeerUse) (_ ratchet.Admission, err error) {
	defer fullErr(&err)
	var a ratchet.Admission
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return a, fmt.Errorf("use peer: begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	at := u.At.UnixNano()
	res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE ratchet_peers SET last_seen = ?, pinned = (pinned OR ?)
WHERE owner = ? AND peer = ?`), at, u.Pin, owner, peer)
	if err != nil {
		return a, fmt.Errorf("use peer: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return a, fmt.Errorf("use peer: %w", err)
	} else if n > 0 {
		a.Admitted = true
	} else if !u.Admit {
		return a, nil
	} else {
		if u.Max > 0 {
			var kept int
			if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM ratchet_peers WHERE owner = ?`), owner).Scan(&kept); err != nil {
				return a, fmt.Errorf("count peers: %w", err)
			}
			if kept >= u.Max {
				if a.Evicted, err = s.evictPeers(ctx, tx, owner, kept-u.Max+1); err != nil {
					return a, err
				}
				if len(a.Evicted) < kept-u.Max+1 && !u.Pin {
					// Every other kept peer is pinned: not admitted. The evictions
					// made stand (they were beyond the bound).
					return a, full(tx.Commit())
				}
			}
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO ratchet_peers (owner, peer, last_seen, pinned) VALUES (?, ?, ?, ?)`),
			owner, peer, at, u.Pin); err != nil {
			return a, fmt.Errorf("add peer: %w", err)
		}
		a.Admitted = true
	}
	if err := tx.Commit(); err != nil {
		return ratchet.Admission{}, fmt.Errorf("use peer: commit: %w", full(err))
	}
	return a, nil
}

// evictPeers forgets up to n of owner's least recently used peers that are not pinned,
// with every row about them, and returns them.
func (s *Store) evictPeers(ctx context.Context, tx *sql.Tx, owner []byte, n int) ([][]byte, error) {
	rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT peer FROM ratchet_peers WHERE owner = ? AND pinned = ?
ORDER BY last_seen, peer LIMIT ?`), owner, false, n)
	if err != nil {
		return nil, fmt.Errorf("least recently used peers: %w", err)
	}
	var victims [][]byte
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, fmt.Errorf("least recently used peers: %w", err)
		}
		victims = append(victims, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("least recently used peers: %w", err)
	}
	for _, p := range victims {
		if err := s.deleteSessions(ctx, tx, `SELECT id FROM ratchet_sessions WHERE owner = ? AND peer = ?`, owner, p); err != nil {
			return nil, fmt.Errorf("evict peer's sessions: %w", err)
		}
		for _, q := range []string{
			`DELETE FROM ratchet_devices WHERE owner = ? AND identity = ?`,
			`DELETE FROM ratchet_agreed WHERE owner = ? AND peer = ?`,
			`DELETE FROM ratchet_secret_peers WHERE owner = ? AND peer = ?`,
			`DELETE FROM ratchet_peers WHERE owner = ? AND peer = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.d.rebind(q), owner, p); err != nil {
				return nil, fmt.Errorf("evict peer: %w", err)
			}
		}
	}
	return victims, nil
}

// AddSecretPeer implements ratchet.Store.
func (s *Store) AddSecretPeer(ctx context.Context, owner, peer []byte) (_ bool, err error) {
	defer fullErr(&err)
	res, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO ratchet_secret_peers (owner, peer) VALUES (?, ?)
ON CONFLICT (owner, peer) DO NOTHING`), owner, peer)
	if err != nil {
		return false, fmt.Errorf("add negotiated secret: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("add negotiated secret: %w", err)
	}
	return n > 0, nil
}

// SecretPeers implements ratchet.Store.
func (s *Store) SecretPeers(ctx context.Context, owner []byte) ([][]byte, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT peer FROM ratchet_secret_peers WHERE owner = ? ORDER BY peer`), owner)
	if err != nil {
		return nil, fmt.Errorf("read negotiated secrets: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("read negotiated secrets: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read negotiated secrets: %w", err)
	}
	return out, nil
}

// SetSecretTopicKey implements ratchet.Store.
func (s *Store) SetSecretTopicKey(ctx context.Context, owner, peer, key []byte) (err error) {
	defer fullErr(&err)
	if _, err := s.db.ExecContext(ctx, s.d.rebind(`UPDATE ratchet_secret_peers SET topic_key = ? WHERE owner = ? AND peer = ?`),
		key, owner, peer); err != nil {
		return fmt.Errorf("keep negotiated topic key: %w", err)
	}
	return nil
}

// SecretTopicKeys implements ratchet.Store.
func (s *Store) SecretTopicKeys(ctx context.Context, owner []byte) (map[string][]byte, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT peer, topic_key FROM ratchet_secret_peers
WHERE owner = ? AND topic_key IS NOT NULL`), owner)
	if err != nil {
		return nil, fmt.Errorf("read negotiated topic keys: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var p, k []byte
		if err := rows.Scan(&p, &k); err != nil {
			return nil, fmt.Errorf("read negotiated topic keys: %w", err)
		}
		out[string(p)] = k
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read negotiated topic keys: %w", err)
	}
	return out, nil
}

// MarkAgreed implements ratchet.Store.
func (s *Store) MarkAgreed(ctx context.Context, owner, peer []byte, installationID string) (_ bool, err error) {
	defer fullErr(&err)
	res, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO ratchet_agreed (owner, peer, installation_id) VALUES (?, ?, ?)
ON CONFLICT (owner, peer, installation_id) DO NOTHING`), owner, peer, installationID)
	if err != nil {
		return false, fmt.Errorf("mark agreed: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark agreed: %w", err)
	}
	return n > 0, nil
}

// Agreed implements ratchet.Store.
func (s *Store) Agreed(ctx context.Context, owner, peer []byte) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT installation_id FROM ratchet_agreed WHERE owner = ? AND peer = ?
ORDER BY installation_id`), owner, peer)
	if err != nil {
		return nil, fmt.Errorf("read agreed installations: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read agreed installations: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read agreed installations: %w", err)
	}
	return out, nil
}

// ContactCodePublished implements ratchet.Store.
func (s *Store) ContactCodePublished(ctx context.Context, owner []byte) (time.Time, error) {
	var at int64
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT contact_code_at FROM ratchet_owners WHERE owner = ?`), owner).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && at == 0:
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("read contact code time: %w", err)
	}
	return time.Unix(0, at), nil
}

// SetContactCodePublished implements ratchet.Store. An owner without an installation id
// yet gets a row with an empty one, which SetInstallationID then fills.
func (s *Store) SetContactCodePublished(ctx context.Context, owner []byte, at time.Time) (err error) {
	defer fullErr(&err)
	if _, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO ratchet_owners (owner, installation_id, contact_code_at)
VALUES (?, '', ?) ON CONFLICT (owner) DO UPDATE SET contact_code_at = excluded.contact_code_at`), owner, at.UnixNano()); err != nil {
		return fmt.Errorf("record contact code time: %w", err)
	}
	return nil
}
