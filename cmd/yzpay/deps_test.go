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

// docs/architecture.md's package map is how a newcomer finds their way; it
// drifted from the code twice before this test, so every arrow in it must be
// an import (test files excluded) and every import between our packages an
// arrow.
func TestPackageMapMatchesImports(t *testing.T) {
	if testing.Short() {
		t.Skip("go list of every package")
	}
	const module = "github.com/yzpay/yzpay/"
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "## Package map")
	_, chart, ok := strings.Cut(section, "```mermaid\n")
	chart, _, ok2 := strings.Cut(chart, "\n```")
	if !ok || !ok2 {
		t.Fatal("docs/architecture.md: no mermaid block under \"## Package map\"")
	}
	// Nodes are id["path"] or id["path (note)"]; arrows are a --> b & c.
	paths := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)\["([^" ]+)[^"]*"\]`).FindAllStringSubmatch(chart, -1) {
		paths[m[1]] = m[2]
	}
	drawn := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+) --> (.+)$`).FindAllStringSubmatch(chart, -1) {
		for _, to := range strings.Split(m[2], "&") {
			from, to := paths[m[1]], paths[strings.TrimSpace(to)]
			if from == "" || to == "" {
				t.Fatalf("docs/architecture.md: arrow %q names an undeclared node", m[0])
			}
			drawn[from+" -> "+to] = true
		}
	}
	if len(drawn) < 40 {
		t.Fatalf("read only %d arrows from the map; the parsing is broken", len(drawn))
	}

	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	inMap := map[string]bool{}
	for _, p := range paths {
		inMap[p] = true
	}
	imported := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		from := strings.TrimPrefix(f[0], module)
		for _, imp := range f[1:] {
			to, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if !inMap[from] || !inMap[to] {
				t.Errorf("%s imports %s, but the package map lacks one of them", from, to)
				continue
			}
			imported[from+" -> "+to] = true
		}
	}
	for e := range imported {
		if !drawn[e] {
			t.Errorf("docs/architecture.md's package map lacks the arrow %s", e)
		}
	}
	for e := range drawn {
		if !imported[e] {
			t.Errorf("docs/architecture.md's package map draws %s, which is no import", e)
		}
	}
}
