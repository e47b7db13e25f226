package records

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/particle-flasher/particle-flasher/flasher/state"
)

//go:embed migrations
var migrations embed.FS

// Filter selects rows; zero fields select everything.
type Filter struct {
	Lot, Station, DeviceID string
	// Since keeps rows whose run started at or after it.
	Since time.Time
}

// Store is where rows are kept. Every method is safe for concurrent use, by this process
// and by other benches on the same database.
type Store interface {
	// Put writes a row, replacing the row with the same device ID and run ID unless that
	// one is further along (a finished row is never replaced by its running one).
	Put(ctx context.Context, r Row) error
	// Rows lists the rows the filter selects, oldest run first.
	Rows(ctx context.Context, f Filter) ([]Row, error)
	// Interrupt marks the rows of a station still running that started before since as
	// interrupted: their bench stopped without finishing them. It returns how many.
	Interrupt(ctx context.Context, station string, since time.Time) (int, error)
	// Ping checks that the store can be reached and its schema is in place.
	Ping(ctx context.Context) error
	// Where names the store for a person: "PostgreSQL db on host" or the SQLite file.
	Where() string
	Close() error
}

// IsPostgres reports whether a --db value names PostgreSQL (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsPostgres(dsn string) bool {
	l := strings.ToLower(strings.TrimSpace(dsn))
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// DefaultFile is the SQLite file in a state directory.
func DefaultFile(stateDir string) string { return filepath.Join(stateDir, "records.db") }

// Open opens the store a --db value names: a PostgreSQL URL, or a SQLite file path
// (sqlite:// and file: prefixes allowed). Nothing is contacted yet: a database that is
// down at start is not an error, the first write finds out (and the Recorder spools).
// The schema is migrated on first use.
func Open(dsn string) (Store, error) {
	dsn = strings.TrimSpace(dsn)
	if dsn == "" {
		return nil, errors.New("records: no database given")
	}
	if IsPostgres(dsn) {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("records: the PostgreSQL URL: %w", err)
		}
		if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > connectTimeout {
			// A bench must notice a database that is down quickly, and spool.
			cfg.ConnectTimeout = connectTimeout
		}
		db := stdlib.OpenDB(*cfg)
		db.SetMaxOpenConns(4)
		db.SetConnMaxIdleTime(time.Minute)
		where := fmt.Sprintf("PostgreSQL database %q on %s", cfg.Database, cfg.Host)
		return &sqlStore{db: db, pg: true, where: where}, nil
	}
	path := dsn
	for _, p := range []string{"sqlite://", "sqlite:", "file:"} {
		path = strings.TrimPrefix(path, p)
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	// WAL lets a report read while a bench writes; busy_timeout lets two processes on
	// the same file wait for each other instead of failing.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	db.SetMaxOpenConns(1)
	return &sqlStore{db: db, where: "SQLite file " + path}, nil
}

// connectTimeout bounds a connection attempt to PostgreSQL.
const connectTimeout = 3 * time.Second

// sqlStore is both dialects: the SQL is the same but for placeholders and time columns.
type sqlStore struct {
	db    *sql.DB
	pg    bool
	where string

	mu       sync.Mutex
	migrated bool
}

func (s *sqlStore) Where() string { return s.where }
func (s *sqlStore) Close() error  { return s.db.Close() }

// migrate applies the schema once per process (goose; on PostgreSQL under an advisory
// lock, so benches starting together do not race).
func (s *sqlStore) migrate(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated {
		return nil
	}
	dialect, dir := goose.DialectSQLite3, "migrations/sqlite"
	var opts []goose.ProviderOption
	if s.pg {
		dialect, dir = goose.DialectPostgres, "migrations/postgres"
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 60))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, s.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("records: migrations: %w", err)
	}
	_, err = p.Up(ctx)
	for try := 0; err != nil && !s.pg && try < 5 && ctx.Err() == nil; try++ {
		// SQLite has no lock for goose to take: two benches opening a new file at once
		// may both try the first migration, and the loser finds it applied on a retry.
		time.Sleep(time.Duration(50*(try+1)) * time.Millisecond)
		_, err = p.Up(ctx)
	}
	if err != nil {
		return fmt.Errorf("records: %s: applying the schema: %w", s.where, err)
	}
	s.migrated = true
	return nil
}

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("records: %s: %w", s.where, err)
	}
	return s.migrate(ctx)
}

// q rewrites ? placeholders as $n for PostgreSQL.
func (s *sqlStore) q(query string) string {
	if !s.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// timeFormat is fixed-width, so SQLite's text times sort as times.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func (s *sqlStore) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if s.pg {
		return t.UTC()
	}
	return t.UTC().Format(timeFormat)
}

