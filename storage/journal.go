package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/easel-bot/easel/internal/regfile"
)

// The inbox journal. A delivery must be durable before the platform is
// told it arrived, and a bbolt commit is two fdatasyncs, behind whatever
// commit is in flight (turn updates, under load). So Receive does not
// commit: it appends a record to inbox.journal, beside easel.db, and
// returns once an fdatasync of the journal covers it. Appends arriving
// while an fdatasync is in flight share the next one; one arriving alone is
// synced at once.
//
// A synced record is then moved into bbolt (its dedupe mark and its inbox
// entry) by the next commit: every commit of the queue (see commit.go)
// begins by moving every record synced so far, so any write made after
// Receive returned, such as the turn that handles the delivery, finds the
// delivery in bbolt; that write is usually the delivery's own turn, so the
// move costs no commit of its own unless none comes within moveDelay. The
// same transaction records the sequence number of
// the last record moved (meta "journal"). Once every record is moved and
// the journal holds 1 MiB or more, or on Open and Close, it is truncated to
// nothing. Replaying a journal on Open moves only the records with a higher
// sequence number, so a record is moved once, also when a crash lost the
// truncation.
//
// Until moved, a record lives in memory too: Receive and MarkEvent take it
// as a dedupe mark, Unhandled lists it, and Handled deletes its inbox entry
// through the commit queue, which moves it first. MarkEvent still commits
// its mark to bbolt; a Receive of a key being marked waits for that commit.
//
// A record is a header, the body's length and its CRC-32C (both uint32,
// little endian), then the body: its kind (1 byte, recDelivery), sequence
// number (uint64), received time (Unix nanoseconds, int64), ttl
// (nanoseconds, int64), the key's length (uint32), the key, and the inbox
// entry (JSON core.Delivery) to its end.

// journalFile is the name of the inbox journal inside a data dir.
const journalFile = "inbox.journal"

// recDelivery is the kind of a record of a delivery: a dedupe mark and an
// inbox entry. A later format would be another kind.
const recDelivery byte = 1

const (
	recHeader = 8                 // body length, CRC-32C of the body
	recFixed  = 1 + 8 + 8 + 8 + 4 // kind, seq, at, ttl, key length
	// maxRecord bounds a record's body: a delivery's payload is far smaller.
	maxRecord = 4 << 20
	// journalLimit is the size past which an append waits until every
	// record is moved into bbolt and the journal truncated, or fails if
	// moving them fails. Records are moved within a commit or two, so only
	// a store whose commits stall or fail gets here, and then the journal
	// does not fill the disk.
	journalLimit = 16 << 20
	// truncateAt is the size from which the journal is truncated as soon
	// as every record in it is moved. Truncating costs about as much as an
	// fdatasync, under the lock appends take: doing it whenever the journal
	// drained delayed the acks that came meanwhile. Records already moved
	// cost a replay nothing but reading them.
	truncateAt = 1 << 20
	// maxJournalRead bounds the journal Open reads; Easel never writes one
	// much past journalLimit.
	maxJournalRead = 4 * journalLimit
	// migrateRetry is how long the journal waits before trying again to
	// move records into bbolt after a failed commit, if no other write
	// comes first.
	migrateRetry = time.Second
	// moveDelay is how long a synced record waits for a commit to carry it
	// into bbolt before one is made for it alone. The delivery's own
	// handling (its turn, or Handled) usually commits well within it, and
	// that commit moves the record first: a commit, two fdatasyncs, saved
	// per delivery. Nothing waits on the move meanwhile: readers see the
	// record in memory, and a crash replays it.
	moveDelay = 100 * time.Millisecond
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// keyJournal, in bucketMeta, holds the sequence number of the last journal
// record moved into bbolt, 8 bytes big-endian.
var keyJournal = []byte("journal")

// record is one journal record.
type record struct {
	kind  byte
	seq   uint64
	at    time.Time
	ttl   time.Duration
	key   string
	value []byte // the inbox entry, JSON core.Delivery
}

// expires returns when the record's dedupe mark expires.
func (r *record) expires() time.Time { return r.at.Add(r.ttl) }

// encode returns r framed, header included.
func (r *record) encode() []byte {
	n := recFixed + len(r.key) + len(r.value)
	b := make([]byte, recHeader, recHeader+n)
	b = append(b, r.kind)
	b = binary.LittleEndian.AppendUint64(b, r.seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.at.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.ttl))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.key)))
	b = append(b, r.key...)
	b = append(b, r.value...)
	binary.LittleEndian.PutUint32(b, uint32(n))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[recHeader:], crcTable))
	return b
}

