package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/whisper"
)

var _ mailserver.Archive = (*Archive)(nil)

const (
	// putChunk is how many records one multi-row INSERT carries (4 parameters each, far
	// below SQLite's 32,766 and PostgreSQL's 65,535 parameter limits). Larger chunks
	// amortise the per-statement cost; 256 was the knee on the ArchiveIngest benchmark.
	putChunk = 256
	// Query reads rows in pages. With a full bloom every row matches, so a page is the
	// rows still wanted plus one (which tells whether more exist); with a narrower bloom
	// pages are at least minPage rows, since many rows may be filtered out. maxPage bounds
	// the memory of one page.
	minPage = 256
	maxPage = 5000
	// maxMergeTopics: a topic-list query of up to this many topics is one statement, a
	// UNION ALL of one range per topic on envelopes_topic_created_hash, merged in
	// (created, hash) order by the database (SQLite's compound-select merge,
	// PostgreSQL's Merge Append) and cut by LIMIT, so it reads about Limit + topics rows
	// whatever the archive holds. A longer list scans the (created, hash) range like a
	// bloom and filters by the topic set.
	maxMergeTopics = 64
)

// Archive is the mailserver archive: the envelopes table. It implements
// mailserver.Archive on either backend and is safe for concurrent use.
type Archive struct {
	db        *sql.DB
	d         dialect
	walPath   string    // SQLite's -wal file when the archive writes at synchronous NORMAL, else ""
	gate      writeGate // the Store's: Put takes turns with the ledger's writers (Store.writeGate)
	insertAll string    // INSERT of putChunk rows
	selectPg  string
	prune     string
	pruneCut  string // PruneBytes: the key where the cap is passed
	pruneTo   string // PruneBytes: delete up to that key

	prepMu sync.Mutex
	insert *sql.Stmt // insertAll, prepared on first use and reused by every Put
}

func newArchive(db *sql.DB, d dialect) *Archive {
	return &Archive{
		db:        db,
		d:         d,
		insertAll: d.rebind(insertSQL(putChunk)),
		// The row-value comparison resumes strictly after (created, hash) and is an index
		// range on the (created, hash) primary key in both SQLite and PostgreSQL.
		// Two columns: the key's hash and the topic are in the envelope's bytes (the
		// hash only for a page's last row, the topic only under a bloom), and each
		// further column costs the drivers an allocation or two per row.
		selectPg: d.rebind(`SELECT created, envelope FROM envelopes
WHERE (created, hash) > (?, ?) AND created <= ?
ORDER BY created, hash LIMIT ?`),
		prune: d.rebind("DELETE FROM envelopes WHERE created < ?"),
		pruneCut: d.rebind(`SELECT created, hash FROM (SELECT created, hash,
SUM(LENGTH(envelope)) OVER (ORDER BY created DESC, hash DESC) AS acc FROM envelopes) t
WHERE acc > ? ORDER BY created DESC, hash DESC LIMIT 1`),
		pruneTo: d.rebind("DELETE FROM envelopes WHERE (created, hash) <= (?, ?)"),
	}
}

func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO envelopes (created, hash, topic, envelope) VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?)")
	}
	b.WriteString(" ON CONFLICT (created, hash) DO NOTHING")
	return b.String()
}

// insertStmt returns the prepared INSERT of putChunk rows, preparing it once: SQLite
// would otherwise compile the 1,024-parameter statement for every chunk.
func (a *Archive) insertStmt(ctx context.Context) (*sql.Stmt, error) {
	a.prepMu.Lock()
	defer a.prepMu.Unlock()
	if a.insert == nil {
		st, err := a.db.PrepareContext(ctx, a.insertAll)
		if err != nil {
			return nil, err
		}
		a.insert = st
	}
	return a.insert, nil
}

func (a *Archive) closeStmts() {
	a.prepMu.Lock()
	defer a.prepMu.Unlock()
	if a.insert != nil {
		a.insert.Close()
		a.insert = nil
	}
}

