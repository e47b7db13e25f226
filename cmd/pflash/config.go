package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// EnvConfig names the configuration file instead of the default location.
const EnvConfig = "PFLASH_CONFIG"

// config is ~/.config/particle-flasher/config.toml: defaults for a bench or a technician's
// laptop, so flags need not be repeated. Flags win over environment variables, which win
// over the file.
type config struct {
	CacheDir  string   `toml:"cache_dir"`
	StateDir  string   `toml:"state_dir"`
	Mirrors   []string `toml:"mirrors"`
	Offline   *bool    `toml:"offline"`
	AllowHTTP *bool    `toml:"allow_http"`
	Jobs      int      `toml:"jobs"`
	Verify    string   `toml:"verify"`
	// DB is the factory record store (a postgres:// URL or a SQLite file); Station,
	// Operator and Lot fill `pflash factory`'s flags of those names.
	DB       string `toml:"db"`
	Station  string `toml:"station"`
	Operator string `toml:"operator"`
	Lot      string `toml:"lot"`
}

// configSetting ties a file key to the flag it fills and the environment variable that
// outranks it.
type configSetting struct {
	flag, env string
	values    func(c *config) []string
}

var configSettings = []configSetting{
	{"cache-dir", "PFLASH_CACHE_DIR", func(c *config) []string { return nonEmpty(c.CacheDir) }},
	{"state-dir", "PFLASH_STATE_DIR", func(c *config) []string { return nonEmpty(c.StateDir) }},
	{"mirror", "", func(c *config) []string { return c.Mirrors }},
	{"offline", "", func(c *config) []string { return boolValue(c.Offline) }},
	{"allow-http", "", func(c *config) []string { return boolValue(c.AllowHTTP) }},
	{"jobs", "", func(c *config) []string {
		if c.Jobs > 0 {
			return []string{strconv.Itoa(c.Jobs)}
		}
		return nil
	}},
	{"verify", "", func(c *config) []string { return nonEmpty(c.Verify) }},
	{"db", EnvDB, func(c *config) []string { return nonEmpty(c.DB) }},
	{"station", "", func(c *config) []string { return nonEmpty(c.Station) }},
	{"operator", "", func(c *config) []string { return nonEmpty(c.Operator) }},
	{"lot", "", func(c *config) []string { return nonEmpty(c.Lot) }},
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func boolValue(b *bool) []string {
	if b == nil {
		return nil
	}
	return []string{strconv.FormatBool(*b)}
}

// configPath is where the configuration is read from; explicit says whether the person
// named it (then a missing file is an error).
func configPath(flagValue string) (path string, explicit bool) {
	if flagValue != "" {
		return flagValue, true
	}
	if p := os.Getenv(EnvConfig); p != "" {
		return p, true
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", false
	}
	return filepath.Join(dir, "particle-flasher", "config.toml"), false
}

func loadConfig(path string, explicit bool) (*config, error) {
	var c config
	if path == "" {
		return &c, nil
	}
	md, err := toml.DecodeFile(path, &c)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return &c, nil
	}
	if err != nil {
		return nil, remedy.With(fmt.Errorf("read configuration %s: %w", path, err),
			"fix the file (TOML: cache_dir, state_dir, mirrors, offline, allow_http, jobs, verify, db, station, operator, lot) or move it away")
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return nil, remedy.With(fmt.Errorf("configuration %s: unknown key(s) %s", path, strings.Join(keys, ", ")),
			"known keys: cache_dir, state_dir, mirrors, offline, allow_http, jobs, verify, db, station, operator, lot")
	}
	return &c, nil
}

// applyConfig fills the flags of cmd the person did not give (and whose environment
// variable is unset) from the configuration file.
func applyConfig(cmd *cobra.Command, c *config) error {
	for _, s := range configSettings {
		f := cmd.Flags().Lookup(s.flag)
		if f == nil || f.Changed || (s.env != "" && os.Getenv(s.env) != "") {
			continue
		}
		vals := s.values(c)
		if len(vals) == 0 {
			continue
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			if err := sv.Replace(vals); err != nil {
				return fmt.Errorf("configuration %s: %w", s.flag, err)
			}
			continue
		}
		if err := f.Value.Set(vals[0]); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("configuration value for %s: %w", s.flag, err)}
		}
	}
	return nil
}
