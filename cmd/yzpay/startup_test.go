package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/natsjs/embedded"
	"github.com/yzpay/yzpay/shared/store/postgres/postgrestest"
)

// A start-up failure is one clear line and a non-zero exit, never a panic:
// `yzpay serve` and each split binary, built as an operator builds them, are
// started with the port taken, DATA_DIR unwritable, Postgres or NATS not
// answering, a bad setting and settings missing.

// startupCase is one binary started in an empty environment.
type startupCase struct {
	name string
	bin  string // yzpay, gateway, tradefetcher or notifier
	args []string
	env  map[string]string
	code int      // exit status: 1 for every start-up failure; 2 for a bad LOG_LEVEL before serve starts
	want []string // in the last stderr line
	// secret must not appear anywhere in the output.
	secret string
	// prefix the last line starts with; default bin + ": ".
	prefix string
}

// startupResult is how a started binary ended.
type startupResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
	err            error // the binary could not be run or did not stop
}

// The deadline every binary must stop within, even with STARTUP_TIMEOUT at
// its 30s default.
const startupDeadline = 45 * time.Second

func TestStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four binaries and starts them; skipped with -short")
	}
	bins := buildBinaries(t)

	// A port someone else holds.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	busy := taken.Addr().String()

	// A regular file where DATA_DIR's parent should be: chmod would not stop
	// root, a file in the path does.
	scratch := t.TempDir()
	file := filepath.Join(scratch, "a-file")
	if err := os.WriteFile(file, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	natsIsFile := filepath.Join(scratch, "nats-is-a-file")
	if err := os.MkdirAll(natsIsFile, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(natsIsFile, "nats"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	const (
		deadDB   = "postgres://postgres:secretpw@127.0.0.1:1/x?sslmode=disable"
		deadNATS = "nats://yz:natspw@127.0.0.1:1"
	)
	with := func(base map[string]string, kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	sandbox := func(kv ...string) map[string]string {
		return with(map[string]string{"GATEWAY_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "STARTUP_TIMEOUT": "2s"}, kv...)
	}
	youzan := map[string]string{"YOUZANYUN_CLIENT_ID": "cid", "YOUZANYUN_CLIENT_SECRET": "csecret", "YOUZAN_KDT_ID": "1"}
	split := map[string]map[string]string{
		"gateway":      with(youzan, "GATEWAY_API_KEY", "k", "GATEWAY_ADDR", "127.0.0.1:0", "OPS_ADDR", "127.0.0.1:0", "STARTUP_TIMEOUT", "2s"),
		"tradefetcher": with(youzan, "METRICS_ADDR", "127.0.0.1:0", "STARTUP_TIMEOUT", "2s"),
		"notifier": {"SELF_SECRET": "s", "PUSH_API": "http://127.0.0.1:1/hook", "METRICS_ADDR": "127.0.0.1:0",
			"STARTUP_TIMEOUT": "2s"},
	}
	listenVar := map[string]string{"gateway": "GATEWAY_ADDR", "tradefetcher": "METRICS_ADDR", "notifier": "METRICS_ADDR"}
	serve := []string{"serve", "--sandbox"}
	prodServe := []string{"serve"}
	prod := func(kv ...string) map[string]string {
		return with(with(youzan, "GATEWAY_API_KEY", "k", "SELF_SECRET", "s", "PUSH_API", "http://127.0.0.1:1/hook",
			"GATEWAY_ADDR", "127.0.0.1:0", "OPS_ADDR", "127.0.0.1:0", "DATA_DIR", t.TempDir(), "STARTUP_TIMEOUT", "2s"), kv...)
	}

	// Cases that need no Postgres of the test's own.
	cases := []startupCase{
		{name: "serve/port taken", bin: "yzpay", args: serve, env: sandbox("GATEWAY_ADDR", busy),
			code: 1, want: []string{busy, "address already in use"}},
		{name: "serve/DATA_DIR under a file", bin: "yzpay", args: serve, env: sandbox("DATA_DIR", filepath.Join(file, "data")),
			code: 1, want: []string{"DATA_DIR", filepath.Join(file, "data"), "not a directory"}},
		{name: "serve/DATA_DIR nats is a file", bin: "yzpay", args: serve, env: sandbox("DATA_DIR", natsIsFile),
			code: 1, want: []string{"JetStream", filepath.Join(natsIsFile, "nats")}},
		// Sandbox mode never uses DATABASE_URL or NATS_URL; production
		// serve waits for them.
		{name: "serve/postgres unreachable", bin: "yzpay", args: prodServe, env: prod("DATABASE_URL", deadDB),
			code: 1, want: []string{"postgres", "127.0.0.1:1", "does not answer after 2s"}, secret: "secretpw"},
		{name: "serve/nats unreachable", bin: "yzpay", args: prodServe, env: prod("NATS_URL", deadNATS),
			code: 1, want: []string{"NATS", "127.0.0.1:1", "does not answer after 2s"}, secret: "natspw"},
		{name: "serve/nats unreachable, default timeout", bin: "yzpay", args: prodServe,
			env:  with(prod("NATS_URL", deadNATS), "STARTUP_TIMEOUT", ""),
			code: 1, want: []string{"NATS", "127.0.0.1:1", "does not answer after 30s"}, secret: "natspw"},
		{name: "serve/sandbox with production credentials", bin: "yzpay", args: serve,
			env:  sandbox("YOUZANYUN_CLIENT_ID", "cid", "YOUZANYUN_CLIENT_SECRET", "prod-csecret", "YOUZAN_KDT_ID", "1"),
			code: 1, want: []string{"sandbox mode refuses", "YOUZANYUN_CLIENT_SECRET", "YOUZANYUN_CLIENT_ID", "YOUZAN_KDT_ID"}, secret: "prod-csecret"},
		{name: "serve/ops port taken", bin: "yzpay", args: prodServe, env: prod("OPS_ADDR", busy),
			code: 1, want: []string{busy, "address already in use"}},
		{name: "serve/ORDER_TTL banana", bin: "yzpay", args: serve, env: sandbox("ORDER_TTL", "banana"),
			code: 1, want: []string{"ORDER_TTL"}},
		{name: "serve/LOG_LEVEL loud", bin: "yzpay", args: serve, env: sandbox("LOG_LEVEL", "loud"),
			code: 2, want: []string{"LOG_LEVEL"}, prefix: "yzpay serve: "},
		{name: "serve/missing", bin: "yzpay", args: []string{"serve"}, env: map[string]string{"DATA_DIR": t.TempDir()},
			code: 1, want: []string{"missing", "GATEWAY_API_KEY", "SELF_SECRET", "PUSH_API", "YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID"}},

		{name: "gateway/postgres unreachable, default timeout", bin: "gateway",
			env:  with(split["gateway"], "DATABASE_URL", deadDB, "NATS_URL", deadNATS, "STARTUP_TIMEOUT", ""),
			code: 1, want: []string{"postgres", "127.0.0.1:1", "does not answer after 30s"}, secret: "secretpw"},
		{name: "gateway/DATABASE_URL malformed", bin: "gateway",
			env:  with(split["gateway"], "DATABASE_URL", "postgres://postgres:secretpw@127.0.0.1:port/x", "NATS_URL", deadNATS),
			code: 1, want: []string{"DATABASE_URL", "127.0.0.1:port"}, secret: "secretpw"},
		{name: "gateway/NATS_REPLICAS 9", bin: "gateway", env: with(split["gateway"], "NATS_REPLICAS", "9"),
			code: 1, want: []string{"NATS_REPLICAS"}},
		{name: "tradefetcher/ORDER_TTL banana", bin: "tradefetcher", env: with(split["tradefetcher"], "ORDER_TTL", "banana"),
			code: 1, want: []string{"ORDER_TTL"}},
		{name: "tradefetcher/STARTUP_TIMEOUT soon", bin: "tradefetcher", env: with(split["tradefetcher"], "STARTUP_TIMEOUT", "soon"),
			code: 1, want: []string{"STARTUP_TIMEOUT"}},
		{name: "notifier/PUSH_FORMAT xml", bin: "notifier", env: with(split["notifier"], "PUSH_FORMAT", "xml"),
			code: 1, want: []string{"PUSH_FORMAT"}},
		{name: "gateway/missing", bin: "gateway", env: map[string]string{},
			code: 1, want: []string{"missing", "YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID", "GATEWAY_API_KEY", "NATS_URL", "DATABASE_URL"}},
		{name: "tradefetcher/missing", bin: "tradefetcher", env: map[string]string{},
			code: 1, want: []string{"missing", "YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID", "NATS_URL", "DATABASE_URL"}},
		{name: "notifier/missing", bin: "notifier", env: map[string]string{},
			code: 1, want: []string{"missing", "SELF_SECRET", "PUSH_API", "NATS_URL", "DATABASE_URL"}},
	}
	for _, bin := range []string{"gateway", "tradefetcher", "notifier"} {
		cases = append(cases, startupCase{name: bin + "/postgres unreachable", bin: bin,
			env:  with(split[bin], "DATABASE_URL", deadDB, "NATS_URL", deadNATS),
			code: 1, want: []string{"postgres", "127.0.0.1:1", "does not answer after 2s"}, secret: "secretpw"})
	}

	t.Run("no postgres", func(t *testing.T) {
		t.Parallel()
		runStartupCases(t, bins, cases)
	})

	// The split binaries open Postgres, then NATS, then their listener: to
	// get as far as NATS or the port they need a database that answers.
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db := postgrestest.NewDatabase(t)
		ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), Listen: true, Port: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Shutdown)
		// A broker that requires credentials: without them each service
		// stops at once with one line saying so, the password unseen.
		authNS, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), Listen: true, Port: -1, Username: "yzpay", Password: "natspw"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(authNS.Shutdown)
		wrongPW := strings.Replace(authNS.ClientURL(), "nats://", "nats://yzpay:wrongpw@", 1)
		var cases []startupCase
		for _, bin := range []string{"gateway", "tradefetcher", "notifier"} {
			cases = append(cases,
				startupCase{name: bin + "/nats without credentials", bin: bin,
					env:  with(split[bin], "DATABASE_URL", db, "NATS_URL", authNS.ClientURL(), "STARTUP_TIMEOUT", "30s"),
					code: 1, want: []string{"NATS", "refused the credentials", "NATS_CREDS"}},
				startupCase{name: bin + "/nats wrong password", bin: bin,
					env:  with(split[bin], "DATABASE_URL", db, "NATS_URL", wrongPW, "STARTUP_TIMEOUT", "30s"),
					code: 1, want: []string{"NATS", "refused the credentials"}, secret: "wrongpw"})
		}
		cases = append(cases, startupCase{name: "gateway/ops port taken", bin: "gateway",
			env:  with(split["gateway"], "DATABASE_URL", db, "NATS_URL", ns.ClientURL(), "OPS_ADDR", busy),
			code: 1, want: []string{busy, "address already in use"}})
		for _, bin := range []string{"gateway", "tradefetcher", "notifier"} {
			cases = append(cases,
				startupCase{name: bin + "/nats unreachable", bin: bin,
					env:  with(split[bin], "DATABASE_URL", db, "NATS_URL", deadNATS),
					code: 1, want: []string{"NATS", "127.0.0.1:1", "does not answer after 2s"}, secret: "natspw"},
				startupCase{name: bin + "/port taken", bin: bin,
					env:  with(split[bin], "DATABASE_URL", db, "NATS_URL", ns.ClientURL(), listenVar[bin], busy),
					code: 1, want: []string{busy, "address already in use"}})
		}
		runStartupCases(t, bins, cases)
	})
}

