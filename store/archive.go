package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

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
	insertAll string // INSERT of putChunk rows
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
		selectPg: d.rebind(`SELECT created, hash, topic, envelope FROM envelopes
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

// Put stores the records in one transaction; a record whose hash is already stored (or
// repeated in recs) is skipped. Called by the mailserver's archive writer, with
// everything queued since its last flush (group commit: one transaction, so one WAL sync
// on SQLite, per flush); it blocks on the database (and, on SQLite, on a concurrent
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
			return envelopes, mailserver.CursorOf(pg.lastCreated, pg.lastHash), nil
		}
		if len(envelopes) == q.Limit {
			// More may exist if a row matched after the last one returned, or if the
			// page ended at its size rather than at the end of the range.
			if pg.more || pg.rows == page {
				return envelopes, mailserver.CursorOf(pg.lastCreated, pg.lastHash), nil
			}
			return envelopes, nil, nil
		}
		if pg.rows < page {
			return envelopes, nil, nil // range exhausted
		}
		from, fromHash = pg.readCreated, pg.readHash
	}
}

// pageResult is what one page of Query read.
type pageResult struct {
	envelopes   [][]byte // the caller's envelopes plus this page's matches
	rows        int      // rows read
	more        bool     // a matching row followed the Limit-th envelope
	overBytes   bool     // a matching row did not fit in q.MaxBytes
	lastCreated uint32   // key of the last envelope appended
	lastHash    [32]byte
	readCreated int64 // key of the last row read, where the next page resumes
	readHash    []byte
}

// queryPage reads up to page rows after (from, fromHash) and appends the matching
// envelopes until q.Limit or q.MaxBytes (*size counts the bytes appended); past the limit
// it only looks for one more match.
func (a *Archive) queryPage(ctx context.Context, q *mailserver.Query, full bool, from int64, fromHash []byte, page int, envelopes [][]byte, size *int) (pageResult, error) {
	pg := pageResult{envelopes: envelopes}
	rows, err := a.db.QueryContext(ctx, a.selectPg, from, fromHash, int64(q.Upper), page)
	if err != nil {
		return pg, fmt.Errorf("select: %w", err)
	}
	defer rows.Close()
	var (
		created     int64
		hash, topic sql.RawBytes
		env         []byte
	)
	for rows.Next() {
		pg.rows++
		if err := rows.Scan(&created, &hash, &topic, &env); err != nil {
			return pg, fmt.Errorf("scan: %w", err)
		}
		if len(hash) != 32 || len(topic) != whisper.TopicLength {
			return pg, fmt.Errorf("row at created %d: hash of %d bytes, topic of %d bytes", created, len(hash), len(topic))
		}
		pg.readCreated = created
		pg.readHash = append(pg.readHash[:0], hash...)
		if !full && !matches(q, whisper.Topic(topic)) {
			continue
		}
		if len(pg.envelopes) == q.Limit {
			pg.more = true
			break
		}
		if q.MaxBytes > 0 && len(pg.envelopes) > 0 && *size+len(env) > q.MaxBytes {
			pg.overBytes = true
			break
		}
		*size += len(env)
		pg.envelopes = append(pg.envelopes, env)
		env = nil // Scan into a nil []byte allocates a fresh copy
		pg.lastCreated, pg.lastHash = uint32(created), [32]byte(hash)
	}
	if err := rows.Err(); err != nil {
		return pg, fmt.Errorf("read rows: %w", err)
	}
	return pg, nil
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
	args := make([]any, 0, 4*len(q.Topics)+1)
	for _, t := range q.Topics {
		args = append(args, t[:], from, fromHash, int64(q.Upper))
	}
	args = append(args, q.Limit+1)
	rows, err := a.db.QueryContext(ctx, a.d.rebind(topicsSQL(len(q.Topics))), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("query archive [%d, %d] by %d topics: %w", q.Lower, q.Upper, len(q.Topics), err)
	}
	defer rows.Close()
	var (
		envelopes   [][]byte
		size        int
		created     int64
		hash        sql.RawBytes
		lastCreated uint32
		lastHash    [32]byte
		next        []byte
	)
	for rows.Next() {
		var env []byte
		if err := rows.Scan(&created, &hash, &env); err != nil {
			return nil, nil, fmt.Errorf("query archive by topics: scan: %w", err)
		}
		if len(hash) != 32 {
			return nil, nil, fmt.Errorf("query archive by topics: row at created %d: hash of %d bytes", created, len(hash))
		}
		if len(envelopes) == q.Limit || q.MaxBytes > 0 && len(envelopes) > 0 && size+len(env) > q.MaxBytes {
			next = mailserver.CursorOf(lastCreated, lastHash) // a match follows the last one returned
			break
		}
		size += len(env)
		envelopes = append(envelopes, env)
		lastCreated, lastHash = uint32(created), [32]byte(hash)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("query archive by topics: read rows: %w", err)
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
