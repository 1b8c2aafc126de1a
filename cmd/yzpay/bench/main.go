// Command bench measures the whole yzpay pipeline end to end: payments per
// second and the time from the gateway accepting a Youzan push to the
// merchant receiving the signed notification. It runs yzpay as real
// processes (`yzpay serve` with its embedded defaults, and the three split
// services on Postgres and NATS), with the Youzan sandbox and a sign-checking
// merchant in this process. Run it with `make bench`; docs/performance.md
// explains the figures.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	bin        string
	setups     []string
	steps      []int
	stepDur    time.Duration
	drain      time.Duration
	out        string
	natsURL    string
	pgURL      string
	workers    int
	logLevel   string
	cpuprofile string
	memprofile string
	keep       bool
	rig        string
	pinMode    string
	pin        pinning
	maxRate    int
	smoke      bool
}

func main() {
	var o options
	var setups, steps string
	flag.StringVar(&o.bin, "bin", "bin", "directory holding yzpay, gateway, tradefetcher, notifier (make build)")
	flag.StringVar(&setups, "setups", "embedded,split", "setups to run: embedded (yzpay serve: embedded JetStream + SQLite), split (three services on Postgres + NATS)")
	flag.StringVar(&steps, "steps", "100,250,500,1000,2000,4000", "offered push rates per second, stepped up until the system falls behind")
	flag.DurationVar(&o.stepDur, "step", 5*time.Second, "how long each rate is offered")
	flag.DurationVar(&o.drain, "drain", 15*time.Second, "how long to wait without progress for the last notifications of a step")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the JSON results")
	flag.StringVar(&o.natsURL, "nats", envOr("BENCH_NATS_URL", "nats://127.0.0.1:4222"), "NATS server for the split setup")
	flag.StringVar(&o.pgURL, "pg", envOr("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "Postgres admin URL for the split setup (a database is created and dropped)")
	flag.IntVar(&o.workers, "create-workers", 32, "concurrent QR creations")
	flag.StringVar(&o.logLevel, "log-level", "warn", "LOG_LEVEL of the yzpay processes")
	flag.BoolVar(&o.keep, "keep", false, "keep each setup's temporary directory (process logs) and print its path")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "embedded setup: write yzpay serve's CPU profile to this file")
	flag.StringVar(&o.memprofile, "memprofile", "", "embedded setup: write yzpay serve's heap profile, taken when its live heap was largest, to this file")
	flag.StringVar(&o.rig, "rig", "cheap", "cheap: trade.get from precomputed bodies, sign checked on pooled buffers; full: the sandbox and the merchant package on every call (the rig before issue 16)")
	flag.StringVar(&o.pinMode, "pin", "auto", "auto: with taskset and 2+ cores, yzpay on the first half of the cores and this rig on the rest; off: everything on every core")
	flag.IntVar(&o.maxRate, "max", 0, "after the -steps list, keep stepping up (x1.5) until a step is not held or this rate is reached; 0: only -steps")
	flag.BoolVar(&o.smoke, "smoke", false, "make bench-smoke: embedded only, one short step, no pinning, no results file; fails only when the ledger does not close")
	flag.Parse()
	if o.smoke {
		setups, steps, o.stepDur, o.drain, o.maxRate, o.pinMode = "embedded", "300", 3*time.Second, 10*time.Second, 0, "off"
		if !flagSet("out") {
			o.out = ""
		}
	}
	if o.rig != "cheap" && o.rig != "full" {
		fmt.Fprintf(os.Stderr, "bench: -rig is cheap or full, not %q\n", o.rig)
		os.Exit(2)
	}
	o.pin = planPinning(o.pinMode)
	if err := o.pin.pinSelf(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if abs, err := filepath.Abs(o.bin); err == nil {
		o.bin = abs // the processes run in their own temporary directories
	}
	o.setups = strings.Split(setups, ",")
	for _, s := range strings.Split(steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: bad -steps value %q\n", s)
			os.Exit(2)
		}
		o.steps = append(o.steps, n)
	}
	ctx := context.Background()
	report := Report{Date: time.Now().UTC().Format(time.RFC3339), Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		StepSeconds: o.stepDur.Seconds(), Describe: gitDescribe(), Pinning: o.pin.String(), Rig: o.rig}
	fmt.Printf("bench %s: %s; rig %s\n", report.Describe, report.Pinning, o.rig)
	failed := false
	for _, s := range o.setups {
		res, err := runSetup(ctx, o, strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s, err)
			os.Exit(1)
		}
		report.Setups = append(report.Setups, res)
		printSetup(res, report.Cores, o.smoke)
		if res.Failed {
			failed = true
		}
	}
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		path := filepath.Join(o.out, time.Now().UTC().Format("2006-01-02T150405Z")+"-"+report.Describe+".json")
		b, _ := json.MarshalIndent(report, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Printf("\nresults written to %s (%d cores)\n", path, report.Cores)
	}
	if failed {
		fmt.Println("FAILED: the ledger did not close (a payment missing, or announced under two event ids)")
		os.Exit(1)
	}
	if o.smoke {
		fmt.Println("bench-smoke: ledger closed (nothing missing, no payment announced twice)")
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Report is the JSON written under bench/results.
type Report struct {
	Date        string        `json:"date"`
	Cores       int           `json:"cores"`
	GoVersion   string        `json:"go_version"`
	StepSeconds float64       `json:"step_seconds"`
	Describe    string        `json:"git_describe"`
	Pinning     string        `json:"pinning"`
	Rig         string        `json:"rig"`
	Setups      []SetupResult `json:"setups"`
}

// SetupResult is one setup's run.
type SetupResult struct {
	Setup       string  `json:"setup"`
	Description string  `json:"description"`
	Orders      int     `json:"orders"`
	QRPerSecond float64 `json:"qr_creations_per_second"`
	QRErrors    int     `json:"qr_errors"`
	// QRCPUms: CPU ms of the yzpay processes per order created, over the
	// creation phases (request, store, Youzan call, QR image).
	QRCPUms      float64      `json:"qr_cpu_ms_per_order"`
	Steps        []StepResult `json:"steps"`
	MaxSustained float64      `json:"max_sustained_per_second"`
	PeakRSSBytes int64        `json:"peak_rss_bytes"`
	// QRPhaseRSSBytes: largest resident set while the orders were created.
	QRPhaseRSSBytes int64 `json:"qr_phase_peak_rss_bytes"`
	PeakRSSProcess  map[string]int64
	Failed          bool   `json:"failed"`
	Rig             string `json:"rig"`
	Pinning         string `json:"pinning"`
	// YzpayCores: the cores the yzpay processes may run on.
	YzpayCores int `json:"yzpay_cores"`
	// HighestHeld: the highest offered rate held (see StepResult.Behind).
	HighestHeld     int   `json:"highest_step_held_per_second"`
	TradeGetCached  int64 `json:"trade_get_precomputed"`
	TradeGetSandbox int64 `json:"trade_get_sandbox"`
}

// StepResult is one offered rate.
type StepResult struct {
	Offered    int     `json:"offered_per_second"`
	Achieved   float64 `json:"achieved_per_second"`
	Sent       int     `json:"sent"`
	Delivered  int     `json:"delivered"`
	Missing    int     `json:"missing"`
	Errors     int     `json:"push_errors"`
	BadSigns   int     `json:"bad_signs"`
	Duplicates int     `json:"duplicate_notifications"`
	// DupEvents: TRADE_SUCCESS notifications of an order under a second
	// event id — the payment announced twice; the ledger must have none.
	DupEvents int `json:"duplicate_events"`
	// PerYzpayCore: achieved payments/s per core yzpay may run on.
	PerYzpayCore float64 `json:"per_yzpay_core_per_second"`
	P50ms        float64 `json:"p50_ms"`
	P90ms        float64 `json:"p90_ms"`
	P99ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	Behind       bool    `json:"fell_behind"`
	// CPU milliseconds per delivered payment: the yzpay processes, and this
	// harness (load generator, Youzan sandbox, merchant) on the same cores.
	YzpayCPUms   float64 `json:"yzpay_cpu_ms_per_payment"`
	HarnessCPUms float64 `json:"harness_cpu_ms_per_payment"`
	// ServersCPUms: PostgreSQL and nats-server (split setup only).
	ServersCPUms float64 `json:"servers_cpu_ms_per_payment"`
	// PeakRSSBytes: largest resident set of the yzpay processes in the step.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
}

func printSetup(r SetupResult, cores int, smoke bool) {
	fmt.Printf("\n== %s: %s (%d cores; %s; yzpay on %d of them; rig %s)\n", r.Setup, r.Description, cores, r.Pinning, r.YzpayCores, r.Rig)
	fmt.Printf("QR creations: %d orders at %.0f/s through the gateway API (QR image rendered), %d errors, cpu-yzpay %.3f ms per order, peak RSS %.1f MB\n",
		r.Orders, r.QRPerSecond, r.QRErrors, r.QRCPUms, float64(r.QRPhaseRSSBytes)/(1<<20))
	fmt.Printf("%8s %9s %8s %7s %9s %7s %6s %5s %6s %7s %7s %7s %7s %9s %11s %8s %7s\n", "offered", "achieved", "per-core", "sent", "delivered", "missing", "errors", "dups", "dupev", "p50ms", "p90ms", "p99ms", "maxms", "cpu-yzpay", "cpu-pg+nats", "cpu-rig", "rss-MB")
	for _, s := range r.Steps {
		mark := ""
		if s.Behind && !smoke {
			mark = "  <- not held"
		}
		fmt.Printf("%8d %9.0f %8.0f %7d %9d %7d %6d %5d %6d %7.1f %7.1f %7.1f %7.1f %9.3f %11.3f %8.3f %7.1f%s\n", s.Offered, s.Achieved, s.PerYzpayCore, s.Sent, s.Delivered, s.Missing, s.Errors, s.Duplicates, s.DupEvents, s.P50ms, s.P90ms, s.P99ms, s.MaxMs, s.YzpayCPUms, s.ServersCPUms, s.HarnessCPUms, float64(s.PeakRSSBytes)/(1<<20), mark)
	}
	fmt.Println("(per-core: achieved per core yzpay may run on; dups: repeats of an event, allowed; dupev: a payment announced")
	fmt.Println(" under a second event id, not allowed; cpu-*: CPU ms per delivered payment of the yzpay processes, of")
	fmt.Println(" PostgreSQL + nats-server (split only), and of this rig: load generator, fake Youzan, merchant)")
	if r.TradeGetCached+r.TradeGetSandbox > 0 {
		fmt.Printf("trade.get: %d answered from precomputed bodies, %d by the sandbox\n", r.TradeGetCached, r.TradeGetSandbox)
	}
	if !smoke {
		fmt.Printf("highest step held (nothing lost or refused, >= 95%% delivered, p99 < 250 ms): %d/s offered, %.0f/s achieved\n", r.HighestHeld, r.MaxSustained)
	}
	fmt.Printf("peak RSS of the yzpay processes: %.1f MB %v\n", float64(r.PeakRSSBytes)/(1<<20), mb(r.PeakRSSProcess))
}

func mb(m map[string]int64) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%.1fMB", k, float64(v)/(1<<20)))
	}
	return "(" + strings.Join(parts, " ") + ")"
}