var _ mailserver.Checkpointer = (*Archive)(nil)

// Checkpoint makes every archive write committed so far durable. On SQLite (opened by
// Open) the archive commits at synchronous NORMAL: a commit is in the WAL, which
// survives the process being killed but not a power loss until the WAL is synced.
// Checkpoint runs a PASSIVE checkpoint, which syncs the WAL and copies its pages into
// the database file without waiting for readers or the writer, on the caller's
// goroutine (the mailserver's checkpointer, off the writer's path, so the copy runs on
// another core while the writer goes on); when a reader kept some pages from being
// copied, it syncs the WAL itself. Every commit of the other tables (synchronous FULL)
// syncs the same WAL too. On PostgreSQL, and on a handle given to OpenDB, a commit is
// durable already and Checkpoint does nothing.
func (a *Archive) Checkpoint(ctx context.Context) error {
	if a.walPath == "" {
		return nil
	}
	var busy, frames, copied int64
	if err := a.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return fmt.Errorf("checkpoint archive: %w", full(err))
	}
	if copied >= frames {
		return nil // every frame copied: the checkpoint synced the WAL first
	}
	f, err := os.Open(a.walPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoint archive: open WAL: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("checkpoint archive: sync WAL: %w", err)
	}
	return nil
}

// Put stores the records in one transaction; a record whose hash is already stored (or
// repeated in recs) is skipped. Called by the mailserver's archive writer, with
// everything queued since its last flush (group commit: one transaction per flush; on
// SQLite it is durable once Checkpoint ran after it); it blocks on the database (and, on SQLite, on a concurrent
// writer for up to the busy timeout). On error nothing of recs is stored.
func (a *Archive) Put(ctx context.Context, recs []mailserver.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var prepared *sql.Stmt
	if len(recs) >= putChunk {
		st, err := a.insertStmt(ctx)
		if err != nil {
			return fmt.Errorf("put %d envelopes: prepare: %w", len(recs), err)
		}
		prepared = st
	}
	unlock, err := a.gate.lock(ctx)
	if err != nil {
		return fmt.Errorf("put %d envelopes: begin: %w", len(recs), err)
	}
	defer unlock()
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put %d envelopes: begin: %w", len(recs), err)
	}
	defer tx.Rollback() // no-op after Commit
	args := make([]any, 0, 4*min(len(recs), putChunk))
	for len(recs) > 0 {
		chunk := recs[:min(len(recs), putChunk)]
		recs = recs[len(chunk):]
		args = args[:0]
		for i := range chunk {
			r := &chunk[i]
			env := r.Envelope
			if env == nil {
				env = []byte{} // NOT NULL
			}
			args = append(args, int64(r.Created), r.Hash[:], r.Topic[:], env)
		}
		if len(chunk) == putChunk {
			_, err = tx.StmtContext(ctx, prepared).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, a.d.rebind(insertSQL(len(chunk))), args...)
		}
		if err != nil {
			return fmt.Errorf("put %d envelopes: insert: %w", len(chunk), full(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put envelopes: commit: %w", full(err))
	}
	return nil
}

// Query returns the envelopes created in [q.Lower, q.Upper] of the topics q.Topics, or,
// when that is empty, whose topic's bloom q.Bloom matches, in ascending (created, hash) order, resuming strictly after q.Cursor when it
// is set, at most q.Limit of them and, when q.MaxBytes > 0, no more bytes than that
// (but at least one envelope). next is the cursor of the last one returned when the
// byte budget ended the page, or when q.Limit were returned and more may follow (a further matching row was seen, or the
// range was not read to its end); it is empty when the range is exhausted. Called by the
// mailserver's request handler; it blocks on the database. Errors: ErrInvalidQuery for a
// limit ≤ 0, ErrMalformedCursor for a cursor that is not CursorLength bytes.
func (a *Archive) Query(ctx context.Context, q mailserver.Query) (envelopes [][]byte, next []byte, err error) {
	if q.Limit <= 0 {
		return nil, nil, fmt.Errorf("query archive: limit %d: %w", q.Limit, ErrInvalidQuery)
	}
	// The scan position: rows strictly after (from, fromHash). An empty hash sorts
	// before every hash, so (Lower, "") includes all of Lower.
	from, fromHash := int64(q.Lower), []byte{}
	switch len(q.Cursor) {
	case 0:
	case mailserver.CursorLength:
		if c := int64(binary.BigEndian.Uint32(q.Cursor)); c >= from {
			from, fromHash = c, append([]byte(nil), q.Cursor[4:]...)
		}
	default:
		return nil, nil, fmt.Errorf("query archive: cursor of %d bytes, want 0 or %d: %w",
			len(q.Cursor), mailserver.CursorLength, ErrMalformedCursor)
	}
	if from > int64(q.Upper) {
		return nil, nil, nil
	}
	if n := len(q.Topics); n > 0 && n <= maxMergeTopics {
		return a.queryTopics(ctx, &q, from, fromHash)
	}
	full := q.Bloom.IsFull() && len(q.Topics) == 0
	size := 0 // bytes of envelopes so far
	for {
		want := q.Limit - len(envelopes)
		page := want + 1
		if !full {
			page = max(page, minPage)
		}
		page = min(page, maxPage)
		pg, err := a.queryPage(ctx, &q, full, from, fromHash, page, envelopes, &size)
		if err != nil {
			return nil, nil, fmt.Errorf("query archive [%d, %d]: %w", q.Lower, q.Upper, err)
		}
		envelopes = pg.envelopes
		if pg.overBytes {
			// A matching envelope did not fit in q.MaxBytes: the page ends before it.
			return envelopes, mailserver.CursorOf(pg.lastCreated, pg.lastHash()), nil
		}
		if len(envelopes) == q.Limit {
			// More may exist if a row matched after the last one returned, or if the
			// page ended at its size rather than at the end of the range.
			if pg.more || pg.rows == page {
				return envelopes, mailserver.CursorOf(pg.lastCreated, pg.lastHash()), nil
			}
			return envelopes, nil, nil
		}
		if pg.rows < page {
			return envelopes, nil, nil // range exhausted
		}
		from, fromHash = pg.readCreated, pg.readHash()
	}
}

// pageResult is what one page of Query read.
type pageResult struct {
	envelopes   [][]byte // the caller's envelopes plus this page's matches
	rows        int      // rows read
	more        bool     // a matching row followed the Limit-th envelope
	overBytes   bool     // a matching row did not fit in q.MaxBytes
	lastCreated uint32   // key of the last envelope appended
	lastEnv     []byte   // and that envelope (its hash is the key's)
	readCreated int64    // key of the last row read, where the next page resumes
	readEnv     []byte
}

// lastHash is the hash of the last envelope appended.
func (pg *pageResult) lastHash() [32]byte { return crypto.Keccak256Hash(pg.lastEnv) }

// readHash is the hash of the last row read.
func (pg *pageResult) readHash() []byte { return crypto.Keccak256(pg.readEnv) }

// queryPage reads up to page rows after (from, fromHash) and appends the matching
// envelopes until q.Limit or q.MaxBytes (*size counts the bytes appended); past the limit
// it only looks for one more match.
func (a *Archive) queryPage(ctx context.Context, q *mailserver.Query, full bool, from int64, fromHash []byte, page int, envelopes [][]byte, size *int) (pageResult, error) {
	pg := pageResult{envelopes: envelopes}
	err := a.scanRows(ctx, a.selectPg, []driver.NamedValue{
		{Ordinal: 1, Value: from}, {Ordinal: 2, Value: fromHash}, {Ordinal: 3, Value: int64(q.Upper)}, {Ordinal: 4, Value: int64(page)},
	}, func(created int64, env []byte) (bool, error) {
		pg.rows++
		pg.readCreated, pg.readEnv = created, env
		if !full {
			t, err := envelopeTopic(env)
			if err != nil {
				return false, fmt.Errorf("row at created %d: %w", created, err)
			}
			if !matches(q, t) {
				return true, nil
			}
		}
		if len(pg.envelopes) == q.Limit {
			pg.more = true
			return false, nil
		}
		if q.MaxBytes > 0 && len(pg.envelopes) > 0 && *size+len(env) > q.MaxBytes {
			pg.overBytes = true
			return false, nil
		}
		*size += len(env)
		pg.envelopes = append(pg.envelopes, env)
		pg.lastCreated, pg.lastEnv = uint32(created), env
		return true, nil
	})
	return pg, err
}

// scanRows runs query with args on a connection of the pool, through the driver
// itself, and calls row with each row's created (its first column) and envelope (its
// last) until it returns
// false or an error. database/sql would copy every envelope a second time (Scan clones a
// driver's []byte) and convert each value through reflection; the history query is the
// archive's hot read (profiled: a third of its time went there). row may keep env: both
// drivers return a fresh slice for every BLOB/bytea value (mattn/go-sqlite3 copies it out
// of SQLite with C.GoBytes, pgx's bytea scan plan allocates), never a reused buffer; the
// store's tests read many rows per query on both backends and compare every envelope.
func (a *Archive) scanRows(ctx context.Context, query string, args []driver.NamedValue, row func(created int64, env []byte) (bool, error)) error {
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot query", dc)
		}
		rows, err := qc.QueryContext(ctx, query, args)
		if err != nil {
			return fmt.Errorf("select: %w", err)
		}
		defer rows.Close()
		dest := make([]driver.Value, len(rows.Columns()))
		for {
			if err := rows.Next(dest); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("read rows: %w", err)
			}
			created, ok1 := dest[0].(int64)
			env, ok2 := dest[len(dest)-1].([]byte)
			if !ok1 || !ok2 {
				return fmt.Errorf("row of created %T, envelope %T: want INTEGER, BLOB", dest[0], dest[len(dest)-1])
			}
			if more, err := row(created, env); err != nil || !more {
				return err
			}
		}
	})
}

