package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The split binaries run against Postgres and a real NATS only, so they must
// not carry the SQLite driver, the embedded NATS server, the Youzan sandbox
// or any test helper: each is code an attacker could reach or an operator
// would have to patch for nothing. docs/architecture.md explains the layout
// that keeps them out.
func TestSplitBinariesLinkOnlyWhatTheyUse(t *testing.T) {
	if testing.Short() {
		t.Skip("go list of three binaries")
	}
	forbidden := []string{
		"modernc.org/sqlite",
		"github.com/nats-io/nats-server/v2",
		"github.com/yzpay/yzpay/shared/youzan/sandbox",
		"github.com/yzpay/yzpay/shared/store/sqlite",
		"github.com/yzpay/yzpay/shared/natsjs/embedded",
		"github.com/yzpay/yzpay/shared/store/storetest",
		"github.com/yzpay/yzpay/shared/store/postgres/postgrestest",
		"github.com/yzpay/yzpay/shared/servicetest",
		"testing",
	}
	root := repoRoot(t)
	for _, bin := range []string{"gateway", "tradefetcher", "notifier"} {
		pkg := "./services/" + bin + "/cmd/" + bin
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		if !deps["github.com/yzpay/yzpay/shared/store/postgres"] {
			t.Fatalf("%s: go list shows no postgres store; the check below would prove nothing", bin)
		}
		for _, f := range forbidden {
			for d := range deps {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s links %s", bin, d)
				}
			}
		}
	}
}

// shared/config is the only reader of the environment (docs/architecture.md):
// a variable read anywhere else would escape the start-up banner, the
// README's table check and the one-line report of what is missing.
func TestOnlyConfigReadsTheEnvironment(t *testing.T) {
	root := repoRoot(t)
	allowed := map[string]string{
		"cmd/yzpay/commands.go": "GOMEMLIMIT", // the Go runtime's own variable
	}
	direct := regexp.MustCompile(`\bos\.(Getenv|LookupEnv|Environ)\(`)
	viaEnv := regexp.MustCompile(`\benv\.(Get|Int|Duration|Durations|List|Lookup|Require)\(`)
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			// bench drives child processes; shared/config is the reader.
			if rel == ".git" || rel == "bin" || rel == "shared/config" || rel == "cmd/yzpay/bench" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || strings.Contains(rel, "test/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if !direct.MatchString(line) && !viaEnv.MatchString(line) {
				continue
			}
			if v, ok := allowed[rel]; ok && strings.Contains(line, v) {
				continue
			}
			t.Errorf("%s:%d reads the environment outside shared/config: %s", rel, i+1, strings.TrimSpace(line))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 30 {
		t.Fatalf("checked only %d files; the walk is broken", checked)
	}
}
