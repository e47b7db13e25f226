package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Status is how recording goes, for the person at the bench.
type Status struct {
	// Spooling: rows are waiting in the spool because the store cannot be reached.
	Spooling bool `json:"spooling"`
	// Pending is how many rows wait; Err why the last write failed (nil once caught up).
	Pending int   `json:"pending"`
	Err     error `json:"-"`
	// Where names the store and SpoolPath the spool file.
	Where     string `json:"where"`
	SpoolPath string `json:"spool"`
}

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	Store Store
	// SpoolPath is the spool file (required).
	SpoolPath string
	// Station is the bench's name: its rows still running when it starts again are
	// marked interrupted.
	Station string
	// OnStatus is told when spooling starts and when the spool is empty again.
	OnStatus func(Status)
	Logger   *slog.Logger
	// Timeout bounds one write (0: 5s); Retry is how often a waiting spool is tried
	// again (0: 1s).
	Timeout, Retry time.Duration
}

// Recorder writes a bench's rows to its store, or to its spool while the store cannot be
// reached, and sends the spool in order as soon as the store is back. Rows of one run
// are kept in the order they were written. The bench never waits for a database that is
// down longer than one write's timeout.
type Recorder struct {
	o     RecorderOptions
	log   *slog.Logger
	spool *Spool
	since time.Time

	mu            sync.Mutex
	spooling      bool
	lastErr       error
	interruptDone bool

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// NewRecorder opens the spool and starts sending what waits in it (rows a crashed or
// disconnected earlier session left), then marks this station's rows that were still
// running as interrupted.
func NewRecorder(o RecorderOptions) (*Recorder, error) {
	if o.Store == nil || o.SpoolPath == "" {
		return nil, errors.New("records: a recorder needs a store and a spool file")
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	sp, err := OpenSpool(o.SpoolPath)
	if err != nil {
		return nil, err
	}
	r := &Recorder{o: o, log: o.Logger, spool: sp, since: time.Now(),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if r.log == nil {
		r.log = slog.Default()
	}
	if sp.Torn > 0 {
		r.log.Warn("records: damaged spool lines dropped", "spool", sp.Path(), "lines", sp.Torn)
	}
	if sp.Len() > 0 {
		r.spooling = true
	}
	r.catchUp(context.Background())
	go r.loop()
	return r, nil
}

// Status says how recording goes now.
func (r *Recorder) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statusLocked()
}

func (r *Recorder) statusLocked() Status {
	return Status{Spooling: r.spooling, Pending: r.spool.Len(), Err: r.lastErr, Where: r.o.Store.Where(), SpoolPath: r.spool.Path()}
}

// setSpooling records a change and tells OnStatus about it.
func (r *Recorder) setSpooling(on bool, err error) {
	r.mu.Lock()
	changed := on != r.spooling
	r.spooling, r.lastErr = on, err
	st := r.statusLocked()
	r.mu.Unlock()
	if changed {
		if on {
			r.log.Warn("records: the store cannot be reached; spooling", "store", st.Where, "spool", st.SpoolPath, "err", err)
		} else {
			r.log.Info("records: spool sent", "store", st.Where)
		}
		if r.o.OnStatus != nil {
			r.o.OnStatus(st)
		}
	}
}

// Record writes a row: to the store when it can be reached and nothing waits in the
// spool, else to the spool (an error only when even the spool cannot be written). For a
// finished row it returns the unit's finished rows of other runs on other stations (a
// unit flashed on two benches), as far as the store can tell now.
func (r *Recorder) Record(ctx context.Context, row Row) (others []Row, err error) {
	var putErr error
	if r.spool.Len() == 0 {
		wctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
		putErr = r.o.Store.Put(wctx, row)
		cancel()
		if putErr == nil {
			if Finished(row.Result) {
				others = r.othersOf(ctx, row)
			}
			return others, nil
		}
	}
	if err := r.spool.Append(row); err != nil {
		return nil, err
	}
	if putErr == nil {
		putErr = r.Status().Err
	}
	r.setSpooling(true, putErr)
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return nil, nil
}

func (r *Recorder) othersOf(ctx context.Context, row Row) []Row {
	qctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	rows, err := r.o.Store.Rows(qctx, Filter{DeviceID: row.DeviceID})
	if err != nil {
		return nil
	}
	var out []Row
	for _, o := range rows {
		if o.RunID != row.RunID && o.Station != row.Station && Finished(o.Result) {
			out = append(out, o)
		}
	}
	return out
}

func (r *Recorder) loop() {
	defer close(r.done)
	t := time.NewTicker(r.o.Retry)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
			// A row was just spooled because a write failed: wait for the next tick
			// rather than hammering a database that is down.
			continue
		}
		r.catchUp(context.Background())
	}
}

// catchUp sends the spool in order, then (once) marks the station's interrupted rows.
func (r *Recorder) catchUp(ctx context.Context) bool {
	rows := r.spool.Pending()
	sent := 0
	var err error
	for _, row := range rows {
		wctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
		err = r.o.Store.Put(wctx, row)
		cancel()
		if err != nil {
			break
		}
		sent++
	}
	if sent > 0 {
		if derr := r.spool.Drop(sent); derr != nil {
			r.log.Error("records: spool", "err", derr)
			return false
		}
	}
	if err != nil {
		r.setSpooling(true, err)
		return false
	}
	r.mu.Lock()
	need := !r.interruptDone && r.o.Station != ""
	r.mu.Unlock()
	if need {
		ictx, cancel := context.WithTimeout(ctx, r.o.Timeout)
		n, err := r.o.Store.Interrupt(ictx, r.o.Station, r.since)
		cancel()
		if err != nil {
			r.setSpooling(r.spool.Len() > 0, err)
			return false
		}
		if n > 0 {
			r.log.Info("records: runs cut short by the bench's last stop marked interrupted", "station", r.o.Station, "rows", n)
		}
		r.mu.Lock()
		r.interruptDone = true
		r.mu.Unlock()
	}
	if r.spool.Len() == 0 {
		r.setSpooling(false, nil)
		return true
	}
	return false
}

// Close stops the recorder after a last try to send the spool, for as long as ctx
// allows. Rows still waiting stay in the spool file for the next start; the returned
// Status says how many.
func (r *Recorder) Close(ctx context.Context) (Status, error) {
	close(r.stop)
	<-r.done
	for r.spool.Len() > 0 && ctx.Err() == nil {
		if r.catchUp(ctx) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.o.Retry):
		}
	}
	st := r.Status()
	err := errors.Join(r.spool.Close(), r.o.Store.Close())
	if st.Pending > 0 {
		return st, fmt.Errorf("records: %d row(s) could not reach %s and wait in %s; they are sent when the bench next starts", st.Pending, st.Where, st.SpoolPath)
	}
	return st, err
}
