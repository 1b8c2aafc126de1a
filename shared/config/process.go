package config

import (
	"slices"

	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
)

// This file is the one place that turns the environment into settings: one
// struct per process (Gateway, Tradefetcher, Notifier, and Serve holding the
// three for `yzpay serve`), each loaded and checked once by its Load
// function. A Load reports every missing variable in one Missing error, or
// the first invalid value by name; the services' New functions take the
// struct as loaded. Fields without a variable are tuning knobs that tests set
// and whose zero value means the default.

// Defaults the README's configuration table states; deploy_test.go checks
// that it does.
const (
	DefaultGatewayAddr             = ":8080"
	DefaultTradefetcherMetricsAddr = ":9101"
	DefaultNotifierMetricsAddr     = ":9102"
	DefaultYouzanBase              = "https://open.youzanyun.com"
	DefaultOrderTTL                = 30 * time.Minute
	DefaultReconcileInterval       = time.Minute
	DefaultDataDir                 = "./data"
	DefaultStartupTimeout          = 30 * time.Second

	FormatForm = "form"
	FormatJSON = "json"
)

// DefaultFetchRetrySchedule is FETCH_RETRY_SCHEDULE's default.
var DefaultFetchRetrySchedule = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// DefaultPushRetrySchedule is PUSH_RETRY_SCHEDULE's default.
var DefaultPushRetrySchedule = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour}

// Logging is LOG_LEVEL and LOG_FORMAT.
type Logging struct {
	Level slog.Level
	JSON  bool
}

