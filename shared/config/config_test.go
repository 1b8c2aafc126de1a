package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeEnvrc(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "envrc")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadEnvrcSyntax(t *testing.T) {
	p := writeEnvrc(t, `# yzpay settings
export YZT_A=plain
YZT_B="double quoted # not a comment"
export	YZT_C='single $HOME \n'
YZT_D=value # trailing comment

  YZT_E = spaced
YZT_F=
YZT_G=a=b=c
YZT_H=abc#def
`)
	env, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"YZT_A": "plain",
		"YZT_B": "double quoted # not a comment",
		"YZT_C": `single $HOME \n`,
		"YZT_D": "value",
		"YZT_E": "spaced",
		"YZT_F": "",
		"YZT_G": "a=b=c",
		"YZT_H": "abc#def",
	}
	for k, w := range want {
		got, ok := env.Lookup(k)
		if !ok || got != w {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, w)
		}
	}
}

func TestEnvironmentWinsOverEnvrc(t *testing.T) {
	p := writeEnvrc(t, "export YZT_WIN=from-file\nYZT_FILE_ONLY=file\nYZT_EMPTY_ENV=file\n")
	t.Setenv("YZT_WIN", "from-env")
	t.Setenv("YZT_EMPTY_ENV", "")
	env, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Get("YZT_WIN", ""); got != "from-env" {
		t.Errorf("YZT_WIN = %q, want the environment's value", got)
	}
	if got := env.Get("YZT_FILE_ONLY", ""); got != "file" {
		t.Errorf("YZT_FILE_ONLY = %q", got)
	}
	// Set-but-empty in the environment still overrides: the operator said so.
	if got, ok := env.Lookup("YZT_EMPTY_ENV"); !ok || got != "" {
		t.Errorf("YZT_EMPTY_ENV = %q, %v; want empty and set", got, ok)
	}
}

func TestLoadMissingFileIsFine(t *testing.T) {
	t.Setenv("YZT_ONLY_ENV", "x")
	env, err := Load(filepath.Join(t.TempDir(), "envrc"))
	if err != nil {
		t.Fatal(err)
	}
	if env.Get("YZT_ONLY_ENV", "") != "x" {
		t.Error("environment not read")
	}
	if _, err := Load(""); err != nil {
		t.Errorf("empty path: %v", err)
	}
}

func TestLoadMalformedNamesLineNotValue(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	for _, tc := range []struct {
		content string
		line    string
	}{
		{"A=1\n" + secret + "\n", ":2:"},
		{"# c\n\nB='" + secret + "\n", ":3:"},
		{"C=\"" + secret + "\" trailing\n", ":1:"},
		{"1BAD=" + secret + "\n", ":1:"},
		{"export =" + secret + "\n", ":1:"},
	} {
		_, err := Load(writeEnvrc(t, tc.content))
		if err == nil {
			t.Errorf("%q: no error", tc.content)
			continue
		}
		if !strings.Contains(err.Error(), tc.line) {
			t.Errorf("%q: error %q does not give line %s", tc.content, err, tc.line)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%q: error echoes the value: %q", tc.content, err)
		}
	}
}

func TestTypedAccessors(t *testing.T) {
	env := FromMap(map[string]string{
		"N": " 42 ", "BADN": "forty", "D": "90s", "NEG": "-1s", "BADD": "soon",
		"DS": " 5s, 30s ,2m", "DS0": "5s,0s", "DSBAD": "5s,,1m", "L": " a; ;b ;c;", "BLANK": "  ",
	})
	if n, err := env.Int("N", 1); err != nil || n != 42 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if n, err := env.Int("UNSET", 7); err != nil || n != 7 {
		t.Errorf("Int default = %d, %v", n, err)
	}
	if d, err := env.Duration("D", time.Second); err != nil || d != 90*time.Second {
		t.Errorf("Duration = %v, %v", d, err)
	}
	if d, err := env.Duration("BLANK", time.Minute); err != nil || d != time.Minute {
		t.Errorf("Duration default = %v, %v", d, err)
	}
	ds, err := env.Durations("DS", nil)
	if want := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute}; err != nil || !reflect.DeepEqual(ds, want) {
		t.Errorf("Durations = %v, %v; want %v", ds, err, want)
	}
	def := []time.Duration{time.Second}
	ds, err = env.Durations("UNSET", def)
	if err != nil || !reflect.DeepEqual(ds, def) {
		t.Errorf("Durations default = %v, %v", ds, err)
	}
	ds[0] = time.Hour
	if def[0] != time.Second {
		t.Error("Durations returned the caller's default slice, not a copy")
	}
	if got := env.List("L", ";"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("List = %q", got)
	}
	if got := env.List("UNSET", ";"); len(got) != 0 {
		t.Errorf("List of unset = %q", got)
	}
	if got := env.Get("BLANK", "def"); got != "def" {
		t.Errorf("Get of blank = %q, want default", got)
	}

	// Errors name the variable and never show its value.
	for name, call := range map[string]func() error{
		"BADN":  func() error { _, err := env.Int("BADN", 0); return err },
		"BADD":  func() error { _, err := env.Duration("BADD", 0); return err },
		"NEG":   func() error { _, err := env.Duration("NEG", 0); return err },
		"DS0":   func() error { _, err := env.Durations("DS0", nil); return err },
		"DSBAD": func() error { _, err := env.Durations("DSBAD", nil); return err },
	} {
		err := call()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		v, _ := env.Lookup(name)
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name the variable", name, err)
		}
		if strings.Contains(err.Error(), v) {
			t.Errorf("%s: error %q shows the value", name, err)
		}
	}
}

func TestRequire(t *testing.T) {
	env := FromMap(map[string]string{"A": "1", "B": "", "D": " "})
	if err := env.Require("A"); err != nil {
		t.Errorf("Require(A) = %v", err)
	}
	err := env.Require("A", "B", "C", "D")
	var m Missing
	if !errors.As(err, &m) {
		t.Fatalf("Require = %v, want Missing", err)
	}
	if want := "missing required configuration: B, C, D"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}
