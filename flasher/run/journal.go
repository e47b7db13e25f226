package run

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// EnvStateDir overrides where journals are kept.
const EnvStateDir = "PFLASH_STATE_DIR"

// Journal statuses.
const (
	JournalRunning   = "running"
	JournalFailed    = "failed"
	JournalCancelled = "cancelled"
	JournalDone      = "done"
)

// Journal is what a run writes down about its progress, one file per device, so that a run
// interrupted by a crash, a cancel, an unplugged cable or a power cut can be finished by
// running the same target again. The device itself is always re-read on resume (flash is
// the truth: a half-written slot fails its CRC and is written again); the journal says
// what was going on, so the person is told where it stopped and a different target is
// noticed.
type Journal struct {
	DeviceID string `json:"device_id"`
	Platform string `json:"platform"`
	// Target names the target for people; TargetKey identifies its exact modules.
	Target    string    `json:"target"`
	TargetKey string    `json:"target_key"`
	From      string    `json:"from,omitempty"`
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
	// Steps are the step IDs of the plan being run; Done those finished, in order.
	Steps []string `json:"steps"`
	Done  []string `json:"done"`
	// Titles are the titles for people of the steps by ID, of every plan this run has
	// followed (a replan keeps the done steps' titles); where one is missing (journals
	// written before they were kept) the ID stands in.
	Titles map[string]string `json:"titles,omitempty"`
	// Current is the step in progress ("" between steps): the one a crash interrupted.
	Current string `json:"current,omitempty"`
	// Runs counts the runs toward this target (1 for the first).
	Runs   int    `json:"runs"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Finished reports whether the journal's run reached its target.
func (j *Journal) Finished() bool { return j.Status == JournalDone }

// Where says where the journalled run stopped, for a person: by the step's title, not by
// numbers (the app's checklist counts its rows, which join a write and its install).
func (j *Journal) Where() string {
	switch {
	case j.Current != "":
		return fmt.Sprintf("during the step \u201c%s\u201d", j.title(j.Current))
	case len(j.Done) > 0:
		return fmt.Sprintf("after the step \u201c%s\u201d", j.title(j.Done[len(j.Done)-1]))
	}
	return "before the first step"
}

// How says for a person how the journalled run ended: cancelled, failed and why (without
// the chain of package prefixes), or interrupted (a crash, a power cut or an unplugged
// computer left it marked running).
func (j *Journal) How() string {
	switch {
	case j.Status == JournalCancelled:
		return "it was cancelled"
	case j.Error != "":
		return "it failed: " + words.LowerFirst(remedy.HumanText(j.Error))
	case j.Status == JournalRunning:
		return "it was interrupted"
	}
	return j.Status
}

// setSteps records the plan being run: its step IDs and their titles.
func (j *Journal) setSteps(p *plan.Plan) {
	j.Steps = make([]string, len(p.Steps))
	if j.Titles == nil {
		j.Titles = map[string]string{}
	}
	for i, s := range p.Steps {
		j.Steps[i], j.Titles[s.ID] = s.ID, Title(s)
	}
}

// title is the title of the step with the given ID, or the ID when it is not known.
func (j *Journal) title(id string) string {
	if t, ok := j.Titles[id]; ok {
		return t
	}
	return id
}

// Store keeps journals in a directory.
type Store struct {
	Dir string
}

// DefaultStateDir is where journals live unless told otherwise: $PFLASH_STATE_DIR, else
// the per-user state directory ($XDG_STATE_HOME/pflash or ~/.local/state/pflash on Linux;
// the per-user config directory elsewhere, since Go has no state directory there).
func DefaultStateDir() (string, error) {
	if d := os.Getenv(EnvStateDir); d != "" {
		return d, nil
	}
	if runtime.GOOS == "linux" {
		if d := os.Getenv("XDG_STATE_HOME"); d != "" {
			return filepath.Join(d, "pflash"), nil
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("run: no state directory: %w", err)
		}
		return filepath.Join(home, ".local", "state", "pflash"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("run: no state directory: %w", err)
	}
	return filepath.Join(d, "pflash", "state"), nil
}

func (s *Store) path(id string) string {
	return filepath.Join(s.Dir, "journal-"+strings.ToLower(id)+".json")
}

// Load returns the device's journal, nil when there is none.
func (s *Store) Load(id string) (*Journal, error) {
	if s == nil || s.Dir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run: read the journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		// A journal cut short by a crash says nothing reliable; the device is re-read anyway.
		return nil, nil
	}
	return &j, nil
}

// Save writes the journal atomically (a crash leaves the old or the new one, never half).
func (s *Store) Save(j *Journal) error {
	if s == nil || s.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("run: journal directory: %w", err)
	}
	j.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.Dir, ".journal-*")
	if err != nil {
		return fmt.Errorf("run: write the journal: %w", err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("run: write the journal: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path(j.DeviceID)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("run: write the journal: %w", err)
	}
	return nil
}

// TargetKey identifies a target by its exact modules (function, index, version and CRC of
// each) and options that change the result, whatever it is called.
func TargetKey(t plan.Target) string {
	var parts []string
	add := func(role string, m *module.Module) {
		if m != nil {
			parts = append(parts, fmt.Sprintf("%s:%d/%d/%d/%08x", role, m.Function, m.Index, m.Version, m.StoredCRC))
		}
	}
	for _, m := range t.Modules {
		add("os", m)
	}
	slices.Sort(parts)
	add("app", t.App)
	add("replacement", t.ReplacementApp)
	o := t.Options
	parts = append(parts, fmt.Sprintf("opts:%t/%t/%t", o.NoBootloader, o.NoSoftDevice, o.NoNCP))
	sum := sha256.Sum256([]byte(strings.Join(parts, ";")))
	return hex.EncodeToString(sum[:12])
}
