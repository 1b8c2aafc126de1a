package main

// No Docker engine runs where these tests run, so they hold the deployment
// files (Dockerfile, docker-compose.yml, deploy/*) and the README against the
// code instead: every variable set or documented is one the code reads, every
// command names a binary the image contains, ports and scrape targets are the
// ones the services listen on, and so on.

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/httpapi"
	"gopkg.in/yaml.v3"
)

// repoRoot is the directory holding go.work, found by walking up from the
// test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work in the test's working directory or above it")
		}
		dir = parent
	}
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// envAccessors are the config.Env methods that take a variable name first
// (Require takes only names).
var envAccessors = map[string]bool{
	"Get": true, "Lookup": true, "Int": true, "Duration": true, "Durations": true, "List": true, "Require": true, "Bool": true,
}

// goFiles parses the repository's non-test Go files (outside testdata,
// hidden and build-output directories) and calls fn for each.
func goFiles(t *testing.T, under string, fn func(rel string, f *ast.File)) {
	t.Helper()
	root := repoRoot(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, under), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch name := d.Name(); {
			case p != root && strings.HasPrefix(name, "."), name == "testdata", name == "vendor", name == "node_modules":
				return filepath.SkipDir
			case filepath.Dir(p) == root && (name == "bin" || name == "data"):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fn(filepath.ToSlash(rel), f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// codeEnvVars returns the configuration variables the code reads, each with
// one file that reads it: the string literals passed as names to
// env.Get/Lookup/Int/Duration/Durations/List/Require.
func codeEnvVars(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{}
	goFiles(t, ".", func(rel string, f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			var name string
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			case *ast.Ident:
				name = fn.Name
			}
			if !envAccessors[name] {
				return true
			}
			args := call.Args[:1]
			if name == "Require" {
				args = call.Args
			}
			for _, a := range args {
				if s, ok := stringLit(a); ok && envNameRE.MatchString(s) {
					if _, seen := vars[s]; !seen {
						vars[s] = rel
					}
				}
			}
			return true
		})
	})
	if len(vars) == 0 {
		t.Fatal("found no configuration variables in the code; the scan is broken")
	}
	return vars
}