// Logger builds the process logger writing to w.
func (l Logging) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Youzan is the Youzan Cloud self-use app (docs/youzan.md#token).
type Youzan struct {
	BaseURL      string // YOUZAN_API_BASE
	ClientID     string // YOUZANYUN_CLIENT_ID
	ClientSecret string // YOUZANYUN_CLIENT_SECRET; also verifies pushes
	KdtID        string // YOUZAN_KDT_ID
}

// Broker is where the JetStream streams live.
type Broker struct {
	NATSURL  string // NATS_URL; "" in `yzpay serve` means embedded
	Replicas int    // NATS_REPLICAS
}

// Gateway is the gateway process's configuration.
type Gateway struct {
	Log         Logging
	Addr        string // GATEWAY_ADDR
	DatabaseURL string // DATABASE_URL
	Broker      Broker
	Youzan      Youzan
	// APIKey guards /api/payment/*; "" leaves it open (sandbox mode only;
	// the caller decides and logs the warning).
	APIKey string // GATEWAY_API_KEY
	// AdminKey guards /api/admin/*; "" switches the admin API off.
	AdminKey string // ADMIN_API_KEY

	// ClaimFor bounds how long one replica may hold the right to create an
	// order's QR before another may try (a crash in the middle).
	ClaimFor time.Duration
	// PublishTimeout bounds the wait for JetStream's PubAck; Youzan gives a
	// push receiver 5 s in all.
	PublishTimeout time.Duration
	// MaxConcurrentPushes bounds the pushes being stored at once; beyond it
	// the gateway answers 503 at once (Youzan re-pushes later) instead of
	// queueing without limit under overload. Default 512.
	MaxConcurrentPushes int
	// PushReadTimeout bounds the time a push body may take to arrive; a
	// real one is a few KiB and arrives at once. Default 3s.
	PushReadTimeout time.Duration
	// MaxPushBytes bounds the push body bytes held at once (being read or
	// stored); beyond it a push is answered 503 at once. Default 16 MiB.
	MaxPushBytes int64
	// StartupTimeout bounds the wait for Postgres and NATS at start-up.
	StartupTimeout time.Duration // STARTUP_TIMEOUT
}

// Sweep tunes reconciliation and expiry.
type Sweep struct {
	// Interval between sweeps, and the age an unpaid order must reach
	// before Youzan is asked about it (its push gets one interval to come).
	Interval time.Duration // RECONCILE_INTERVAL
	// OrderTTL: an order still unpaid this long after creation is closed.
	OrderTTL time.Duration // ORDER_TTL
	Batch    int           // orders per sweep and kind; default 200
}

// Tradefetcher is the tradefetcher process's configuration.
type Tradefetcher struct {
	Log         Logging
	MetricsAddr string // METRICS_ADDR
	DatabaseURL string
	Broker      Broker
	Youzan      Youzan
	// RetrySchedule: delays between trade.get retries of one receipt
	// (FETCH_RETRY_SCHEDULE). Past its end the last delay repeats: a
	// receipt is never dropped for Youzan's sake.
	RetrySchedule []time.Duration
	Sweep         Sweep

	Batch   int // messages fetched at once; default 64
	Workers int // trade.get calls in flight; default 16
	// StoreRetry is the redelivery delay when the store or broker fails.
	StoreRetry time.Duration
	Grace      time.Duration // finishing in-flight work at shutdown; default 10s
	// AckWait: how long a receipt held by a worker that died stays
	// invisible; 0 = 30s (tests shorten it).
	AckWait time.Duration
	// StartupTimeout bounds the wait for Postgres and NATS at start-up.
	StartupTimeout time.Duration // STARTUP_TIMEOUT
}

// Notifier is the notifier process's configuration.
type Notifier struct {
	Log         Logging
	MetricsAddr string // METRICS_ADDR
	DatabaseURL string
	Broker      Broker
	Endpoints   []string // PUSH_API
	Secret      string   // SELF_SECRET
	Format      string   // PUSH_FORMAT: form (default) or json
	// RetrySchedule: delays between attempts to one endpoint; after
	// len(RetrySchedule)+1 failed attempts the endpoint is given up.
	RetrySchedule []time.Duration // PUSH_RETRY_SCHEDULE
	// Statuses, if not empty, limits which statuses are pushed.
	Statuses map[string]bool // PUSH_STATUSES

	Timeout time.Duration // per POST; default 10s
	Jitter  float64       // fraction of each delay added at random; default 0.1
	Batch   int           // default 64
	Workers int           // events delivered at once; default 32
	Grace   time.Duration // default 15s
	// AckWait: how long an event held by a worker that died stays
	// invisible; 0 = 60s (tests shorten it).
	AckWait time.Duration
	// StoreRetry is the redelivery delay when the store fails.
	StoreRetry time.Duration
	// StartupTimeout bounds the wait for Postgres and NATS at start-up.
	StartupTimeout time.Duration // STARTUP_TIMEOUT
}

// Serve is `yzpay serve`: the three services in one process, on an embedded
// broker and SQLite store unless NATS_URL and DATABASE_URL name real ones.
type Serve struct {
	Log     Logging
	Sandbox bool   // --sandbox or YOUZAN_MODE=sandbox
	DataDir string // DATA_DIR
	// SandboxSecret: SELF_SECRET was unset in sandbox mode, so Notifier.Secret
	// was made up for this run (the demo merchant shares it).
	SandboxSecret bool
	// DemoMerchant: PUSH_API was unset in sandbox mode; the demo merchant on
	// the gateway's listener receives the notifications (see BindURL).
	DemoMerchant bool
	// StartupTimeout bounds the wait for Postgres and NATS (when named) at
	// start-up; the services' copies hold the same value.
	StartupTimeout time.Duration // STARTUP_TIMEOUT
	Gateway        Gateway
	Tradefetcher   Tradefetcher
	Notifier       Notifier
}

// problems gathers what is missing and what is wrong, so that one start
// reports every missing variable at once.
type problems struct {
	missing Missing
	invalid []error
}

func (p *problems) require(env Env, names ...string) {
	for _, n := range names {
		if strings.TrimSpace(env.vars[n]) == "" {
			p.missing = append(p.missing, n)
		}
	}
}

func (p *problems) add(err error) {
	if err != nil {
		p.invalid = append(p.invalid, err)
	}
}

func (p *problems) err() error {
	if len(p.invalid) > 0 {
		return invalid{p.invalid[0]}
	}
	if len(p.missing) > 0 {
		return p.missing
	}
	return nil
}

func loadLogging(env Env, p *problems) Logging {
	var l Logging
	switch strings.ToLower(env.Get("LOG_LEVEL", "info")) {
	case "debug":
		l.Level = slog.LevelDebug
	case "info":
		l.Level = slog.LevelInfo
	case "warn":
		l.Level = slog.LevelWarn
	case "error":
		l.Level = slog.LevelError
	default:
		p.add(errors.New("config: LOG_LEVEL must be debug, info, warn or error"))
	}
	switch strings.ToLower(env.Get("LOG_FORMAT", "text")) {
	case "text":
	case "json":
		l.JSON = true
	default:
		p.add(errors.New("config: LOG_FORMAT must be text or json"))
	}
	return l
}

// LoadLogging reads LOG_LEVEL and LOG_FORMAT alone, for commands that need a
// logger but no service settings.
func LoadLogging(env Env) (Logging, error) {
	var p problems
	l := loadLogging(env, &p)
	return l, p.err()
}

func loadYouzan(env Env, p *problems, required bool) Youzan {
	if required {
		p.require(env, "YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID")
	}
	y := Youzan{
		BaseURL:      env.Get("YOUZAN_API_BASE", DefaultYouzanBase),
		ClientID:     env.Get("YOUZANYUN_CLIENT_ID", ""),
		ClientSecret: env.Get("YOUZANYUN_CLIENT_SECRET", ""),
		KdtID:        env.Get("YOUZAN_KDT_ID", ""),
	}
	if u, err := url.Parse(y.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(fmt.Errorf("config: YOUZAN_API_BASE must be an http(s) URL; %q is not", RedactURL(y.BaseURL)))
	}
	return y
}

// loadSplit reads what every split service needs besides its own settings.
func loadSplit(env Env, p *problems) (Broker, string, time.Duration) {
	p.require(env, "NATS_URL", "DATABASE_URL")
	return loadBroker(env, p), loadDatabaseURL(env, p), loadStartupTimeout(env, p)
}

// loadDatabaseURL reads DATABASE_URL. A URL (anything with "://"; pgx also
// takes "host=… user=…" strings, which it checks itself) must parse and be
// postgres://; the error shows it without its password.
func loadDatabaseURL(env Env, p *problems) string {
	db := env.Get("DATABASE_URL", "")
	if strings.Contains(db, "://") {
		if u, err := url.Parse(db); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.add(fmt.Errorf("config: DATABASE_URL must be a postgres:// URL; %q is not", RedactURL(db)))
		}
	}
	return db
}