// dbTime scans either dialect's time column.
type dbTime struct{ t time.Time }

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		d.t = time.Time{}
	case time.Time:
		d.t = v.UTC()
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("records: a time column holds %T", src)
	}
	return nil
}

func (d *dbTime) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("records: a time column holds %q: %w", s, err)
	}
	d.t = t.UTC()
	return nil
}

// seqOf orders a run's writes: its start, then its end.
func seqOf(result string) int {
	if Finished(result) {
		return 2
	}
	return 1
}

const columns = "device_id, run_id, seq, serial_number, iccid, imei, platform, device_os_before, device_os_after, " +
	"modules_before, modules_after, app, target, protection, setup_done, result, error, remedy, started_at, ended_at, " +
	"duration_seconds, station, operator, lot, plug"

func (s *sqlStore) Put(ctx context.Context, r Row) error {
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if r.DeviceID == "" || r.RunID == "" {
		return errors.New("records: a row needs a device ID and a run ID")
	}
	before, err := json.Marshal(nonNil(r.ModulesBefore))
	if err != nil {
		return err
	}
	after, err := json.Marshal(nonNil(r.ModulesAfter))
	if err != nil {
		return err
	}
	started := r.Started
	if started.IsZero() {
		started = r.Time
	}
	set := []string{}
	for _, c := range strings.Split(columns, ", ")[2:] {
		set = append(set, c+" = excluded."+c)
	}
	query := "INSERT INTO units (" + columns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
		"ON CONFLICT (device_id, run_id) DO UPDATE SET " + strings.Join(set, ", ") + " WHERE units.seq <= excluded.seq"
	_, err = s.db.ExecContext(ctx, s.q(query),
		r.DeviceID, r.RunID, seqOf(r.Result), r.SerialNumber, r.ICCID, r.IMEI, r.Platform, r.Before, r.After,
		string(before), string(after), r.App, r.Target, r.Protection.String(), r.SetupDone.String(), r.Result, r.Error, r.Remedy,
		s.timeArg(started), s.timeArg(r.Time), r.DurationSeconds, r.Station, r.Operator, r.Lot, r.Plug)
	if err != nil {
		return fmt.Errorf("records: %s: writing the row of %s: %w", s.where, r.DeviceID, err)
	}
	return nil
}

func nonNil(m []Module) []Module {
	if m == nil {
		return []Module{}
	}
	return m
}

func (s *sqlStore) Rows(ctx context.Context, f Filter) ([]Row, error) {
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"lot", f.Lot}, {"station", f.Station}, {"device_id", strings.ToLower(f.DeviceID)}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "started_at >= ?")
		args = append(args, s.timeArg(f.Since))
	}
	query := "SELECT " + columns + " FROM units"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY started_at, device_id, run_id"
	rs, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("records: %s: %w", s.where, err)
	}
	defer rs.Close()
	var out []Row
	for rs.Next() {
		var r Row
		var seq int
		var before, after, prot, setup string
		var started, ended dbTime
		if err := rs.Scan(&r.DeviceID, &r.RunID, &seq, &r.SerialNumber, &r.ICCID, &r.IMEI, &r.Platform, &r.Before, &r.After,
			&before, &after, &r.App, &r.Target, &prot, &setup, &r.Result, &r.Error, &r.Remedy, &started, &ended,
			&r.DurationSeconds, &r.Station, &r.Operator, &r.Lot, &r.Plug); err != nil {
			return nil, fmt.Errorf("records: %s: %w", s.where, err)
		}
		r.Started, r.Time = started.t, ended.t
		_ = json.Unmarshal([]byte(before), &r.ModulesBefore)
		_ = json.Unmarshal([]byte(after), &r.ModulesAfter)
		r.Protection, _ = state.ParseProtection(prot)
		r.SetupDone = parseFlag(setup)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("records: %s: %w", s.where, err)
	}
	return out, nil
}

func parseFlag(s string) state.Flag {
	switch s {
	case state.FlagYes.String():
		return state.FlagYes
	case state.FlagNo.String():
		return state.FlagNo
	}
	return state.FlagUnknown
}

func (s *sqlStore) Interrupt(ctx context.Context, station string, since time.Time) (int, error) {
	if err := s.migrate(ctx); err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, s.q("UPDATE units SET result = ?, error = ? WHERE station = ? AND result = ? AND started_at < ?"),
		ResultInterrupted, "the bench stopped before this unit's run ended (crash, kill or power loss)", station, ResultRunning, s.timeArg(since))
	if err != nil {
		return 0, fmt.Errorf("records: %s: %w", s.where, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
