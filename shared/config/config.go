// Package config reads yzpay's configuration: the process environment plus an
// optional envrc file (as the original service had) whose lines look like
//
//	# comment
//	export NAME=value
//	NAME="value with spaces"
//
// A variable set in the real environment wins over the file. Accessors parse
// typed values; their errors name the variable but never show its value,
// because values are often secrets.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env is a read-only snapshot of the configuration.
type Env struct {
	vars map[string]string
}

// Load reads envrcPath (a missing file is not an error; an empty path skips
// the file) and overlays the process environment on it.
func Load(envrcPath string) (Env, error) {
	vars := map[string]string{}
	if envrcPath != "" {
		f, err := os.Open(envrcPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return Env{}, fmt.Errorf("config: %w", err)
		default:
			err = parseEnvrc(f, envrcPath, vars)
			f.Close()
			if err != nil {
				return Env{}, err
			}
		}
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			vars[k] = v
		}
	}
	return Env{vars: vars}, nil
}

// ParseEnvrc parses an envrc file's contents; name is used in error messages.
// It is exported for tools that want to check a file without loading the
// environment.
func ParseEnvrc(r io.Reader, name string) (map[string]string, error) {
	m := map[string]string{}
	if err := parseEnvrc(r, name, m); err != nil {
		return nil, err
	}
	return m, nil
}

func parseEnvrc(r io.Reader, name string, into map[string]string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			line = strings.TrimSpace(rest)
		}
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return fmt.Errorf("config: %s:%d: expected NAME=value", name, n)
		}
		if !validName(key) {
			// The "name" may be a pasted secret; do not echo it.
			return fmt.Errorf("config: %s:%d: invalid variable name", name, n)
		}
		v, err := unquote(strings.TrimSpace(val))
		if err != nil {
			return fmt.Errorf("config: %s:%d: %s: %v", name, n, key, err)
		}
		into[key] = v
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("config: %s:%d: %w", name, n+1, err)
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote strips one pair of matching quotes. Inside quotes the value is
// literal (no escapes, no expansion), so a secret containing $ or \ survives.
// An unquoted value may carry a trailing " # comment"; quote a value that
// itself contains " #".
func unquote(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if q := v[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(v[1:], q)
		if end < 0 {
			return "", errors.New("unterminated quote")
		}
		rest := strings.TrimSpace(v[end+2:])
		if rest != "" && rest[0] != '#' {
			return "", errors.New("text after closing quote")
		}
		return v[1 : end+1], nil
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	} else if i := strings.Index(v, "\t#"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}

// FromMap returns an Env holding exactly m (no environment, no file), for tests.
func FromMap(m map[string]string) Env {
	vars := make(map[string]string, len(m))
	for k, v := range m {
		vars[k] = v
	}
	return Env{vars: vars}
}

// Lookup returns the value of name and whether it is set (possibly empty).
func (e Env) Lookup(name string) (string, bool) {
	v, ok := e.vars[name]
	return v, ok
}

// Get returns the value of name, or def when it is unset or empty: an empty
// assignment in envrc or the environment means "use the default".
func (e Env) Get(name, def string) string {
	if v := e.vars[name]; strings.TrimSpace(v) != "" {
		return v
	}
	return def
}

// Int returns name parsed as a decimal integer, or def when unset or empty.
func (e Env) Int(name string, def int) (int, error) {
	v := strings.TrimSpace(e.vars[name])
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return def, fmt.Errorf("config: %s: not an integer", name)
	}
	return n, nil
}

// Duration returns name parsed as a Go duration ("30m", "1h30m"), or def when
// unset or empty. Negative durations are rejected: every duration yzpay reads
// is a delay or a lifetime.
func (e Env) Duration(name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(e.vars[name])
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return def, fmt.Errorf("config: %s: not a duration such as 30s or 5m", name)
	}
	if d < 0 {
		return def, fmt.Errorf("config: %s: must not be negative", name)
	}
	return d, nil
}

// Durations returns name parsed as comma-separated Go durations, each > 0
// (e.g. "5s,30s,2m"), or a copy of def when unset or empty.
func (e Env) Durations(name string, def []time.Duration) ([]time.Duration, error) {
	v := strings.TrimSpace(e.vars[name])
	if v == "" {
		return append([]time.Duration(nil), def...), nil
	}
	parts := strings.Split(v, ",")
	out := make([]time.Duration, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		d, err := time.ParseDuration(p)
		if err != nil {
			return nil, fmt.Errorf("config: %s: item %d is not a duration such as 30s or 5m", name, i+1)
		}
		if d <= 0 {
			return nil, fmt.Errorf("config: %s: item %d must be greater than zero", name, i+1)
		}
		out = append(out, d)
	}
	return out, nil
}

// List splits name on sep, trims each item and drops empty ones; nil when
// unset or empty.
func (e Env) List(name, sep string) []string {
	var out []string
	for _, p := range strings.Split(e.vars[name], sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Missing lists required variables that are unset or empty.
type Missing []string

func (m Missing) Error() string {
	return "missing required configuration: " + strings.Join(m, ", ")
}

// Require returns Missing with every name that is unset or blank, in the
// order given, or nil when all are set, so a service can refuse to start with
// one line naming everything the operator has to supply.
func (e Env) Require(names ...string) error {
	var m Missing
	for _, n := range names {
		if strings.TrimSpace(e.vars[n]) == "" {
			m = append(m, n)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// Bool returns name as a boolean (1, true, yes, on / 0, false, no, off, any
// case); unset or empty is false.
func (e Env) Bool(name string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(e.vars[name])) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, fmt.Errorf("config: %s: must be 1 or 0 (true or false)", name)
}
