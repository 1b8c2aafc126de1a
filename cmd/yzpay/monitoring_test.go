package main

// The monitoring files — deploy/prometheus/alerts.yml and its unit tests,
// deploy/grafana and docs/runbook.md — held against promtool, against the
// series a running `yzpay serve --sandbox` exports, against the compose
// wiring and against the CLI and admin API the runbook tells operators to use.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/cmd/yzpay/app"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
	"gopkg.in/yaml.v3"
)

// pendingMetrics are series the alerts may use before yzpay exports them,
// with what brings them. Once one is exported, drop it from here.
var pendingMetrics = map[string]string{}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "deploy/prometheus/alerts.yml")), &f); err != nil {
		t.Fatalf("deploy/prometheus/alerts.yml: %v", err)
	}
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("deploy/prometheus/alerts.yml has no rules")
	}
	return rules
}

// dashboardExprs returns every "expr" string anywhere in the dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var d any
	if err := json.Unmarshal([]byte(readRepoFile(t, "deploy/grafana/yzpay.json")), &d); err != nil {
		t.Fatalf("deploy/grafana/yzpay.json: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(d)
	if len(exprs) == 0 {
		t.Fatal("deploy/grafana/yzpay.json has no queries")
	}
	return exprs
}

// grafanaVars are the dashboard variables the queries use, with a value
// that makes them plain PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

var metricNameRE = regexp.MustCompile(`\byzpay_[a-z0-9_]+`)

// promtool returns promtool's path, or skips the test in one line; under
// CI a missing promtool fails instead (.ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("promtool is not installed (Debian package prometheus); CI must run this test")
	}
	t.Skip("promtool not installed (apt-get install prometheus); skipping")
	return ""
}

// alerts.yml is valid, every rule passes its unit tests, and every
// dashboard query parses as PromQL.
func TestPrometheusRules(t *testing.T) {
	bin := promtool(t)
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(dir, "check", "rules", "alerts.yml")
	run(dir, "test", "rules", "alerts_test.yml")

	// promtool checks PromQL only in rule files: give each dashboard query
	// one as a recording rule.
	var rf strings.Builder
	rf.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range dashboardExprs(t) {
		fmt.Fprintf(&rf, "      - record: dashboard:query_%d\n        expr: %s\n", i, strconv.Quote(grafanaVars.Replace(e)))
	}
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "dashboard.yml"), []byte(rf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(tmp, "check", "rules", "dashboard.yml")
}