func loadStartupTimeout(env Env, p *problems) time.Duration {
	d, err := StartupTimeout(env)
	p.add(err)
	return d
}

// StartupTimeout reads STARTUP_TIMEOUT: how long a process waits for
// Postgres and NATS to answer at start-up before it gives up with one line.
// The commands that open the store or the broker without a service
// configuration (migrate, deliveries) read it here too.
func StartupTimeout(env Env) (time.Duration, error) {
	d, err := env.Duration("STARTUP_TIMEOUT", DefaultStartupTimeout)
	if err == nil && d == 0 {
		err = errors.New("config: STARTUP_TIMEOUT must be a positive duration")
	}
	if err != nil {
		return DefaultStartupTimeout, invalid{err}
	}
	return d, nil
}

func loadBroker(env Env, p *problems) Broker {
	b := Broker{NATSURL: env.Get("NATS_URL", "")}
	n, err := env.Int("NATS_REPLICAS", 1)
	p.add(err)
	if err == nil && (n < 1 || n > 5) {
		p.add(errors.New("config: NATS_REPLICAS must be from 1 to 5"))
	}
	b.Replicas = n
	return b
}

func loadGateway(env Env, p *problems, sandbox bool) Gateway {
	g := Gateway{
		Log:      loadLogging(env, p),
		Addr:     env.Get("GATEWAY_ADDR", DefaultGatewayAddr),
		APIKey:   env.Get("GATEWAY_API_KEY", ""),
		AdminKey: env.Get("ADMIN_API_KEY", ""),
	}
	if !sandbox {
		p.require(env, "GATEWAY_API_KEY")
	}
	return g
}

// LoadGateway loads the split gateway's configuration.
func LoadGateway(env Env) (Gateway, error) {
	var p problems
	g := loadGateway(env, &p, false)
	g.Youzan = loadYouzan(env, &p, true)
	g.Broker, g.DatabaseURL, g.StartupTimeout = loadSplit(env, &p)
	return g, p.err()
}

func loadTradefetcher(env Env, p *problems) Tradefetcher {
	t := Tradefetcher{Log: loadLogging(env, p), MetricsAddr: env.Get("METRICS_ADDR", DefaultTradefetcherMetricsAddr)}
	var err error
	t.RetrySchedule, err = env.Durations("FETCH_RETRY_SCHEDULE", DefaultFetchRetrySchedule)
	p.add(err)
	t.Sweep.OrderTTL, err = env.Duration("ORDER_TTL", DefaultOrderTTL)
	p.add(err)
	t.Sweep.Interval, err = env.Duration("RECONCILE_INTERVAL", DefaultReconcileInterval)
	p.add(err)
	if t.Sweep.OrderTTL == 0 || t.Sweep.Interval == 0 {
		p.add(errors.New("config: ORDER_TTL and RECONCILE_INTERVAL must be positive durations"))
	}
	return t
}