// errShort is parseRecord's error for a record that runs past the end of
// its input.
var errShort = errors.New("the record runs past the end of the file")

// parseRecord parses the record at the start of b and returns it with its
// length, header included. The record's value aliases b.
func parseRecord(b []byte) (record, int, error) {
	if len(b) < recHeader {
		return record{}, 0, errShort
	}
	n := int64(binary.LittleEndian.Uint32(b))
	if n < recFixed || n > maxRecord {
		return record{}, 0, fmt.Errorf("a record length of %d bytes", n)
	}
	if int64(len(b)-recHeader) < n {
		return record{}, 0, errShort
	}
	body := b[recHeader : recHeader+n]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return record{}, 0, errors.New("a checksum mismatch")
	}
	r := record{
		kind: body[0],
		seq:  binary.LittleEndian.Uint64(body[1:]),
		at:   time.Unix(0, int64(binary.LittleEndian.Uint64(body[9:]))),
		ttl:  time.Duration(binary.LittleEndian.Uint64(body[17:])),
	}
	k := int64(binary.LittleEndian.Uint32(body[25:]))
	switch {
	case r.kind != recDelivery:
		return record{}, 0, fmt.Errorf("an unknown record kind %d", r.kind)
	case r.seq == 0 || k == 0 || k > n-recFixed:
		return record{}, 0, errors.New("a malformed record")
	}
	r.key = string(body[recFixed : recFixed+k])
	r.value = body[recFixed+k:]
	return r, recHeader + int(n), nil
}

// scan is what scanJournal found.
type scan struct {
	recs []record
	good int // bytes of intact records, from the start
	// tail says what the bytes from good on are, if there are any.
	tail tail
	bad  error // why the record at good is not intact
}

// tail is what follows a journal's intact records.
type tail int

const (
	tailNone tail = iota
	// tailTorn is an append a crash cut short: never acknowledged.
	tailTorn
	// tailLeftOver is older records, left over from before a truncation a
	// crash lost: all of them were moved into bbolt.
	tailLeftOver
	// tailDamaged is a bad record followed by an intact newer one.
	tailDamaged
)

// scanJournal reads the records of a journal, stopping at the first that
// is not intact, or that is older than the record before it. moved is the
// sequence number of the last record moved into bbolt: a bad record
// followed by an intact one at most as new is a torn append over records
// left over, not damage.
func scanJournal(b []byte, moved uint64) scan {
	var s scan
	var last uint64
	for s.good < len(b) {
		r, n, err := parseRecord(b[s.good:])
		switch {
		case err != nil:
			s.tail, s.bad = tailTorn, err
			if intactAfter(b[s.good:], max(last, moved)) {
				s.tail = tailDamaged
			}
			return s
		case r.seq <= last:
			s.tail = tailLeftOver
			return s
		}
		s.recs = append(s.recs, r)
		s.good += n
		last = r.seq
	}
	return s
}