// Every alert is tested both firing and quiet, carries a severity and the
// annotations an on-call engineer reads, and has its runbook section.
func TestAlertsTestedAndDocumented(t *testing.T) {
	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "deploy/prometheus/alerts_test.yml")), &tf); err != nil {
		t.Fatalf("deploy/prometheus/alerts_test.yml: %v", err)
	}
	if !slices.Contains(tf.RuleFiles, "alerts.yml") {
		t.Errorf("alerts_test.yml tests %v, not alerts.yml", tf.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	runbook := readRepoFile(t, "docs/runbook.md")
	alerts := map[string]bool{}
	for _, r := range loadAlertRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts[r.Alert] = true
		if !fires[r.Alert] {
			t.Errorf("alert %s has no test case in which it fires", r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("alert %s has no test case in which it must not fire", r.Alert)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
		}
		for _, a := range []string{"summary", "description"} {
			if r.Annotations[a] == "" {
				t.Errorf("alert %s lacks the %s annotation", r.Alert, a)
			}
		}
		if want := "docs/runbook.md#" + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("alert %s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !strings.Contains(runbook, "\n## "+r.Alert+"\n") {
			t.Errorf("docs/runbook.md has no section \"## %s\"", r.Alert)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^## (Yzpay\S*)$`).FindAllStringSubmatch(runbook, -1) {
		if !alerts[m[1]] {
			t.Errorf("docs/runbook.md has a section for %s, which alerts.yml does not define", m[1])
		}
	}
}

// startSandboxServe runs what `yzpay serve --sandbox` runs, on a free port
// with its data in a temporary directory.
func startSandboxServe(t *testing.T) *app.App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, app.Options{
		Env:           config.FromMap(map[string]string{"GATEWAY_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir()}),
		Sandbox:       true,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		SandboxConfig: sandbox.Config{RetryScale: 0.001},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := a.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return a
}

// metricFamilies returns the families of a /metrics text answer by name,
// with their type.
func metricFamilies(text []byte) map[string]string {
	fams := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			fams[f[2]] = f[3]
		}
	}
	return fams
}

// exported reports whether a series name used in a query belongs to one of
// fams: a histogram's _bucket, _sum and _count series are its family's.
func exported(fams map[string]string, name string) bool {
	if _, ok := fams[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if typ := fams[base]; typ == "histogram" || (typ == "summary" && suf != "_bucket") {
				return true
			}
		}
	}
	return false
}

// Every series the alerts and the dashboard query is one yzpay exports:
// after a payment through `yzpay serve --sandbox` has reached the demo
// merchant and the lag poller has run, its /metrics (all three services on
// one registry) has them all.
func TestMonitoringQueriesUseExportedMetrics(t *testing.T) {
	used := map[string][]string{} // metric -> where
	for _, r := range loadAlertRules(t) {
		names := metricNameRE.FindAllString(r.Expr, -1)
		if len(names) == 0 {
			t.Errorf("alert %s queries no yzpay series", r.Alert)
		}
		for _, n := range names {
			used[n] = append(used[n], "alert "+r.Alert)
		}
	}
	for _, e := range dashboardExprs(t) {
		names := metricNameRE.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("dashboard query %q uses no yzpay series", e)
		}
		for _, n := range names {
			used[n] = append(used[n], "deploy/grafana/yzpay.json")
		}
	}
	for _, n := range sortedKeys(pendingMetrics) {
		for _, where := range used[n] {
			if !strings.HasPrefix(where, "alert ") {
				t.Errorf("%s uses %s, which yzpay does not export yet", where, n)
			}
		}
	}

	a := startSandboxServe(t)
	pay(t, a, "monitoring-1")
	// The demo merchant has its push a moment before the notifier records
	// the attempt, and the lag series wait for the poller: scrape until
	// everything is there or the deadline passes.
	var fams map[string]string
	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		fams = metricFamilies(scrape(t, a.URL+"/metrics"))
		missing = missing[:0]
		for _, n := range sortedKeys(used) {
			if _, pending := pendingMetrics[n]; !pending && !exported(fams, n) {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range missing {
		t.Errorf("%s queries %s, which `yzpay serve --sandbox` does not export", strings.Join(slices.Compact(used[n]), ", "), n)
	}
	for _, n := range sortedKeys(pendingMetrics) {
		if exported(fams, n) {
			t.Errorf("%s is exported now; remove it from pendingMetrics", n)
		} else if len(used[n]) > 0 {
			t.Logf("%s is not exported yet: it arrives with %s", n, pendingMetrics[n])
		}
	}
}

// pay creates an order, pays it in the sandbox and waits until the demo
// merchant has its TRADE_SUCCESS.
func pay(t *testing.T, a *app.App, orderID string) {
	t.Helper()
	resp, err := http.Post(a.URL+"/api/payment/qrcode", "application/json",
		strings.NewReader(`{"name":"monitoring","price":1,"order_id":"`+orderID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create QR: %d %s", resp.StatusCode, body)
	}
	o, err := a.Store.OrderByID(context.Background(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := http.Post(a.URL+"/sandbox/qrcodes/"+strconv.FormatInt(o.QRID, 10)+"/pay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusOK {
		t.Fatalf("sandbox pay: %d", pr.StatusCode)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case p := <-a.MerchantCh:
			if p.Push.OrderID == orderID && p.Push.Status == "TRADE_SUCCESS" {
				return
			}
		case <-deadline:
			t.Fatal("the demo merchant never received TRADE_SUCCESS")
		}
	}
}

func scrape(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

// Compose loads the rules into Prometheus and provisions Grafana with the
// dashboard and a data source that reaches that Prometheus.
func TestComposeMonitoring(t *testing.T) {
	c := loadCompose(t)
	mounts := func(svc string) map[string]string { // container path -> repo path
		out := map[string]string{}
		for _, v := range c.Services[svc].Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && strings.HasPrefix(parts[0], "./") {
				out[parts[1]] = strings.TrimPrefix(parts[0], "./")
			}
		}
		return out
	}
	// A file (or a file under a directory) mounted at containerPath.
	mountedFrom := func(m map[string]string, containerPath string) (string, bool) {
		for dst, src := range m {
			if dst == containerPath {
				return src, true
			}
			if rel, ok := strings.CutPrefix(containerPath, dst+"/"); ok {
				return path.Join(src, rel), true
			}
		}
		return "", false
	}

	prom := findService(t, c, "Prometheus", func(s composeService) bool { return strings.Contains(s.Image, "prometheus") })
	var pcfg struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "deploy/prometheus.yml")), &pcfg); err != nil {
		t.Fatal(err)
	}
	loaded := false
	for _, rf := range pcfg.RuleFiles {
		if !path.IsAbs(rf) {
			rf = path.Join("/etc/prometheus", rf)
		}
		src, ok := mountedFrom(mounts(prom), rf)
		if !ok {
			t.Errorf("deploy/prometheus.yml loads %s, which compose does not mount into %s", rf, prom)
		}
		loaded = loaded || src == "deploy/prometheus/alerts.yml"
	}
	if !loaded {
		t.Error("Prometheus in compose does not load deploy/prometheus/alerts.yml")
	}

	graf := findService(t, c, "Grafana", func(s composeService) bool { return strings.Contains(s.Image, "grafana") })
	gm := mounts(graf)
	provDir, ok := gm["/etc/grafana/provisioning"]
	if !ok {
		t.Fatalf("compose does not mount Grafana's provisioning directory: %v", c.Services[graf].Volumes)
	}
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, path.Join(provDir, "datasources/prometheus.yml"))), &ds); err != nil {
		t.Fatal(err)
	}
	promURL := "http://" + prom + ":9090"
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != promURL {
		t.Errorf("Grafana's data source is %+v, want one of type prometheus at %s", ds.Datasources, promURL)
	}
	if !slices.Contains(c.Services[prom].Ports, "9090:9090") {
		t.Errorf("Prometheus does not listen on 9090 as the data source expects: %v", c.Services[prom].Ports)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, path.Join(provDir, "dashboards/yzpay.yml"))), &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 {
		t.Fatalf("want one dashboard provider, got %d", len(prov.Providers))
	}
	if src, ok := mountedFrom(gm, path.Join(prov.Providers[0].Options.Path, "yzpay.json")); !ok || src != "deploy/grafana/yzpay.json" {
		t.Errorf("the dashboard provider reads %s, where compose does not mount deploy/grafana/yzpay.json", prov.Providers[0].Options.Path)
	}

	// Every panel's queries go to the provisioned data source.
	var dash struct {
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(readRepoFile(t, "deploy/grafana/yzpay.json")), &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && p.Datasource.UID != ds.Datasources[0].UID {
			t.Errorf("panel %q uses data source %q, want %q", p.Title, p.Datasource.UID, ds.Datasources[0].UID)
		}
	}
}