// envelopeTopic reads the topic out of an envelope's RLP, [expiry, ttl, topic, data,
// nonce], without decoding the rest (Put's records are envelopes as received).
func envelopeTopic(env []byte) (whisper.Topic, error) {
	body, _, err := rlp.SplitList(env)
	if err == nil {
		_, body, err = rlp.SplitUint64(body) // expiry
	}
	if err == nil {
		_, body, err = rlp.SplitUint64(body) // ttl
	}
	var t []byte
	if err == nil {
		t, _, err = rlp.SplitString(body)
	}
	if err != nil {
		return whisper.Topic{}, fmt.Errorf("stored envelope of %d bytes: %w", len(env), err)
	}
	if len(t) != whisper.TopicLength {
		return whisper.Topic{}, fmt.Errorf("stored envelope of %d bytes: topic of %d bytes", len(env), len(t))
	}
	return whisper.Topic(t), nil
}

// Newest returns the created time of the newest archived envelope, false when the
// archive is empty (mailserver.Archive). The mailserver asks once at start, to know
// where a gap sync from peer mailservers begins; one index probe.
func (a *Archive) Newest(ctx context.Context) (uint32, bool, error) {
	var created sql.NullInt64
	if err := a.db.QueryRowContext(ctx, `SELECT MAX(created) FROM envelopes`).Scan(&created); err != nil {
		return 0, false, fmt.Errorf("newest archived envelope: %w", err)
	}
	return uint32(created.Int64), created.Valid, nil
}