// intactAfter reports whether an intact record newer than last follows the
// bad record at the start of b: then the journal is damaged, not torn.
func intactAfter(b []byte, last uint64) bool {
	if len(b) < recHeader {
		return false
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < recFixed || n > maxRecord || recHeader+n > len(b) {
		return false
	}
	r, _, err := parseRecord(b[recHeader+n:])
	return err == nil && r.seq > last
}

// pending is a record appended to the journal and not yet known to be
// moved into bbolt.
type pending struct {
	record
	synced bool          // an fdatasync covered it
	err    error         // its write or fdatasync failed: it is not journaled
	done   chan struct{} // closed once synced or failed
}

// journal is the inbox journal of a DB. Its file is nil in a read-only DB,
// whose records are those it read when it opened.
type journal struct {
	path string
	f    *os.File
	log  *slog.Logger

	mu   sync.Mutex
	cond *sync.Cond // on mu: a sync ended, records were moved, or the journal closed

	recs    []*pending          // appended and not known moved, oldest first
	byKey   map[string]*pending // the newest of recs for each key
	marking map[string]int      // keys MarkEvent is committing, and how many times

	seq      uint64 // the last sequence number given
	buf      []byte // records appended since the last round of sync began
	size     int64  // bytes written and synced, ahead of buf
	syncing  bool   // a round of sync is in flight
	syncedTo uint64 // sequence number of the last record synced
	movedTo  uint64 // sequence number of the last record known moved

	failing error         // why the last attempt to move records failed; nil after a success
	retry   *time.Timer   // a retry after a failure
	moving  *time.Timer   // a commit of its own for synced records, after delay
	delay   time.Duration // moveDelay, but for tests
	closing bool          // no more appends
	closed  bool          // the file is closed: nothing more is moved
}

// newJournal returns an empty journal of the file f, opened from path (nil
// in a read-only DB).
func newJournal(path string, f *os.File, log *slog.Logger) *journal {
	j := &journal{path: path, f: f, log: log, byKey: map[string]*pending{}, marking: map[string]int{}, delay: moveDelay}
	j.cond = sync.NewCond(&j.mu)
	return j
}

// add makes r a pending record, synced already or not.
func (j *journal) add(r record, synced bool) *pending {
	p := &pending{record: r, synced: synced, done: make(chan struct{})}
	if synced {
		close(p.done)
	}
	j.recs = append(j.recs, p)
	j.byKey[r.key] = p
	return p
}

// reindex rebuilds byKey from recs.
func (j *journal) reindex() {
	clear(j.byKey)
	for _, p := range j.recs {
		j.byKey[p.key] = p
	}
}

// record appends r (its seq is set here) unless its key is marked, in bbolt
// or by a record not yet moved, until after r.at; it reports whether it did,
// once the append is durable.
//
// Records are appended to a buffer, under j.mu. The first append finding
// no sync in flight leads one: it writes the buffer to the file and
// fdatasyncs it, without the lock, while later records gather in the
// buffer; if some did, a goroutine of its own leads the next round, so that
// no append waits for more than the round in flight and its own.
func (db *DB) record(ctx context.Context, r record) (first bool, err error) {
	j := db.journal
	if j.f == nil {
		return false, berrors.ErrDatabaseReadOnly
	}
	if recFixed+len(r.key)+len(r.value) > maxRecord {
		return false, fmt.Errorf("the record is %d bytes, over the limit of %d", recFixed+len(r.key)+len(r.value), maxRecord)
	}
	if len(r.key) > bolt.MaxKeySize {
		return false, fmt.Errorf("the key is %d bytes, over the limit of %d", len(r.key), bolt.MaxKeySize)
	}
	j.mu.Lock()
	for {
		switch p := j.byKey[r.key]; {
		case j.closing:
			j.mu.Unlock()
			return false, fmt.Errorf("inbox journal %s: the database is closed", j.path)
		case p != nil && !p.synced && p.expires().After(r.at):
			j.mu.Unlock() // the same key, still being synced: its outcome decides
			<-p.done
			j.mu.Lock()
			continue
		case p != nil && p.expires().After(r.at):
			j.mu.Unlock()
			return false, nil
		case j.marking[r.key] > 0:
			j.cond.Wait() // MarkEvent is committing a mark of the key
			continue
		case j.size+int64(len(j.buf)) >= journalLimit && len(j.recs) > 0:
			if err := j.drain(ctx, db); err != nil {
				j.mu.Unlock()
				return false, err
			}
			continue
		}
		break
	}
	if marked, err := db.marked(r.key, r.at); err != nil || marked {
		j.mu.Unlock()
		return false, err
	}
	j.seq++
	r.seq = j.seq
	j.buf = append(j.buf, r.encode()...)
	p := j.add(r, false)
	lead := !j.syncing
	j.syncing = true
	j.mu.Unlock()
	if lead && j.sync(db) {
		go j.syncRounds(db)
	}
	<-p.done
	return p.err == nil, p.err
}

// drain waits, with j.mu held, until every record is moved into bbolt and
// the journal emptied, or until ctx ends; it fails at once if moving
// records fails.
func (j *journal) drain(ctx context.Context, db *DB) error {
	if j.failing != nil {
		return fmt.Errorf("inbox journal %s holds %d bytes not yet moved into %s, which fails: %w", j.path, j.size, DBFile, j.failing)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db.kick() // the records synced so far are moved now, not after moveDelay
	stop := context.AfterFunc(ctx, func() {
		j.mu.Lock()
		j.cond.Broadcast()
		j.mu.Unlock()
	})
	defer stop()
	j.cond.Wait()
	return nil
}

// syncRounds leads rounds of sync until one finds nothing more to write.
func (j *journal) syncRounds(db *DB) {
	for j.sync(db) {
	}
}

// sync leads one round: it writes the buffered records to the file,
// fdatasyncs it and has the records moved into bbolt, or, if either fails,
// cuts the file back and fails the records. It reports whether more
// records were buffered meanwhile, for a next round; if not, no sync is in
// flight any more.
func (j *journal) sync(db *DB) (more bool) {
	j.mu.Lock()
	batch, off := j.buf, j.size
	j.buf = nil
	i := len(j.recs)
	for i > 0 && !j.recs[i-1].synced {
		i--
	}
	recs := slices.Clone(j.recs[i:])
	j.mu.Unlock()

	_, err := j.f.WriteAt(batch, off)
	if err != nil {
		err = fmt.Errorf("write inbox journal %s: %w", j.path, err)
	} else if err = fdatasync(j.f); err != nil {
		err = fmt.Errorf("sync inbox journal %s: %w", j.path, err)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	defer j.cond.Broadcast()
	if err != nil {
		// Even a write said to have written nothing may have grown the
		// file (tmpfs does, on a full disk); and after a failed fdatasync
		// the kernel may have dropped what was written: none of it counts.
		j.cut(off)
		for _, p := range recs {
			p.err = err
		}
		j.recs = slices.DeleteFunc(j.recs, func(p *pending) bool { return p.err != nil })
		j.reindex()
	} else {
		j.size = off + int64(len(batch))
		for _, p := range recs {
			p.synced = true
		}
		if len(recs) > 0 {
			j.syncedTo = recs[len(recs)-1].seq
		}
		j.moveSoon(db)
	}
	for _, p := range recs {
		close(p.done)
	}
	if len(j.buf) == 0 {
		j.syncing = false
		return false
	}
	return true
}

// moveSoon has synced records moved into bbolt by a commit of their own
// after j.delay, unless one is on its way; j.mu is held. The timer stays
// set when an earlier commit moves them: it then finds nothing to move and
// commits nothing.
func (j *journal) moveSoon(db *DB) {
	if j.moving != nil || j.closed {
		return
	}
	j.moving = time.AfterFunc(j.delay, func() {
		j.mu.Lock()
		j.moving = nil
		j.mu.Unlock()
		db.kick()
	})
}

// cut truncates the journal back to size, the end of its last good record,
// after a failed write or fdatasync; j.mu is held.
func (j *journal) cut(size int64) {
	if err := j.f.Truncate(size); err != nil {
		// The next round writes over those bytes from size on; what is left
		// past its end is cut mid-record or older than what precedes it,
		// and a replay drops it.
		j.log.Warn("storage: could not cut the inbox journal back to its last good record", "journal", j.path, "size", size, "err", err)
	}
}

// claim prepares MarkEvent of key at now. It reports journaled if a
// record of key not yet moved into bbolt is live at now (a duplicate),
// waiting first for the sync of one in flight. Otherwise Receive of key
// waits until MarkEvent calls done, its mark committed or not.
func (j *journal) claim(key string, now time.Time) (done func(), journaled bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for {
		p := j.byKey[key]
		if p == nil || !p.expires().After(now) {
			break
		}
		if p.synced {
			return nil, true
		}
		j.cond.Wait()
	}
	j.marking[key]++
	return func() {
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.marking[key]--; j.marking[key] == 0 {
			delete(j.marking, key)
		}
		j.cond.Broadcast()
	}, false
}

// marked reports whether key has a dedupe mark in bbolt that is live at now.
func (db *DB) marked(key string, now time.Time) (bool, error) {
	var live bool
	err := db.view(context.Background(), func(tx *bolt.Tx) error {
		exp := tx.Bucket(bucketEvents).Bucket(bucketEventIDs).Get([]byte(key))
		live = exp != nil && decodeTime(exp).After(now)
		return nil
	})
	return live, err
}

// movedSeq returns the sequence number of the last journal record moved
// into bbolt as of tx.
func movedSeq(tx *bolt.Tx) uint64 {
	v := tx.Bucket(bucketMeta).Get(keyJournal)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// migration returns a write that moves into bbolt every record synced when
// it runs, or nil when none waits.
func (j *journal) migration(db *DB) *write {
	if j == nil || j.f == nil { // Open is migrating the schema, or the DB is read-only
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.syncedTo <= j.movedTo {
		return nil
	}
	var to uint64
	return &write{
		fn: func(tx *bolt.Tx) (err error) {
			to, err = j.move(tx)
			return err
		},
		then: func(err error) { j.moved(db, to, err) },
	}
}

// move moves the synced records that tx does not hold yet into it: their
// dedupe marks, their inbox entries, and the sequence number of the last.
// It returns that number.
func (j *journal) move(tx *bolt.Tx) (uint64, error) {
	to := movedSeq(tx)
	j.mu.Lock()
	var batch []*pending
	for _, p := range j.recs {
		if p.synced && p.seq > to {
			batch = append(batch, p)
		}
	}
	j.mu.Unlock()
	if len(batch) == 0 {
		return to, nil
	}
	inbox := tx.Bucket(bucketInbox)
	for _, p := range batch {
		first, err := markEvent(tx, p.key, p.at, p.ttl)
		if err == nil && first {
			err = inbox.Put([]byte(p.key), p.value)
		}
		if err != nil {
			return 0, fmt.Errorf("storage: move %s from inbox journal %s: %w", p.key, j.path, err)
		}
		to = p.seq
	}
	return to, tx.Bucket(bucketMeta).Put(keyJournal, binary.BigEndian.AppendUint64(nil, to))
}

// moved takes note that the records up to to are in bbolt, or that moving
// them failed with err, in which case it is tried again by the next commit,
// or after migrateRetry if none comes.
func (j *journal) moved(db *DB, to uint64, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	defer j.cond.Broadcast()
	if err != nil {
		if j.failing == nil {
			j.log.Error("storage: could not move deliveries from the inbox journal into the database; they stay in the journal, and Easel tries again", "journal", j.path, "err", err)
		}
		j.failing = err
		if j.retry == nil && !j.closed {
			j.retry = time.AfterFunc(migrateRetry, func() {
				j.mu.Lock()
				j.retry = nil
				j.mu.Unlock()
				db.kick()
			})
		}
		return
	}
	if j.failing != nil {
		j.log.Info("storage: deliveries moved from the inbox journal into the database again", "journal", j.path)
		j.failing = nil
	}
	j.movedTo = max(j.movedTo, to)
	i := 0
	for i < len(j.recs) && j.recs[i].synced && j.recs[i].seq <= j.movedTo {
		if p := j.recs[i]; j.byKey[p.key] == p {
			delete(j.byKey, p.key)
		}
		i++
	}
	j.recs = j.recs[i:]
	if len(j.recs) == 0 && j.size >= truncateAt && !j.closed {
		j.truncate()
	}
}

// truncate empties the journal, every record of which is in bbolt; j.mu is
// held. Not synced: if a crash loses it, a replay skips what was moved.
func (j *journal) truncate() {
	if err := j.f.Truncate(0); err != nil {
		j.log.Warn("storage: could not empty the inbox journal; it is emptied later, and replaying it skips what was moved", "journal", j.path, "err", err)
		return
	}
	j.size = 0
}

// unmoved reports whether key has a synced record not yet known moved,
// waiting first for the sync of a record of key that is in flight.
func (j *journal) unmoved(key string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for {
		p := j.byKey[key]
		if p == nil || p.synced {
			return p != nil
		}
		j.cond.Wait()
	}
}

// deliveries returns the synced records not known moved, oldest first.
func (j *journal) deliveries() []*pending {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*pending
	for _, p := range j.recs {
		if p.synced {
			out = append(out, p)
		}
	}
	return out
}

// flush waits until every synced record is moved into bbolt, or an attempt
// to move them fails, and returns that failure.
func (j *journal) flush(db *DB) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	target := j.syncedTo
	if target <= j.movedTo {
		return nil
	}
	j.failing = nil
	db.kick()
	for j.movedTo < target && j.failing == nil {
		j.cond.Wait()
	}
	return j.failing
}

// close stops appends, moves what the journal holds into bbolt and closes
// the journal, emptied if every record was moved; records that were not
// are replayed by the next Open.
func (j *journal) close(db *DB) error {
	if j == nil || j.f == nil {
		return nil
	}
	j.mu.Lock()
	j.closing = true
	j.cond.Broadcast()
	for j.syncing { // appends already made: their sync decides them
		j.cond.Wait()
	}
	j.mu.Unlock()
	ferr := j.flush(db)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	for _, t := range []**time.Timer{&j.retry, &j.moving} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
	if ferr == nil && len(j.recs) == 0 && j.size > 0 {
		j.truncate()
	}
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("storage: close inbox journal %s: %w", j.path, err)
	}
	if ferr != nil {
		db.log.Warn("storage: deliveries left in the inbox journal; the next start moves them into the database", "journal", j.path, "err", ferr)
	}
	return nil
}

// openJournal opens (creating it, mode 0600) the data dir's inbox journal,
// replays the records it holds that bbolt lacks and empties it. A torn
// record at its end (an append a crash cut short, never acknowledged) is
// dropped and logged; so is everything from a damaged record on, and a
// copy of the journal is kept beside it.
func (db *DB) openJournal(ctx context.Context) error {
	path := filepath.Join(db.dir, journalFile)
	f, err := openJournalFile(path)
	if err != nil {
		return fmt.Errorf("data dir %s: inbox journal: %w", db.dir, err)
	}
	data, err := readJournal(f, path)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("data dir %s: inbox journal: %w", db.dir, err)
	}
	j, s, err := db.loadJournal(ctx, path, f, data)
	if err != nil {
		_ = f.Close()
		return err
	}
	db.journal = j
	if s.tail != tailNone {
		db.reportJournal(path, data, s)
		if err := f.Truncate(int64(s.good)); err != nil {
			// The next appends overwrite those bytes from good on, and
			// whatever is left past them is dropped again next time.
			db.log.Warn("storage: could not cut the inbox journal back to its intact records", "journal", path, "err", err)
		}
		j.size = int64(s.good)
	}
	if len(j.recs) > 0 {
		db.log.Info("storage: replaying the inbox journal", "journal", path, "records", len(j.recs))
		if err := j.flush(db); err != nil {
			db.log.Warn("storage: could not move the inbox journal's records into the database yet; they stay in the journal", "journal", path, "err", err)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.recs) == 0 && j.size > 0 {
		j.truncate()
	}
	return nil
}

// loadJournal returns the journal of data, read from path (f is nil in a
// read-only DB), holding the intact records bbolt lacks, and what the scan
// found.
func (db *DB) loadJournal(ctx context.Context, path string, f *os.File, data []byte) (*journal, scan, error) {
	var moved uint64
	err := db.view(ctx, func(tx *bolt.Tx) error {
		moved = movedSeq(tx)
		return nil
	})
	if err != nil {
		return nil, scan{}, err
	}
	s := scanJournal(data, moved)
	j := newJournal(path, f, db.log)
	j.seq, j.movedTo, j.syncedTo = moved, moved, moved
	j.size = int64(len(data))
	for _, r := range s.recs {
		j.seq = max(j.seq, r.seq)
		if r.seq > moved {
			j.add(r, true)
			j.syncedTo = r.seq
		}
	}
	return j, s, nil
}

// reportJournal logs what was dropped from the journal at path, whose
// contents are data, and keeps a copy of a damaged one.
func (db *DB) reportJournal(path string, data []byte, s scan) {
	dropped := len(data) - s.good
	switch s.tail {
	case tailLeftOver:
		db.log.Info("storage: dropped records left in the inbox journal by an emptying that a crash undid; they were moved into the database before",
			"journal", path, "offset", s.good, "bytes", dropped)
		return
	case tailTorn:
		db.log.Warn("storage: dropped an unfinished record at the end of the inbox journal: Easel stopped while writing it, before its delivery was acknowledged, so the platform sends it again",
			"journal", path, "offset", s.good, "bytes", dropped, "why", s.bad)
		return
	}
	saved := fmt.Sprintf("%s.damaged-%s", path, db.now().UTC().Format("20060102T150405Z"))
	if err := os.WriteFile(saved, data, 0o600); err != nil {
		saved = "not kept: " + err.Error()
	}
	db.log.Error("storage: the inbox journal is damaged: the records before the damage were replayed, everything from it on was dropped; deliveries recorded there may be lost (unless the machine crashed while they were written: then they were never acknowledged, and the platform sends them again)",
		"journal", path, "offset", s.good, "bytes", dropped, "why", s.bad, "copy", saved)
}

// openJournalFile opens the journal at path for reading and writing,
// creating it if need be, and refuses anything but a regular file there (a
// symbolic link is not followed).
func openJournalFile(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: &regfile.NotRegularError{Mode: fi.Mode()}}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|noFollow, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, &fs.PathError{Op: "open", Path: path, Err: &regfile.NotRegularError{Mode: fi.Mode()}}
		}
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		if err == nil {
			err = &fs.PathError{Op: "open", Path: path, Err: &regfile.NotRegularError{Mode: fi.Mode()}}
		}
		return nil, err
	}
	return f, nil
}

// readJournal returns the contents of the journal f, opened from path.
func readJournal(f *os.File, path string) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxJournalRead {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &regfile.TooLargeError{Size: fi.Size(), Limit: maxJournalRead}}
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.NewSectionReader(f, 0, maxJournalRead)); err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return buf.Bytes(), nil
}