// The runbook's commands are real: each `yzpay ...` names a command and
// flags the CLI accepts, and each admin API path is a route the gateway
// serves.
func TestRunbookCommands(t *testing.T) {
	runbook := markdownCode(readRepoFile(t, "docs/runbook.md"))
	cmds := regexp.MustCompile(`\byzpay ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)((?: --[a-z-]+(?:[ =](?:\S+))?)*)`).FindAllStringSubmatch(runbook, -1)
	if len(cmds) == 0 {
		t.Fatal("docs/runbook.md names no yzpay command")
	}
	for _, m := range cmds {
		words := strings.Fields(m[1])
		if words[0] != "deliveries" && len(words) > 1 {
			words = words[:1] // "yzpay serve and ..." is prose after the command
		}
		var stderr bytes.Buffer
		if code := run(context.Background(), append(slices.Clone(words), "--help"), io.Discard, &stderr); code != 0 {
			t.Errorf("the runbook uses `yzpay %s`, but `yzpay %s --help` exits %d", m[1], strings.Join(words, " "), code)
			continue
		}
		for _, f := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(m[2], -1) {
			if !strings.Contains(stderr.String(), "-"+f[1]+" ") && !strings.Contains(stderr.String(), "-"+f[1]+"\n") {
				t.Errorf("the runbook passes --%s to `yzpay %s`, which has no such flag", f[1], strings.Join(words, " "))
			}
		}
	}

	var routes [][]string
	goFiles(t, "services/gateway", func(_ string, f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok && len(call.Args) > 0 {
				if s, ok := stringLit(call.Args[0]); ok && strings.HasPrefix(s, "/api/") {
					routes = append(routes, strings.Split(s, "/"))
				}
			}
			return true
		})
	})
	matches := func(p []string) bool {
		for _, r := range routes {
			if len(r) != len(p) {
				continue
			}
			ok := true
			for i := range r {
				param := strings.HasPrefix(r[i], ":") && (strings.HasPrefix(p[i], "$") || strings.HasPrefix(p[i], "<"))
				ok = ok && (r[i] == p[i] || param)
			}
			if ok {
				return true
			}
		}
		return false
	}
	paths := regexp.MustCompile(`https?://[^/\s"']+(/api/[^\s"'?]*)`).FindAllStringSubmatch(runbook, -1)
	if len(paths) == 0 {
		t.Fatal("docs/runbook.md has no admin API call")
	}
	for _, m := range paths {
		if !matches(strings.Split(m[1], "/")) {
			t.Errorf("the runbook calls %s, which is not a gateway route", m[1])
		}
	}
}

// markdownCode returns the fenced blocks and inline code spans of md, one
// per line: the text an operator copies.
func markdownCode(md string) string {
	var b strings.Builder
	fenced := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			b.WriteString(l + "\n")
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(l, -1) {
			b.WriteString(m[1] + "\n")
		}
	}
	return b.String()
}