// LoadTradefetcher loads the split tradefetcher's configuration.
func LoadTradefetcher(env Env) (Tradefetcher, error) {
	var p problems
	t := loadTradefetcher(env, &p)
	t.Youzan = loadYouzan(env, &p, true)
	t.Broker, t.DatabaseURL, t.StartupTimeout = loadSplit(env, &p)
	return t, p.err()
}

func loadNotifier(env Env, p *problems, sandbox bool) Notifier {
	n := Notifier{
		Log:         loadLogging(env, p),
		MetricsAddr: env.Get("METRICS_ADDR", DefaultNotifierMetricsAddr),
		Secret:      env.Get("SELF_SECRET", ""),
		Endpoints:   env.List("PUSH_API", ";"),
		Format:      strings.ToLower(env.Get("PUSH_FORMAT", FormatForm)),
	}
	if !sandbox {
		p.require(env, "SELF_SECRET", "PUSH_API")
	}
	for _, ep := range n.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(fmt.Errorf("config: PUSH_API: every endpoint must be an http(s) URL; %q is not", RedactURL(ep)))
		}
	}
	if n.Format != FormatForm && n.Format != FormatJSON {
		p.add(errors.New("config: PUSH_FORMAT must be form or json"))
	}
	var err error
	n.RetrySchedule, err = env.Durations("PUSH_RETRY_SCHEDULE", DefaultPushRetrySchedule)
	p.add(err)
	if st := env.List("PUSH_STATUSES", ","); len(st) > 0 {
		n.Statuses = map[string]bool{}
		for _, s := range st {
			s = strings.ToUpper(s)
			if domain.Rank(s) == 0 {
				p.add(fmt.Errorf("config: PUSH_STATUSES: %q is not a Youzan trade status yzpay tracks", s))
			}
			n.Statuses[s] = true
		}
	}
	return n
}

// LoadNotifier loads the split notifier's configuration.
func LoadNotifier(env Env) (Notifier, error) {
	var p problems
	n := loadNotifier(env, &p, false)
	n.Broker, n.DatabaseURL, n.StartupTimeout = loadSplit(env, &p)
	return n, p.err()
}

// LoadServe loads `yzpay serve`'s configuration: the three services' from
// one reading of env. In sandbox mode the Youzan credentials are left for
// the sandbox to make up, and an unset SELF_SECRET is made up for this run,
// since only the demo merchant needs to know it.
func LoadServe(env Env, sandbox bool, randomSecret func() string) (Serve, error) {
	var p problems
	s := Serve{Log: loadLogging(env, &p), DataDir: env.Get("DATA_DIR", DefaultDataDir)}
	s.Sandbox = sandbox || strings.EqualFold(env.Get("YOUZAN_MODE", ""), "sandbox")
	s.Gateway = loadGateway(env, &p, s.Sandbox)
	s.Tradefetcher = loadTradefetcher(env, &p)
	s.Notifier = loadNotifier(env, &p, s.Sandbox)
	var yz Youzan
	if !s.Sandbox {
		yz = loadYouzan(env, &p, true)
	}
	b := loadBroker(env, &p)
	db := loadDatabaseURL(env, &p)
	s.StartupTimeout = loadStartupTimeout(env, &p)
	s.Gateway.StartupTimeout, s.Tradefetcher.StartupTimeout, s.Notifier.StartupTimeout = s.StartupTimeout, s.StartupTimeout, s.StartupTimeout
	s.Gateway.Youzan, s.Tradefetcher.Youzan = yz, yz
	s.Gateway.Broker, s.Tradefetcher.Broker, s.Notifier.Broker = b, b, b
	s.Gateway.DatabaseURL, s.Tradefetcher.DatabaseURL, s.Notifier.DatabaseURL = db, db, db
	if s.Sandbox && s.Notifier.Secret == "" {
		s.Notifier.Secret, s.SandboxSecret = randomSecret(), true
	}
	s.DemoMerchant = s.Sandbox && len(s.Notifier.Endpoints) == 0
	return s, p.err()
}

// BindURL fills in what depends on the address the gateway listener got
// (base is its URL): in sandbox mode the sandbox answers Youzan's API on the
// gateway's own port, and the demo merchant is served there too.
func (s *Serve) BindURL(base string, sandboxYouzan Youzan) {
	if !s.Sandbox {
		return
	}
	sandboxYouzan.BaseURL = base
	s.Gateway.Youzan, s.Tradefetcher.Youzan = sandboxYouzan, sandboxYouzan
	if s.DemoMerchant {
		s.Notifier.Endpoints = []string{base + "/demo-merchant"}
	}
}