// PruneBytes deletes the oldest envelopes, in (created, hash) order, until those kept
// hold at most maxBytes bytes of envelopes, and reports how many it deleted; maxBytes
// ≤ 0 deletes nothing. The database file is larger than the envelopes it holds (keys,
// indexes, pages not full): about 1.3× on SQLite. Called by the mailserver's retention
// loop; it reads every row's length, so it runs no more often than that loop.
func (a *Archive) PruneBytes(ctx context.Context, maxBytes int64) (int64, error) {
	if maxBytes <= 0 {
		return 0, nil
	}
	var total int64
	if err := a.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(LENGTH(envelope)), 0) FROM envelopes`).Scan(&total); err != nil {
		return 0, fmt.Errorf("prune archive to %d bytes: size: %w", maxBytes, err)
	}
	if total <= maxBytes {
		return 0, nil
	}
	// The newest envelope that, with all newer ones, passes the cap: it and every
	// older one go.
	var created int64
	var hash []byte
	if err := a.db.QueryRowContext(ctx, a.pruneCut, maxBytes).Scan(&created, &hash); err != nil {
		return 0, fmt.Errorf("prune archive to %d bytes: cut: %w", maxBytes, err)
	}
	res, err := a.db.ExecContext(ctx, a.pruneTo, created, hash)
	if err != nil {
		return 0, fmt.Errorf("prune archive to %d bytes: %w", maxBytes, full(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune archive to %d bytes: rows affected: %w", maxBytes, err)
	}
	return n, nil
}

// matches reports whether q selects an envelope of topic t: by the topic list when it
// has one, else by the bloom.
func matches(q *mailserver.Query, t whisper.Topic) bool {
	if len(q.Topics) > 0 {
		return slices.Contains(q.Topics, t)
	}
	tb := whisper.TopicToBloom(t)
	return q.Bloom.Matches(&tb)
}

// topicsSQL is the merge statement of n topics (see maxMergeTopics); its arguments are
// topic, from, fromHash, upper per topic, then the limit.
func topicsSQL(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString("\nUNION ALL ")
		}
		b.WriteString("SELECT created, hash, envelope FROM envelopes WHERE topic = ? AND (created, hash) > (?, ?) AND created <= ?")
	}
	b.WriteString("\nORDER BY created, hash LIMIT ?")
	return b.String()
}

// queryTopics is Query for a list of at most maxMergeTopics distinct topics, from the
// scan position (from, fromHash).
func (a *Archive) queryTopics(ctx context.Context, q *mailserver.Query, from int64, fromHash []byte) ([][]byte, []byte, error) {
	args := make([]driver.NamedValue, 0, 4*len(q.Topics)+1)
	arg := func(v any) { args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v}) }
	for _, t := range q.Topics {
		arg(t[:])
		arg(from)
		arg(fromHash)
		arg(int64(q.Upper))
	}
	arg(int64(q.Limit + 1))
	var (
		envelopes   [][]byte
		size        int
		lastCreated uint32
		next        []byte
	)
	err := a.scanRows(ctx, a.d.rebind(topicsSQL(len(q.Topics))), args, func(created int64, env []byte) (bool, error) {
		if len(envelopes) == q.Limit || q.MaxBytes > 0 && len(envelopes) > 0 && size+len(env) > q.MaxBytes {
			// A match follows the last one returned.
			next = mailserver.CursorOf(lastCreated, crypto.Keccak256Hash(envelopes[len(envelopes)-1]))
			return false, nil
		}
		size += len(env)
		envelopes = append(envelopes, env)
		lastCreated = uint32(created)
		return true, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("query archive [%d, %d] by %d topics: %w", q.Lower, q.Upper, len(q.Topics), err)
	}
	return envelopes, next, nil
}

// Prune deletes the envelopes created before the given time and reports how many.
// Called by the mailserver's retention loop; it blocks on the database, one statement.
func (a *Archive) Prune(ctx context.Context, before time.Time) (int64, error) {
	t := before.Unix() // created < before ⇔ created < ⌈before⌉ (created is whole seconds)
	if before.Nanosecond() > 0 {
		t++
	}
	if t <= 0 {
		return 0, nil // created is never negative
	}
	res, err := a.db.ExecContext(ctx, a.prune, t)
	if err != nil {
		return 0, fmt.Errorf("prune archive before %d: %w", t, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune archive before %d: rows affected: %w", t, err)
	}
	return n, nil
}