// markdownSection returns the text under heading (a whole "## ..." line)
// up to the next heading of the same or a higher level.
func markdownSection(t *testing.T, md, heading string) string {
	t.Helper()
	level := strings.Index(heading, " ")
	i := strings.Index(md, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	rest := md[i+len(heading)+2:]
	for _, l := range strings.SplitAfter(rest, "\n") {
		if h := strings.Index(l, " "); strings.HasPrefix(l, "#") && h > 0 && h <= level && strings.Trim(l[:h], "#") == "" {
			return rest[:strings.Index(rest, l)]
		}
	}
	return rest
}

var backticked = regexp.MustCompile("`([^`]+)`")

// markdownTable returns the rows of the first table in section as cells.
func markdownTable(section string) [][]string {
	var rows [][]string
	started := false
	for _, l := range strings.Split(section, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			if started {
				break
			}
			continue
		}
		started = true
		cells := strings.Split(strings.Trim(l, "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if strings.Trim(cells[0], "- ") == "" { // the |---| line
			continue
		}
		rows = append(rows, cells)
	}
	if len(rows) > 0 {
		rows = rows[1:] // header
	}
	return rows
}

// readmeConfig maps each variable of README's configuration table to its
// row's default cell.
func readmeConfig(t *testing.T) map[string]string {
	t.Helper()
	sec := markdownSection(t, readRepoFile(t, "README.md"), "## Configuration")
	out := map[string]string{}
	for _, row := range markdownTable(sec) {
		for _, m := range backticked.FindAllStringSubmatch(row[0], -1) {
			if envNameRE.MatchString(m[1]) {
				out[m[1]] = row[len(row)-1]
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("README's configuration table lists no variables")
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// The README's configuration table is the operator's only reference: it
// must name every variable the code reads, and nothing the code ignores.
func TestReadmeConfigTableMatchesCode(t *testing.T) {
	code := codeEnvVars(t)
	// Read by the Go runtime itself; `yzpay serve` sets a default when it
	// is unset (TestOnlyConfigReadsTheEnvironment allows that one look).
	code["GOMEMLIMIT"] = "the Go runtime"
	doc := readmeConfig(t)
	for _, name := range sortedKeys(code) {
		if _, ok := doc[name]; !ok {
			t.Errorf("%s reads %s, but README's configuration table does not list it", code[name], name)
		}
	}
	for _, name := range sortedKeys(doc) {
		if _, ok := code[name]; !ok {
			t.Errorf("README's configuration table lists %s, which no code reads", name)
		}
	}
}

func durationList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		s := d.String() // 5s, 2m0s, 1h0m0s
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		parts[i] = s
	}
	return strings.Join(parts, ",")
}

// The defaults the README states are the code's.
func TestReadmeConfigDefaults(t *testing.T) {
	doc := readmeConfig(t)
	want := map[string][]string{
		"GATEWAY_ADDR":         {config.DefaultGatewayAddr, config.DefaultSandboxGatewayAddr},
		"OPS_ADDR":             {config.DefaultOpsAddr, config.OpsSame},
		"YOUZAN_API_BASE":      {config.DefaultYouzanBase},
		"PUSH_FORMAT":          {config.FormatForm},
		"PUSH_RETRY_SCHEDULE":  {durationList(config.DefaultPushRetrySchedule)},
		"FETCH_RETRY_SCHEDULE": {durationList(config.DefaultFetchRetrySchedule)},
		"FETCH_GIVE_UP_AFTER":  {durationList([]time.Duration{config.DefaultFetchGiveUpAfter})},
		"METRICS_ADDR":         {config.DefaultTradefetcherMetricsAddr, config.DefaultNotifierMetricsAddr},
		"ORDER_TTL":            {durationList([]time.Duration{config.DefaultOrderTTL})},
		"RECONCILE_INTERVAL":   {durationList([]time.Duration{config.DefaultReconcileInterval})},
		"STARTUP_TIMEOUT":      {durationList([]time.Duration{config.DefaultStartupTimeout})},
	}
	for _, name := range sortedKeys(want) {
		for _, w := range want[name] {
			if !strings.Contains(doc[name], "`"+w+"`") {
				t.Errorf("README gives %s the default %q; the code's is `%s`", name, doc[name], w)
			}
		}
	}
}

// Every `make X` the README tells a reader to type is a Makefile target.
func TestReadmeMakeTargets(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	makefile := readRepoFile(t, "Makefile")
	var targets []string
	for _, re := range []*regexp.Regexp{regexp.MustCompile("`make ([a-z][a-z-]*)"), regexp.MustCompile(`(?m)^make ([a-z][a-z-]*)`)} {
		for _, m := range re.FindAllStringSubmatch(readme, -1) {
			targets = append(targets, m[1])
		}
	}
	for _, want := range []string{"run", "test"} {
		if !slices.Contains(targets, want) {
			t.Errorf("README's quick start lacks `make %s`", want)
		}
	}
	for _, tg := range targets {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(tg) + `:`).MatchString(makefile) {
			t.Errorf("README mentions `make %s`, but the Makefile has no such target", tg)
		}
	}
	if !strings.Contains(makefile, "serve --sandbox") {
		t.Error("README says `make run` runs `yzpay serve --sandbox`; the Makefile does not")
	}
}

// Every `yzpay <command>` in the README is a command the CLI knows.
func TestReadmeCLICommands(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile("`yzpay ([a-z]+)").FindAllStringSubmatch(readme, -1) {
		seen[m[1]] = true
	}
	for _, want := range []string{"serve", "migrate", "sandbox", "deliveries", "version"} {
		if !seen[want] {
			t.Errorf("README does not document `yzpay %s`", want)
		}
	}
	for _, cmd := range sortedKeys(seen) {
		if code := run(context.Background(), []string{cmd, "--help"}, io.Discard, io.Discard); code != 0 {
			t.Errorf("README documents `yzpay %s`, but `yzpay %s --help` exits %d", cmd, cmd, code)
		}
	}
}

// The README's metrics table is exactly the series shared/metrics declares.
func TestReadmeMetrics(t *testing.T) {
	src := readRepoFile(t, "shared/metrics/metrics.go")
	code := map[string]bool{}
	for _, m := range regexp.MustCompile(`Name:\s*"(yzpay_[a-z0-9_]+)"`).FindAllStringSubmatch(src, -1) {
		code[m[1]] = true
	}
	if len(code) == 0 {
		t.Fatal("found no metric names in shared/metrics/metrics.go")
	}
	doc := map[string]bool{}
	for _, m := range regexp.MustCompile(`\byzpay_[a-z0-9_]+`).FindAllString(readRepoFile(t, "README.md"), -1) {
		doc[m] = true
	}
	for _, n := range sortedKeys(code) {
		if !doc[n] {
			t.Errorf("README does not list the metric %s", n)
		}
	}
	for _, n := range sortedKeys(doc) {
		if !code[n] {
			t.Errorf("README lists the metric %s, which shared/metrics does not declare", n)
		}
	}
}

// readmeErrorStatuses reads README's "### Error codes" table: code → HTTP
// status. A row may list several codes with one status for all, or with one
// status each, in order ("404, 405").
func readmeErrorStatuses(t *testing.T) map[string]int {
	t.Helper()
	doc := map[string]int{}
	for _, row := range markdownTable(markdownSection(t, readRepoFile(t, "README.md"), "### Error codes")) {
		if len(row) < 2 {
			t.Fatalf("README error-code row %q has no status column", row)
		}
		var codes []string
		for _, m := range backticked.FindAllStringSubmatch(row[0], -1) {
			codes = append(codes, m[1])
		}
		var statuses []int
		for _, f := range strings.Split(row[1], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("README error-code row %q: status %q is not a number", row, f)
			}
			statuses = append(statuses, n)
		}
		if len(codes) == 0 || (len(statuses) != 1 && len(statuses) != len(codes)) {
			t.Fatalf("README error-code row %q: %d codes, %d statuses", row, len(codes), len(statuses))
		}
		for i, c := range codes {
			if _, dup := doc[c]; dup {
				t.Errorf("README's error-code table lists %q twice", c)
			}
			doc[c] = statuses[min(i, len(statuses)-1)]
		}
	}
	return doc
}

// README's error-code table is httpapi's code → status table: every code the
// API can answer with, with the status it answers, and nothing else.
func TestReadmeErrorCodes(t *testing.T) {
	code := map[string]int{}
	for c, status := range httpapi.Statuses() {
		code[string(c)] = status
	}
	doc := readmeErrorStatuses(t)
	for _, c := range sortedKeys(code) {
		switch st, ok := doc[c]; {
		case !ok:
			t.Errorf("httpapi answers %q with %d; README's error-code table lacks it", c, code[c])
		case st != code[c]:
			t.Errorf("README's error-code table gives %q status %d; httpapi answers %d", c, st, code[c])
		}
	}
	for _, c := range sortedKeys(doc) {
		if _, ok := code[c]; !ok {
			t.Errorf("README's error-code table lists %q, which httpapi's table lacks", c)
		}
	}
}

// ---- docker-compose.yml ----

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Profiles    []string          `yaml:"profiles"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   dependsOn         `yaml:"depends_on"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	Volumes     []string          `yaml:"volumes"`
	Restart     string            `yaml:"restart"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// dependsOn is depends_on in either form: a list of names (condition
// service_started) or a map of name to {condition}.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	*d = dependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			(*d)[s] = "service_started"
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			c := v.Condition
			if c == "" {
				c = "service_started"
			}
			(*d)[k] = c
		}
	default:
		return errors.New("depends_on must be a list or a map")
	}
	return nil
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

// ours reports whether s runs our image (built from the Dockerfile).
func (s composeService) ours() bool { return s.Build != nil }

// single reports whether the service belongs to the default single-node
// stack (no profile); the `cluster` profile is checked on its own.
func (s composeService) single() bool { return len(s.Profiles) == 0 }

// binary is what the container runs: the command's first word, and for the
// yzpay CLI its subcommand ("yzpay migrate").
func (s composeService) binary() string {
	argv := append(append([]string(nil), s.Entrypoint...), s.Command...)
	if len(argv) == 0 {
		return ""
	}
	b := path.Base(argv[0])
	if b == "yzpay" && len(argv) > 1 {
		b += " " + argv[1]
	}
	return b
}

// exampleHost is what an operator's .env supplies; a required variable the
// compose file takes from the host must have an entry (the values only
// need to be valid).
var exampleHost = map[string]string{
	"YOUZANYUN_CLIENT_ID":     "app-client-id",
	"YOUZANYUN_CLIENT_SECRET": "app-client-secret",
	"YOUZAN_KDT_ID":           "12345678",
	"GATEWAY_API_KEY":         "0123456789abcdef",
	"SELF_SECRET":             "example_self_secret",
	"PUSH_API":                "https://shop.example.com/yzpay/notify",
	"POSTGRES_PASSWORD":       "secret",
	"NATS_PASSWORD":           "natssecret",
	"GRAFANA_ADMIN_PASSWORD":  "secret",
}

var substRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate resolves ${NAME}, ${NAME:-default} and ${NAME:?message} the
// way compose does, against host.
func interpolate(s string, host map[string]string) (string, []string) {
	var missing []string
	out := substRE.ReplaceAllStringFunc(s, func(m string) string {
		sm := substRE.FindStringSubmatch(m)
		v, set := host[sm[1]]
		switch sm[2] {
		case ":-", "-":
			if v == "" {
				return sm[3]
			}
		case ":?", "?":
			if !set || v == "" {
				missing = append(missing, sm[1])
			}
		}
		return v
	})
	return out, missing
}

// requiredFromHost lists the ${NAME:?...} variables of the services'
// environments.
func requiredFromHost(c composeFile) []string {
	seen := map[string]bool{}
	for _, s := range c.Services {
		for _, v := range s.Environment {
			for _, m := range substRE.FindAllStringSubmatch(v, -1) {
				if strings.HasSuffix(m[2], "?") {
					seen[m[1]] = true
				}
			}
		}
	}
	return sortedKeys(seen)
}

func composeEnv(t *testing.T, s composeService) config.Env {
	t.Helper()
	m := map[string]string{}
	for k, v := range s.Environment {
		r, missing := interpolate(v, exampleHost)
		if len(missing) > 0 {
			t.Fatalf("%s = %q needs %v from the host; add them to exampleHost", k, v, missing)
		}
		m[k] = r
	}
	return config.FromMap(m)
}

func TestComposeEnvironmentIsReadByCode(t *testing.T) {
	c := loadCompose(t)
	code := codeEnvVars(t)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if !s.ours() {
			continue
		}
		for _, k := range sortedKeys(s.Environment) {
			if _, ok := code[k]; !ok {
				t.Errorf("service %s sets %s, which no code reads", name, k)
			}
		}
	}
}

// The README's .env example for compose names every variable the compose
// file requires from the host, so that following it brings the stack up.
func TestComposeReadmeEnvExample(t *testing.T) {
	c := loadCompose(t)
	sec := markdownSection(t, readRepoFile(t, "README.md"), "### docker compose")
	example := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(sec, -1) {
		example[m[1]] = true
	}
	for _, name := range requiredFromHost(c) {
		if !example[name] {
			t.Errorf("docker-compose.yml requires %s from the host; README's .env example lacks it", name)
		}
		if _, ok := exampleHost[name]; !ok {
			t.Errorf("docker-compose.yml requires %s from the host; add it to exampleHost in this test", name)
		}
	}
}

// With the host variables set, each service's configuration passes the
// checks its binary makes at start (these mirror run() in each cmd's
// main.go and cmdMigrate).
func TestComposeServicesAcceptTheirConfiguration(t *testing.T) {
	starts := map[string]func(config.Env) error{
		"gateway":      func(env config.Env) error { _, err := config.LoadGateway(env); return err },
		"tradefetcher": func(env config.Env) error { _, err := config.LoadTradefetcher(env); return err },
		"notifier":     func(env config.Env) error { _, err := config.LoadNotifier(env); return err },
		"yzpay migrate": func(env config.Env) error {
			if env.Get("DATABASE_URL", "") == "" {
				return errors.New("DATABASE_URL is unset: yzpay migrate would migrate a SQLite file inside its container")
			}
			return nil
		},
	}
	c := loadCompose(t)
	ran := map[string]bool{}
	dbURLs, natsURLs := map[string]bool{}, map[string]bool{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if !s.ours() {
			continue
		}
		env := composeEnv(t, s)
		if _, err := config.LoadLogging(env); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
		check, ok := starts[s.binary()]
		if !ok {
			continue
		}
		ran[s.binary()] = true
		if err := check(env); err != nil {
			t.Errorf("service %s (%s) would refuse to start: %v", name, s.binary(), err)
		}
		if !s.single() {
			continue
		}
		if v := env.Get("DATABASE_URL", ""); v != "" {
			dbURLs[v] = true
		}
		if v := env.Get("NATS_URL", ""); v != "" {
			natsURLs[v] = true
		}
	}
	for _, b := range sortedKeys(starts) {
		if !ran[b] {
			t.Errorf("no compose service runs %s", b)
		}
	}
	if len(dbURLs) != 1 || len(natsURLs) != 1 {
		t.Errorf("the services must share one database and one NATS; compose gives DATABASE_URL %v and NATS_URL %v",
			sortedKeys(dbURLs), sortedKeys(natsURLs))
	}
}

func TestComposeCommandsNameBuiltBinaries(t *testing.T) {
	c := loadCompose(t)
	built := dockerBinaries(t, parseDockerfile(t, readRepoFile(t, "Dockerfile")))
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if !s.ours() {
			continue
		}
		if len(s.Command) == 0 {
			t.Errorf("service %s has no command; the image has no entrypoint, so name the binary", name)
			continue
		}
		argv := append(append([]string(nil), s.Entrypoint...), s.Command...)
		bin := path.Base(argv[0])
		if _, ok := built[bin]; !ok {
			t.Errorf("service %s runs %q; the Dockerfile builds %v", name, argv[0], sortedKeys(built))
		}
		if bin == "yzpay" {
			if len(argv) < 2 {
				t.Errorf("service %s runs yzpay without a command", name)
			} else if code := run(context.Background(), []string{argv[1], "--help"}, io.Discard, io.Discard); code != 0 {
				t.Errorf("service %s runs `yzpay %s`, which is not a yzpay command", name, argv[1])
			}
		}
	}
}

// findService returns the name of the one service matching pred.
func findService(t *testing.T, c composeFile, what string, pred func(composeService) bool) string {
	t.Helper()
	var found []string
	for _, name := range sortedKeys(c.Services) {
		if c.Services[name].single() && pred(c.Services[name]) {
			found = append(found, name)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one compose service for %s, found %v", what, found)
	}
	return found[0]
}

func TestComposeDependsOn(t *testing.T) {
	c := loadCompose(t)
	valid := map[string]bool{"service_started": true, "service_healthy": true, "service_completed_successfully": true}
	for _, name := range sortedKeys(c.Services) {
		for _, dep := range sortedKeys(c.Services[name].DependsOn) {
			cond := c.Services[name].DependsOn[dep]
			target, ok := c.Services[dep]
			switch {
			case !ok:
				t.Errorf("service %s depends on %q, which is not a service", name, dep)
			case !valid[cond]:
				t.Errorf("service %s depends on %s with unknown condition %q", name, dep, cond)
			case cond == "service_healthy" && (target.Healthcheck == nil || len(target.Healthcheck.Test) == 0):
				t.Errorf("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
	}
	natsName := findService(t, c, "NATS", func(s composeService) bool { return strings.HasPrefix(s.Image, "nats:") })
	pgName := findService(t, c, "Postgres", func(s composeService) bool { return strings.HasPrefix(s.Image, "postgres:") })
	migrate := findService(t, c, "yzpay migrate", func(s composeService) bool { return s.ours() && s.binary() == "yzpay migrate" })
	if r := c.Services[migrate].Restart; r == "always" || r == "unless-stopped" {
		t.Errorf("service %s is one-shot; restart: %s would run it forever", migrate, r)
	}
	if c.Services[migrate].DependsOn[pgName] != "service_healthy" {
		t.Errorf("service %s must wait for %s to be healthy", migrate, pgName)
	}
	for _, bin := range []string{"gateway", "tradefetcher", "notifier"} {
		name := findService(t, c, bin, func(s composeService) bool { return s.ours() && s.binary() == bin })
		want := map[string]string{natsName: "service_healthy", pgName: "service_healthy", migrate: "service_completed_successfully"}
		for _, dep := range sortedKeys(want) {
			if got := c.Services[name].DependsOn[dep]; got != want[dep] {
				t.Errorf("service %s: depends_on %s is %q, want %q", name, dep, got, want[dep])
			}
		}
	}
	// NATS keeps JetStream on a volume, and its healthcheck is the
	// monitoring port's /healthz.
	ns := c.Services[natsName]
	cmd := strings.Join(ns.Command, " ")
	for _, want := range []string{"-js", "-sd /data", "-m 8222", "-c /etc/nats/nats.conf"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("nats command %q lacks %q", cmd, want)
		}
	}
	if !slices.ContainsFunc(ns.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
		t.Errorf("nats keeps JetStream in /data, but no volume is mounted there: %v", ns.Volumes)
	}
	if ns.Healthcheck == nil || !strings.Contains(strings.Join(ns.Healthcheck.Test, " "), ":8222/healthz") {
		t.Error("nats healthcheck must query the monitoring port's /healthz")
	}
	ps := c.Services[pgName]
	if ps.Healthcheck == nil || !slices.Contains(ps.Healthcheck.Test, "pg_isready") {
		t.Error("postgres healthcheck must run pg_isready")
	}
	for _, s := range c.Services {
		for _, v := range s.Volumes {
			if src, _, ok := strings.Cut(v, ":"); ok && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("volume %q is used but not declared under volumes:", src)
				}
			}
		}
	}
}

func addrPort(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return port
}

// listenPorts maps each compose service running a yzpay service to the port
// it serves /metrics on, from its environment or the code's default.
func listenPorts(t *testing.T, c composeFile) map[string]string {
	t.Helper()
	defaults := map[string]struct{ env, def string }{
		"gateway":      {"OPS_ADDR", config.DefaultOpsAddr},
		"tradefetcher": {"METRICS_ADDR", config.DefaultTradefetcherMetricsAddr},
		"notifier":     {"METRICS_ADDR", config.DefaultNotifierMetricsAddr},
	}
	out := map[string]string{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		d, ok := defaults[s.binary()]
		if !ok || !s.ours() {
			continue
		}
		out[name] = addrPort(t, composeEnv(t, s).Get(d.env, d.def))
		if s.binary() != "gateway" && out[name] != addrPort(t, d.def) {
			t.Errorf("service %s listens on %s, not the code's default %s", name, out[name], d.def)
		}
	}
	return out
}

func TestComposePorts(t *testing.T) {
	c := loadCompose(t)
	ports := listenPorts(t, c)
	gw := findService(t, c, "gateway", func(s composeService) bool { return s.ours() && s.binary() == "gateway" })
	gwEnv := composeEnv(t, c.Services[gw])
	main := addrPort(t, gwEnv.Get("GATEWAY_ADDR", config.DefaultGatewayAddr))
	if main != addrPort(t, config.DefaultGatewayAddr) {
		t.Errorf("gateway listens on %s, not the code's default %s", main, config.DefaultGatewayAddr)
	}
	// Prometheus in another container must reach the ops port: not
	// loopback, and not the public port.
	if ops := gwEnv.Get("OPS_ADDR", config.DefaultOpsAddr); strings.HasPrefix(ops, "127.") || ops == config.OpsSame || ports[gw] == main {
		t.Errorf("gateway OPS_ADDR %q: want all interfaces of the container on a port of its own", ops)
	}
	published := func(s composeService, port string) bool {
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if strings.TrimSuffix(parts[len(parts)-1], "/tcp") == port {
				return true
			}
		}
		return false
	}
	if !published(c.Services[gw], main) {
		t.Errorf("gateway listens on %s but publishes %v", main, c.Services[gw].Ports)
	}
	for _, name := range sortedKeys(ports) {
		s := c.Services[name]
		if !slices.Contains(s.Expose, ports[name]) {
			t.Errorf("service %s serves /metrics on %s but exposes %v", name, ports[name], s.Expose)
		}
		if published(s, ports[name]) {
			t.Errorf("service %s publishes its ops port %s to the host", name, ports[name])
		}
		if s.Healthcheck != nil {
			hc := strings.Join(s.Healthcheck.Test, " ")
			if !strings.Contains(hc, ":"+ports[name]+"/") {
				t.Errorf("service %s serves /readyz on %s; its healthcheck %q looks elsewhere", name, ports[name], hc)
			}
		}
	}
	exposed := map[string]bool{}
	for _, st := range parseDockerfile(t, readRepoFile(t, "Dockerfile")) {
		for _, in := range st.instrs {
			if in.cmd == "EXPOSE" {
				for _, p := range strings.Fields(in.args) {
					exposed[strings.TrimSuffix(p, "/tcp")] = true
				}
			}
		}
	}
	if !exposed[main] {
		t.Errorf("the Dockerfile does not EXPOSE %s (the gateway)", main)
	}
	for _, name := range sortedKeys(ports) {
		if !exposed[ports[name]] {
			t.Errorf("the Dockerfile does not EXPOSE %s (service %s)", ports[name], name)
		}
	}
}

// Compose runs NATS with credentials: nats.conf (as the server reads it,
// with NATS_PASSWORD from its environment) requires user yzpay and the
// password the services put in NATS_URL.
func TestComposeNATSRequiresCredentials(t *testing.T) {
	c := loadCompose(t)
	natsName := findService(t, c, "NATS", func(s composeService) bool { return strings.HasPrefix(s.Image, "nats:") })
	ns := c.Services[natsName]
	if !slices.Contains(ns.Volumes, "./deploy/nats/nats.conf:/etc/nats/nats.conf:ro") {
		t.Fatalf("nats does not mount deploy/nats/nats.conf: %v", ns.Volumes)
	}
	pw, missing := interpolate(ns.Environment["NATS_PASSWORD"], exampleHost)
	if len(missing) > 0 || pw == "" {
		t.Fatalf("nats gets no NATS_PASSWORD from .env")
	}
	t.Setenv("NATS_PASSWORD", pw)
	opts, err := natsserver.ProcessConfigFile(filepath.Join(repoRoot(t), "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatalf("deploy/nats/nats.conf: %v", err)
	}
	if len(opts.Users) != 1 || opts.Users[0].Username != "yzpay" || opts.Users[0].Password != pw {
		t.Fatalf("nats.conf users: want yzpay with NATS_PASSWORD, got %d users", len(opts.Users))
	}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if !s.ours() || s.Environment["NATS_URL"] == "" {
			continue
		}
		u, err := url.Parse(composeEnv(t, s).Get("NATS_URL", ""))
		if err != nil || u.User == nil || u.User.Username() != "yzpay" {
			t.Errorf("service %s: NATS_URL carries no user yzpay", name)
			continue
		}
		if p, _ := u.User.Password(); p != pw {
			t.Errorf("service %s: NATS_URL's password is not NATS_PASSWORD", name)
		}
	}
}

// ---- deploy/prometheus.yml ----

func TestDeployPrometheusScrapesEveryService(t *testing.T) {
	c := loadCompose(t)
	want := map[string]bool{}
	for name, port := range listenPorts(t, c) {
		want[net.JoinHostPort(name, port)] = true
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "deploy/prometheus.yml")), &cfg); err != nil {
		t.Fatalf("deploy/prometheus.yml: %v", err)
	}
	got := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s; the services serve /metrics", sc.JobName, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				got[tg] = true
			}
		}
		for _, d := range sc.DNSSDConfigs {
			if d.Type != "A" && d.Type != "AAAA" {
				t.Errorf("job %s: dns_sd type %q needs SRV records Docker does not serve; use A", sc.JobName, d.Type)
			}
			for _, n := range d.Names {
				got[net.JoinHostPort(n, strconv.Itoa(d.Port))] = true
			}
		}
	}
	for _, tg := range sortedKeys(want) {
		if !got[tg] {
			t.Errorf("deploy/prometheus.yml does not scrape %s", tg)
		}
	}
	for _, tg := range sortedKeys(got) {
		if !want[tg] {
			t.Errorf("deploy/prometheus.yml scrapes %s, where no yzpay service listens", tg)
		}
	}
	prom := findService(t, c, "Prometheus", func(s composeService) bool { return strings.Contains(s.Image, "prometheus") })
	if !slices.ContainsFunc(c.Services[prom].Volumes, func(v string) bool {
		return strings.HasPrefix(v, "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml")
	}) {
		t.Errorf("service %s does not mount ./deploy/prometheus.yml as its configuration", prom)
	}
}

// ---- deploy/nginx.conf ----

func TestDeployNginxProxiesToGateway(t *testing.T) {
	conf := readRepoFile(t, "deploy/nginx.conf")
	gwPort := addrPort(t, config.DefaultGatewayAddr)
	servers := regexp.MustCompile(`(?m)^\s*server\s+([^\s;{]+)\s*;`).FindAllStringSubmatch(conf, -1)
	if len(servers) == 0 {
		t.Fatal("deploy/nginx.conf has no upstream server")
	}
	for _, s := range servers {
		if _, port, err := net.SplitHostPort(s[1]); err != nil || port != gwPort {
			t.Errorf("upstream server %s is not on the gateway's port %s", s[1], gwPort)
		}
	}
	for _, loc := range []string{"location /api/ {", "location /api/admin/ {"} {
		i := strings.Index(conf, loc)
		if i < 0 {
			t.Errorf("deploy/nginx.conf lacks %q", loc)
			continue
		}
		block := conf[i : i+strings.Index(conf[i:], "}")]
		if !strings.Contains(block, "proxy_pass http://yzpay_gateway") {
			t.Errorf("%s does not proxy to the gateway upstream", loc)
		}
		if loc == "location /api/admin/ {" && !strings.Contains(block, "deny all") {
			t.Error("the admin API must not be open to the internet")
		}
	}
}

// ---- Dockerfile ----

type dockerInstr struct{ cmd, args string }

type dockerStage struct {
	from, name string
	instrs     []dockerInstr
}

// parseDockerfile splits a Dockerfile into stages of instructions, with
// continuation lines joined and comments dropped.
func parseDockerfile(t *testing.T, src string) []dockerStage {
	t.Helper()
	var stages []dockerStage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		args = strings.TrimSpace(args)
		if cmd == "FROM" {
			f := strings.Fields(args)
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before FROM", cmd)
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, dockerInstr{cmd, args})
	}
	for _, l := range strings.Split(src, "\n") {
		tl := strings.TrimSpace(l)
		if strings.HasPrefix(tl, "#") {
			continue
		}
		if strings.HasSuffix(tl, "\\") {
			cur.WriteString(strings.TrimSuffix(tl, "\\") + " ")
			continue
		}
		cur.WriteString(tl)
		flush()
	}
	flush()
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a final stage", len(stages))
	}
	return stages
}

var dockerBuildRE = regexp.MustCompile(`-o\s+/out/(\S+)\s+(\./\S+)`)

// dockerBinaries maps the binaries the Dockerfile builds to their packages.
func dockerBinaries(t *testing.T, stages []dockerStage) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, in := range stages[0].instrs {
		if in.cmd == "RUN" {
			for _, m := range dockerBuildRE.FindAllStringSubmatch(in.args, -1) {
				out[m[1]] = m[2]
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("the Dockerfile's first stage builds no binary into /out/")
	}
	return out
}

// registryHost returns the registry host an image reference names, if any.
func registryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return ""
}

func goWorkModules(t *testing.T) []string {
	t.Helper()
	var mods []string
	inUse := false
	for _, l := range strings.Split(readRepoFile(t, "go.work"), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "use (":
			inUse = true
		case inUse && l == ")":
			inUse = false
		case inUse && l != "":
			mods = append(mods, path.Clean(l))
		case strings.HasPrefix(l, "use "):
			mods = append(mods, path.Clean(strings.TrimSpace(strings.TrimPrefix(l, "use "))))
		}
	}
	if len(mods) == 0 {
		t.Fatal("go.work lists no modules")
	}
	return mods
}

func TestDeployDockerfile(t *testing.T) {
	stages := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:1.26") {
		t.Errorf("the builder is %s, want golang:1.26 (go.work says go 1.26)", build.from)
	}
	for _, st := range stages {
		if h := registryHost(st.from); h != "" {
			t.Errorf("FROM %s names the registry host %s", st.from, h)
		}
	}
	c := loadCompose(t)
	for _, name := range sortedKeys(c.Services) {
		if h := registryHost(c.Services[name].Image); h != "" {
			t.Errorf("compose service %s names the registry host %s", name, h)
		}
	}

	// Every workspace module's go.mod is in place before `go mod download`
	// (go.work names them all), and its sources are copied before the build.
	downloadAt := slices.IndexFunc(build.instrs, func(in dockerInstr) bool {
		return in.cmd == "RUN" && strings.Contains(in.args, "go mod download")
	})
	buildAt := slices.IndexFunc(build.instrs, func(in dockerInstr) bool {
		return in.cmd == "RUN" && strings.Contains(in.args, "go build")
	})
	if downloadAt < 0 || buildAt < 0 {
		t.Fatal("the builder stage must RUN go mod download and go build")
	}
	copied := func(upto int, want string) bool {
		for _, in := range build.instrs[:upto] {
			if in.cmd != "COPY" {
				continue
			}
			f := strings.Fields(in.args)
			for _, src := range f[:len(f)-1] {
				src = strings.TrimSuffix(path.Clean(src), "/")
				if ok, _ := path.Match(src, want); ok || src == "." || strings.HasPrefix(want, src+"/") {
					return true
				}
			}
		}
		return false
	}
	for _, f := range []string{"go.work", "go.work.sum"} {
		if !copied(downloadAt, f) {
			t.Errorf("the builder does not copy %s before go mod download", f)
		}
	}
	for _, m := range goWorkModules(t) {
		if !copied(downloadAt, m+"/go.mod") {
			t.Errorf("go.work uses %s, but the builder does not copy %s/go.mod before go mod download", m, m)
		}
		if !copied(buildAt, m+"/main.go") { // any file under m
			t.Errorf("go.work uses %s, but the builder does not copy its sources before go build", m)
		}
	}
	if !slices.ContainsFunc(build.instrs, func(in dockerInstr) bool {
		return strings.Contains(in.args, "CGO_ENABLED=0")
	}) {
		t.Error("the builder must set CGO_ENABLED=0: the final image has no C library for the binaries")
	}

	// The image holds the same four binaries as `make build`, from the same packages.
	root := repoRoot(t)
	bins := dockerBinaries(t, stages)
	makeBins := map[string]string{}
	for _, m := range regexp.MustCompile(`-o\s+bin/(\S+)\s+(\./\S+)`).FindAllStringSubmatch(readRepoFile(t, "Makefile"), -1) {
		makeBins[m[1]] = m[2]
	}
	for _, b := range sortedKeys(makeBins) {
		if bins[b] != makeBins[b] {
			t.Errorf("make build builds %s from %s; the Dockerfile from %q", b, makeBins[b], bins[b])
		}
	}
	for _, b := range sortedKeys(bins) {
		if _, ok := makeBins[b]; !ok {
			t.Errorf("the Dockerfile builds %s, which make build does not", b)
		}
		main, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(bins[b]), "main.go"))
		if err != nil || !strings.Contains(string(main), "package main") {
			t.Errorf("the Dockerfile builds %s from %s, which has no main package", b, bins[b])
		}
	}

	if strings.HasPrefix(final.from, "golang:") {
		t.Errorf("the final stage is %s; ship the static binaries in a small image", final.from)
	}
	if !slices.ContainsFunc(final.instrs, func(in dockerInstr) bool {
		return in.cmd == "COPY" && strings.Contains(in.args, "--from="+build.name) && strings.Contains(in.args, "/out/")
	}) {
		t.Errorf("the final stage does not copy /out/ from the %q stage", build.name)
	}
	user := ""
	for _, in := range final.instrs {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			t.Errorf("the final stage sets ENTRYPOINT %s; compose names the binary in command", in.args)
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("the final stage runs as %q; run as a non-root user", user)
	}
}

// TestComposeClusterProfile: the `cluster` profile runs three clustered
// JetStream nodes, each with its own volume, and two replicas of every
// service that reach all three nodes and replicate the streams three ways.
func TestComposeClusterProfile(t *testing.T) {
	c := loadCompose(t)
	inCluster := func(s composeService) bool { return slices.Contains(s.Profiles, "cluster") }
	var nodes []string
	for _, name := range sortedKeys(c.Services) {
		if s := c.Services[name]; inCluster(s) && strings.HasPrefix(s.Image, "nats:") {
			nodes = append(nodes, name)
		}
	}
	if len(nodes) != 3 {
		t.Fatalf("profile cluster has NATS nodes %v, want 3", nodes)
	}
	volumes := map[string]bool{}
	for _, name := range nodes {
		s := c.Services[name]
		cmd := strings.Join(s.Command, " ")
		for _, want := range []string{"-js", "-sd /data", "-m 8222", "--name " + name, "--cluster_name yzpay", "--cluster nats://0.0.0.0:6222"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("%s: command %q lacks %q", name, cmd, want)
			}
		}
		for _, other := range nodes {
			if !strings.Contains(cmd, "nats://"+other+":6222") {
				t.Errorf("%s: routes do not name %s: %q", name, other, cmd)
			}
		}
		for _, v := range s.Volumes {
			if src, dst, _ := strings.Cut(v, ":"); dst == "/data" {
				if volumes[src] {
					t.Errorf("%s shares volume %s with another node; each node needs its own store", name, src)
				}
				volumes[src] = true
			}
		}
		if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), ":8222/healthz") {
			t.Errorf("%s: healthcheck must query the monitoring port's /healthz", name)
		}
	}
	if len(volumes) != 3 {
		t.Errorf("NATS nodes keep JetStream on %d volumes, want 3", len(volumes))
	}
	starts := map[string]func(config.Env) (config.Broker, error){
		"gateway": func(env config.Env) (config.Broker, error) {
			g, err := config.LoadGateway(env)
			return g.Broker, err
		},
		"tradefetcher": func(env config.Env) (config.Broker, error) {
			f, err := config.LoadTradefetcher(env)
			return f.Broker, err
		},
		"notifier": func(env config.Env) (config.Broker, error) {
			n, err := config.LoadNotifier(env)
			return n.Broker, err
		},
	}
	seen := map[string]bool{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		load, ok := starts[s.binary()]
		if !inCluster(s) || !s.ours() || !ok {
			continue
		}
		seen[s.binary()] = true
		if s.Deploy.Replicas != 2 {
			t.Errorf("%s runs %d replicas, want 2", name, s.Deploy.Replicas)
		}
		b, err := load(composeEnv(t, s))
		if err != nil {
			t.Errorf("%s would refuse to start: %v", name, err)
			continue
		}
		if b.Replicas != 3 {
			t.Errorf("%s: NATS_REPLICAS %d, want 3", name, b.Replicas)
		}
		var hosts []string
		for _, raw := range strings.Split(b.NATSURL, ",") {
			u, err := url.Parse(raw)
			if err != nil || u.User == nil {
				t.Errorf("%s: a NATS_URL entry logs in as nobody (the nodes require a user)", name)
				continue
			}
			hosts = append(hosts, u.Host)
		}
		for _, node := range nodes {
			if !slices.Contains(hosts, node+":4222") {
				t.Errorf("%s: NATS_URL %q does not name %s", name, b.NATSURL, node)
			}
			if s.DependsOn[node] != "service_healthy" {
				t.Errorf("%s must wait for %s to be healthy", name, node)
			}
		}
	}
	for _, b := range sortedKeys(starts) {
		if !seen[b] {
			t.Errorf("profile cluster runs no %s", b)
		}
	}
}