// secret shows whether a secret is set, never its value.
func secret(v string) string {
	if v == "" {
		return "(unset)"
	}
	return "(set)"
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return RedactURL(v)
}

func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

func (y Youzan) banner(w io.Writer) {
	fmt.Fprintf(w, "  youzan        %s (client %s, secret %s, shop %s)\n", y.BaseURL, y.ClientID, secret(y.ClientSecret), y.KdtID)
}

func (b Broker) banner(w io.Writer, db string) {
	nats := "embedded"
	if b.NATSURL != "" {
		nats = RedactURL(b.NATSURL)
	}
	fmt.Fprintf(w, "  nats          %s (replicas %d)\n", nats, b.Replicas)
	fmt.Fprintf(w, "  database      %s\n", orNone(db))
}

// Banner prints the settings, secrets shown only as set or unset.
func (g Gateway) Banner(w io.Writer) {
	fmt.Fprintf(w, "  addr          %s\n", g.Addr)
	fmt.Fprintf(w, "  api key       %s   admin key %s\n", secret(g.APIKey), secret(g.AdminKey))
	g.Youzan.banner(w)
	g.Broker.banner(w, g.DatabaseURL)
}

// Banner prints the settings, secrets shown only as set or unset.
func (t Tradefetcher) Banner(w io.Writer) {
	fmt.Fprintf(w, "  metrics       %s\n", t.MetricsAddr)
	fmt.Fprintf(w, "  fetch retries %s\n", durations(t.RetrySchedule))
	fmt.Fprintf(w, "  order ttl     %s   reconcile every %s\n", t.Sweep.OrderTTL, t.Sweep.Interval)
	t.Youzan.banner(w)
	t.Broker.banner(w, t.DatabaseURL)
}

// Banner prints the settings, secrets shown only as set or unset.
func (n Notifier) Banner(w io.Writer) {
	fmt.Fprintf(w, "  metrics       %s\n", n.MetricsAddr)
	n.endpoints(w)
	n.Broker.banner(w, n.DatabaseURL)
}

func (n Notifier) endpoints(w io.Writer) {
	eps := make([]string, len(n.Endpoints))
	for i, e := range n.Endpoints {
		eps[i] = RedactURL(e)
	}
	fmt.Fprintf(w, "  merchant      %s (%s, secret %s)\n", strings.Join(eps, " "), n.Format, secret(n.Secret))
	fmt.Fprintf(w, "  push retries  %s\n", durations(n.RetrySchedule))
	if len(n.Statuses) > 0 {
		var st []string
		for s := range n.Statuses {
			st = append(st, s)
		}
		slices.SortFunc(st, func(a, b string) int { return domain.Rank(a) - domain.Rank(b) })
		fmt.Fprintf(w, "  push statuses %s\n", strings.Join(st, ","))
	}
}

// ErrInvalid marks a setting that is present but wrong (errors.Is), as
// opposed to Missing.
var ErrInvalid = errors.New("invalid configuration")

type invalid struct{ error }

func (invalid) Is(target error) bool { return target == ErrInvalid }
func (e invalid) Unwrap() error      { return e.error }

// Tool is what the operator commands (migrate, deliveries, sandbox) read:
// the store and broker `yzpay serve` would use, and any Youzan credentials
// the sandbox should take over.
type Tool struct {
	Log         Logging
	DatabaseURL string // DATABASE_URL; "" means SQLite under DataDir
	DataDir     string
	Broker      Broker
	Youzan      Youzan // optional; the sandbox makes up what is unset
	// StartupTimeout bounds the wait for Postgres and NATS.
	StartupTimeout time.Duration // STARTUP_TIMEOUT
}

// LoadTool loads a Tool; nothing in it is required (each command says what
// it lacks).
func LoadTool(env Env) (Tool, error) {
	var p problems
	t := Tool{
		Log:         loadLogging(env, &p),
		DatabaseURL: env.Get("DATABASE_URL", ""),
		DataDir:     env.Get("DATA_DIR", DefaultDataDir),
		Broker:      loadBroker(env, &p),
		Youzan:      loadYouzan(env, &p, false),
	}
	var err error
	t.StartupTimeout, err = StartupTimeout(env)
	p.add(err)
	return t, p.err()
}