// runStartupCases starts every case at once (they mostly wait on timeouts,
// so running them side by side keeps the test short whatever -parallel is),
// then checks each in a subtest of its own.
func runStartupCases(t *testing.T, bins map[string]string, cases []startupCase) {
	results := make([]chan startupResult, len(cases))
	for i, c := range cases {
		results[i] = make(chan startupResult, 1)
		dir := t.TempDir()
		go func() { results[i] <- runStartup(bins[c.bin], c.args, c.env, dir) }()
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := <-results[i]
			checkStartup(t, c, r)
		})
	}
}

func checkStartup(t *testing.T, c startupCase, r startupResult) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%v (after %s)\nstderr:\n%s", r.err, r.took.Round(time.Millisecond), r.stderr)
	}
	t.Logf("exit %d after %s: %s", r.code, r.took.Round(time.Millisecond), lastLine(r.stderr))
	if r.code != c.code {
		t.Errorf("exit status %d, want %d", r.code, c.code)
	}
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr has %q:\n%s", bad, r.stderr)
		}
	}
	if c.secret != "" && strings.Contains(r.stdout+r.stderr, c.secret) {
		t.Errorf("the output shows the secret %q:\n%s%s", c.secret, r.stdout, r.stderr)
	}
	last := lastLine(r.stderr)
	prefix := c.prefix
	if prefix == "" {
		prefix = c.bin + ": "
		if c.bin == "yzpay" && len(c.args) > 0 {
			prefix = "yzpay " + c.args[0] + ": "
		}
	}
	if !strings.HasPrefix(last, prefix) {
		t.Errorf("last stderr line does not start with %q: %q\nstderr:\n%s", prefix, last, r.stderr)
	}
	for _, w := range c.want {
		if !strings.Contains(last, w) {
			t.Errorf("last stderr line does not name %q: %q", w, last)
		}
	}
}

// runStartup runs bin in dir (no envrc there) with only env, PATH and HOME,
// and waits for it to exit, killing it past startupDeadline.
func runStartup(bin string, args []string, env map[string]string, dir string) startupResult {
	ctx, cancel := context.WithTimeout(context.Background(), startupDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := startupResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.err = errors.New("still running at the deadline " + startupDeadline.String())
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		r.err = err
	default:
		r.err = errors.New("exited 0")
	}
	return r
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return lines[i]
		}
	}
	return ""
}

// buildBinaries builds yzpay and the three split services into a temporary
// directory, once, with one go build.
func buildBinaries(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	pkgs := []string{"./cmd/yzpay", "./services/gateway/cmd/gateway", "./services/tradefetcher/cmd/tradefetcher", "./services/notifier/cmd/notifier"}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bins := map[string]string{}
	for _, p := range pkgs {
		name := filepath.Base(p)
		bins[name] = filepath.Join(dir, name)
	}
	return bins
}
