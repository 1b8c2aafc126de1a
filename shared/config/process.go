package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/loopback"
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
	DefaultSandboxGatewayAddr      = "127.0.0.1:8080"
	DefaultOpsAddr                 = "127.0.0.1:9100"
	DefaultTradefetcherMetricsAddr = ":9101"
	DefaultNotifierMetricsAddr     = ":9102"
	DefaultYouzanBase              = "https://open.youzanyun.com"
	DefaultOrderTTL                = 30 * time.Minute
	// DefaultAdminSessionTTL is how long an operator console login lasts.
	DefaultAdminSessionTTL       = 8 * time.Hour
	DefaultReconcileInterval     = time.Minute
	DefaultReconcileLateWindow   = 48 * time.Hour
	DefaultReconcileLateInterval = 10 * time.Minute
	DefaultDataDir               = "./data"
	DefaultStartupTimeout        = 30 * time.Second
	DefaultFetchGiveUpAfter      = 24 * time.Hour
	DefaultAttemptLogRetention   = 30 * 24 * time.Hour

	// OpsSame as OPS_ADDR serves /metrics, /healthz and /readyz on the
	// gateway's own listener, as before OPS_ADDR existed.
	OpsSame = "same"

	// SandboxSecretFile, under DATA_DIR, keeps the secret sandbox
	// notifications are signed with when SANDBOX_SECRET is unset.
	SandboxSecretFile = "sandbox-secret"

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
	// NATSURL may carry user:password (nats://user:pw@host:4222); it is
	// shown only through RedactURL.
	NATSURL  string // NATS_URL; "" in `yzpay serve` means embedded
	Creds    string // NATS_CREDS: a .creds file (JWT and nkey seed)
	Replicas int    // NATS_REPLICAS
}

// Gateway is the gateway process's configuration.
type Gateway struct {
	Log  Logging
	Addr string // GATEWAY_ADDR
	// OpsAddr is the listener of /metrics, /healthz and /readyz, kept off
	// the public port. OpsSame, or "" (a struct built by hand in a test),
	// serves them on Addr instead.
	OpsAddr     string // OPS_ADDR
	DatabaseURL string // DATABASE_URL
	Broker      Broker
	Youzan      Youzan
	// APIKey guards /api/payment/*; "" leaves it open (sandbox mode only;
	// the caller decides and logs the warning).
	APIKey string // GATEWAY_API_KEY
	// AdminKey guards /api/admin/*; "" switches the admin API off.
	AdminKey string // ADMIN_API_KEY
	// AdminSessionTTL is how long an operator console login lasts.
	AdminSessionTTL time.Duration // ADMIN_SESSION_TTL

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

	// Checkout page (/pay/<token>).
	// Sandbox shows the page's "simulate payment" buttons (yzpay serve
	// --sandbox, where the sandbox shares the gateway's listener).
	Sandbox bool
	// PublicURL is the gateway's address as buyers reach it, without a
	// trailing slash; "" makes checkout_url a relative path.
	PublicURL string // PUBLIC_URL
	// ReturnURLHosts are the hosts a create request's return_url may name;
	// empty refuses every return_url.
	ReturnURLHosts []string // RETURN_URL_HOSTS
	// NotifyURLHosts are the hosts a create request's notify_url may name;
	// empty refuses every notify_url.
	NotifyURLHosts []string // NOTIFY_URL_HOSTS
	// ReturnSecret signs the query the page sends the buyer to return_url
	// with, as the notifier signs notifications.
	ReturnSecret string // SELF_SECRET
	// OrderTTL is when the page's countdown ends (the tradefetcher closes
	// the order then).
	OrderTTL time.Duration // ORDER_TTL
}

// Sweep tunes reconciliation and expiry.
type Sweep struct {
	// Interval between sweeps, and the age an unpaid order must reach
	// before Youzan is asked about it (its push gets one interval to come).
	Interval time.Duration // RECONCILE_INTERVAL
	// OrderTTL: an order still unpaid this long after creation is closed.
	OrderTTL time.Duration // ORDER_TTL
	// LateWindow: how long after ORDER_TTL a closed, unpaid order is still
	// reconciled, because its QR can still be paid (RECONCILE_LATE_WINDOW).
	LateWindow time.Duration
	// LateInterval between those late reconciliations (RECONCILE_LATE_INTERVAL).
	LateInterval time.Duration
	Batch        int // orders per sweep and kind; default 200
	// LeaseTTL: the sweeps run on one tradefetcher replica at a time, the
	// holder of a lease in JetStream; a dead holder's lease passes to
	// another replica this long after its last renewal. 0 = 15s.
	LeaseTTL time.Duration
	// AttemptLogRetention: delivery attempts older than this are deleted
	// from the attempt log by the lease holder (ATTEMPT_LOG_RETENTION).
	AttemptLogRetention time.Duration
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
	// GiveUpAfter: a receipt whose trade Youzan keeps answering "not
	// found" is retried (parked in the store, off the consumer) this long
	// after it was first seen, then kept as dead (FETCH_GIVE_UP_AFTER).
	GiveUpAfter time.Duration
	Sweep       Sweep

	// ParkPoll: how often parked receipts are checked for being due;
	// 0 = the first FETCH_RETRY_SCHEDULE step, between 50ms and 1s.
	ParkPoll time.Duration

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
	// EndpointsFile, when set, lists the endpoints instead of PUSH_API
	// (re-read on SIGHUP by the notifier); EndpointSet is what it said at
	// start. PUSH_FORMAT, SELF_SECRET and PUSH_RETRY_SCHEDULE are then the
	// defaults of the fields an endpoint leaves out.
	EndpointsFile string     // PUSH_ENDPOINTS_FILE
	EndpointSet   []Endpoint // nil: LegacyEndpoints

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
	// Sandbox marks every notification with X-Yzpay-Sandbox: 1, so that a
	// merchant can refuse payments nobody made (`yzpay serve --sandbox`).
	Sandbox bool

	// Endpoint health (services/notifier/health.go): an endpoint that
	// failed every attempt for PauseAfter is paused; its deliveries are
	// parked in the store and the oldest is tried every ProbeInterval;
	// once one gets through, the parked ones are sent again at DrainRate
	// per second (per endpoint and replica).
	PauseAfter    time.Duration // ENDPOINT_PAUSE_AFTER, default 1h
	ProbeInterval time.Duration // ENDPOINT_PROBE_INTERVAL, default 2m
	DrainRate     int           // ENDPOINT_DRAIN_RATE, default 20

	// NotifyURLHosts: the hosts an order's own notify_url may name, checked
	// again at delivery (the list may have shrunk since the order).
	NotifyURLHosts []string // NOTIFY_URL_HOSTS
	// NotifyURLPrivateHosts: hosts of NotifyURLHosts whose notify_url may
	// reach private, loopback or link-local addresses; any other per-order
	// URL is refused when its host resolves to one (SSRF).
	NotifyURLPrivateHosts []string // NOTIFY_URL_PRIVATE_HOSTS
}

// Endpoint health defaults.
const (
	DefaultEndpointPauseAfter    = time.Hour
	DefaultEndpointProbeInterval = 2 * time.Minute
	DefaultEndpointDrainRate     = 20
)

// Serve is `yzpay serve`: the three services in one process, on an embedded
// broker and SQLite store unless NATS_URL and DATABASE_URL name real ones.
type Serve struct {
	Log     Logging
	Sandbox bool   // --sandbox or YOUZAN_MODE=sandbox
	DataDir string // DATA_DIR
	// SandboxSecret: in sandbox mode Notifier.Secret is not SELF_SECRET;
	// SecretSource says where it comes from. When it is still "" after
	// LoadServe, the caller takes it from DATA_DIR/SandboxSecretFile
	// (making one up the first time).
	SandboxSecret bool
	SecretSource  string
	// SandboxIgnored names the production settings that were set but are
	// not used in sandbox mode (DATABASE_URL, NATS_URL, SELF_SECRET), for a
	// warning at start.
	SandboxIgnored []string
	// SandboxExposed: GATEWAY_ADDR was set to an address beyond loopback in
	// sandbox mode, so others can pay sandbox QR codes (warned at start).
	SandboxExposed bool
	ignoredDB      string
	ignoredBroker  Broker
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
	b := Broker{NATSURL: env.Get("NATS_URL", ""), Creds: env.Get("NATS_CREDS", "")}
	if b.Creds != "" {
		if fi, err := os.Stat(b.Creds); err != nil || fi.IsDir() {
			p.add(fmt.Errorf("config: NATS_CREDS: %s is not a readable credentials file", b.Creds))
		}
	}
	n, err := env.Int("NATS_REPLICAS", 1)
	p.add(err)
	if err == nil && (n < 1 || n > 5) {
		p.add(errors.New("config: NATS_REPLICAS must be from 1 to 5"))
	}
	b.Replicas = n
	return b
}

func loadGateway(env Env, p *problems, sandbox bool) Gateway {
	addr := DefaultGatewayAddr
	if sandbox {
		addr = DefaultSandboxGatewayAddr
	}
	g := Gateway{
		Log:      loadLogging(env, p),
		Addr:     env.Get("GATEWAY_ADDR", addr),
		APIKey:   env.Get("GATEWAY_API_KEY", ""),
		AdminKey: env.Get("ADMIN_API_KEY", ""),

		Sandbox:        sandbox,
		PublicURL:      strings.TrimRight(env.Get("PUBLIC_URL", ""), "/"),
		ReturnURLHosts: env.List("RETURN_URL_HOSTS", ","),
		ReturnSecret:   env.Get("SELF_SECRET", ""),
	}
	g.NotifyURLHosts, _ = loadNotifyURLHosts(env, p)
	if !sandbox {
		p.require(env, "GATEWAY_API_KEY")
	}
	if d, err := env.Duration("ADMIN_SESSION_TTL", DefaultAdminSessionTTL); err != nil || d < time.Minute {
		p.add(errors.New("config: ADMIN_SESSION_TTL must be a Go duration of at least 1m, e.g. 8h"))
	} else {
		g.AdminSessionTTL = d
	}
	if g.PublicURL != "" {
		u, err := url.Parse(g.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			p.add(errors.New("config: PUBLIC_URL must be an http(s) URL without query, e.g. https://pay.example.com"))
		}
	}
	for i, h := range g.ReturnURLHosts {
		g.ReturnURLHosts[i] = strings.ToLower(h)
		if strings.ContainsAny(h, "/:@?# ") {
			p.add(fmt.Errorf("config: RETURN_URL_HOSTS: %q is not a host name (no scheme, port or path)", h))
		}
	}
	// ORDER_TTL's own errors are the tradefetcher's to report in yzpay
	// serve; LoadGateway reports them for the split gateway.
	if d, err := env.Duration("ORDER_TTL", DefaultOrderTTL); err == nil && d > 0 {
		g.OrderTTL = d
	} else {
		g.OrderTTL = DefaultOrderTTL
	}
	return g
}

// loadOpsAddr reads OPS_ADDR; def is the default. The gateway's own address
// means OpsSame (but two ":0" are two listeners on random ports).
func loadOpsAddr(env Env, p *problems, gatewayAddr, def string) string {
	a := strings.TrimSpace(env.Get("OPS_ADDR", def))
	if strings.EqualFold(a, OpsSame) || (a == gatewayAddr && !strings.HasSuffix(a, ":0")) {
		return OpsSame
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		p.add(fmt.Errorf("config: OPS_ADDR must be host:port or %q; %q is not", OpsSame, a))
	}
	return a
}

// LoadGateway loads the split gateway's configuration.
func LoadGateway(env Env) (Gateway, error) {
	var p problems
	g := loadGateway(env, &p, false)
	g.OpsAddr = loadOpsAddr(env, &p, g.Addr, DefaultOpsAddr)
	if d, err := env.Duration("ORDER_TTL", DefaultOrderTTL); err != nil || d <= 0 {
		p.add(errors.New("config: ORDER_TTL must be a positive duration"))
	}
	if len(g.ReturnURLHosts) > 0 {
		// The return_url's query is signed with the notifications' secret.
		p.require(env, "SELF_SECRET")
	}
	g.Youzan = loadYouzan(env, &p, true)
	g.Broker, g.DatabaseURL, g.StartupTimeout = loadSplit(env, &p)
	return g, p.err()
}

func loadTradefetcher(env Env, p *problems) Tradefetcher {
	t := Tradefetcher{Log: loadLogging(env, p), MetricsAddr: env.Get("METRICS_ADDR", DefaultTradefetcherMetricsAddr)}
	var err error
	t.RetrySchedule, err = env.Durations("FETCH_RETRY_SCHEDULE", DefaultFetchRetrySchedule)
	p.add(err)
	t.GiveUpAfter, err = env.Duration("FETCH_GIVE_UP_AFTER", DefaultFetchGiveUpAfter)
	p.add(err)
	if err == nil && t.GiveUpAfter <= 0 {
		p.add(errors.New("config: FETCH_GIVE_UP_AFTER must be a positive duration"))
	}
	t.Sweep.OrderTTL, err = env.Duration("ORDER_TTL", DefaultOrderTTL)
	p.add(err)
	t.Sweep.Interval, err = env.Duration("RECONCILE_INTERVAL", DefaultReconcileInterval)
	p.add(err)
	if t.Sweep.OrderTTL == 0 || t.Sweep.Interval == 0 {
		p.add(errors.New("config: ORDER_TTL and RECONCILE_INTERVAL must be positive durations"))
	}
	t.Sweep.LateWindow, err = env.Duration("RECONCILE_LATE_WINDOW", DefaultReconcileLateWindow)
	p.add(err)
	t.Sweep.LateInterval, err = env.Duration("RECONCILE_LATE_INTERVAL", DefaultReconcileLateInterval)
	p.add(err)
	if t.Sweep.LateInterval == 0 {
		p.add(errors.New("config: RECONCILE_LATE_INTERVAL must be a positive duration"))
	}
	t.Sweep.AttemptLogRetention, err = env.Duration("ATTEMPT_LOG_RETENTION", DefaultAttemptLogRetention)
	p.add(err)
	if t.Sweep.AttemptLogRetention == 0 {
		p.add(errors.New("config: ATTEMPT_LOG_RETENTION must be a positive duration"))
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
	n.EndpointsFile = env.Get("PUSH_ENDPOINTS_FILE", "")
	n.NotifyURLHosts, n.NotifyURLPrivateHosts = loadNotifyURLHosts(env, p)
	if len(n.NotifyURLHosts) > 0 && !sandbox {
		// A per-order notify_url is signed like PUSH_API, with SELF_SECRET,
		// even when an endpoints file gives its endpoints their own.
		p.require(env, "SELF_SECRET")
	}
	if sandbox {
		// An endpoints file names production merchants and their secrets;
		// sandbox mode pushes only to PUSH_API (a developer's own merchant)
		// or its demo merchant. LoadServe lists it as ignored.
		n.EndpointsFile = ""
	}
	if !sandbox && n.EndpointsFile == "" {
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
	n.PauseAfter, err = env.Duration("ENDPOINT_PAUSE_AFTER", DefaultEndpointPauseAfter)
	p.add(err)
	n.ProbeInterval, err = env.Duration("ENDPOINT_PROBE_INTERVAL", DefaultEndpointProbeInterval)
	p.add(err)
	n.DrainRate, err = env.Int("ENDPOINT_DRAIN_RATE", DefaultEndpointDrainRate)
	p.add(err)
	if n.PauseAfter <= 0 || n.ProbeInterval <= 0 || n.DrainRate <= 0 {
		p.add(errors.New("config: ENDPOINT_PAUSE_AFTER, ENDPOINT_PROBE_INTERVAL and ENDPOINT_DRAIN_RATE must be positive"))
	}
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
	if n.EndpointsFile != "" {
		if len(n.Endpoints) > 0 {
			p.add(errors.New("config: set PUSH_API or PUSH_ENDPOINTS_FILE, not both"))
		} else if len(p.invalid) == 0 {
			n.EndpointSet, err = n.LoadEndpoints()
			p.add(err)
		}
	}
	return n
}

// loadNotifyURLHosts reads NOTIFY_URL_HOSTS and NOTIFY_URL_PRIVATE_HOSTS
// (lower-cased host names or IP literals; every private host must also be
// a notify host, so that listing it is a deliberate, explicit choice).
func loadNotifyURLHosts(env Env, p *problems) (hosts, private []string) {
	hosts, private = env.List("NOTIFY_URL_HOSTS", ","), env.List("NOTIFY_URL_PRIVATE_HOSTS", ",")
	for _, l := range []struct {
		name string
		list []string
	}{{"NOTIFY_URL_HOSTS", hosts}, {"NOTIFY_URL_PRIVATE_HOSTS", private}} {
		for i, h := range l.list {
			l.list[i] = strings.ToLower(h)
			if strings.ContainsAny(h, "/:@?#* ") && net.ParseIP(h) == nil {
				p.add(fmt.Errorf("config: %s: %q is not a host name (no scheme, port, path or wildcard)", l.name, h))
			}
		}
	}
	for _, h := range private {
		if !slices.Contains(hosts, h) {
			p.add(fmt.Errorf("config: NOTIFY_URL_PRIVATE_HOSTS: %q is not in NOTIFY_URL_HOSTS", h))
		}
	}
	return hosts, private
}

// LoadNotifier loads the split notifier's configuration.
func LoadNotifier(env Env) (Notifier, error) {
	var p problems
	n := loadNotifier(env, &p, false)
	n.Broker, n.DatabaseURL, n.StartupTimeout = loadSplit(env, &p)
	return n, p.err()
}

// LoadServe loads `yzpay serve`'s configuration: the three services' from
// one reading of env.
//
// Sandbox mode must never touch production, whatever envrc it finds: it
// refuses to start while production Youzan credentials are set, it listens
// on loopback unless GATEWAY_ADDR says otherwise, it ignores DATABASE_URL
// and NATS_URL (embedded broker and SQLite under DATA_DIR), and it signs
// notifications with SANDBOX_SECRET (or a secret kept in DATA_DIR), never
// with SELF_SECRET unless SANDBOX_USE_SELF_SECRET=1 says so.
func LoadServe(env Env, sandbox bool) (Serve, error) {
	var p problems
	s := Serve{Log: loadLogging(env, &p), DataDir: env.Get("DATA_DIR", DefaultDataDir)}
	s.Sandbox = sandbox || strings.EqualFold(env.Get("YOUZAN_MODE", ""), "sandbox")
	if s.Sandbox {
		// Checked first and alone: with production credentials present the
		// rest of the environment is production's too.
		if env.Get("YOUZANYUN_CLIENT_SECRET", "") != "" {
			var set []string
			for _, n := range []string{"YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID"} {
				if env.Get(n, "") != "" {
					set = append(set, n)
				}
			}
			return s, invalid{fmt.Errorf("config: sandbox mode refuses to start while production Youzan credentials are set: "+
				"%s (unset them for sandbox mode)", strings.Join(set, ", "))}
		}
	}
	s.Gateway = loadGateway(env, &p, s.Sandbox)
	s.Tradefetcher = loadTradefetcher(env, &p)
	s.Notifier = loadNotifier(env, &p, s.Sandbox)
	opsDef := DefaultOpsAddr
	if s.Sandbox {
		// Sandbox mode listens on loopback (unless told otherwise), so its
		// ops routes stay on its one port, as `make run` always showed them.
		opsDef = OpsSame
	}
	s.Gateway.OpsAddr = loadOpsAddr(env, &p, s.Gateway.Addr, opsDef)
	var yz Youzan
	if !s.Sandbox {
		yz = loadYouzan(env, &p, true)
	}
	b := loadBroker(env, &p)
	db := loadDatabaseURL(env, &p)
	s.StartupTimeout = loadStartupTimeout(env, &p)
	if s.Sandbox {
		s.ignoredDB, s.ignoredBroker = db, b
		for _, n := range []string{"DATABASE_URL", "NATS_URL", "NATS_CREDS", "PUSH_ENDPOINTS_FILE"} {
			if env.Get(n, "") != "" {
				s.SandboxIgnored = append(s.SandboxIgnored, n)
			}
		}
		db, b = "", Broker{Replicas: 1}
		if a, set := env.Lookup("GATEWAY_ADDR"); set && strings.TrimSpace(a) != "" {
			s.SandboxExposed = !loopbackOnly(s.Gateway.Addr)
		}
		s.loadSandboxSecret(env, &p)
		s.Notifier.Sandbox = true
	}
	s.Gateway.StartupTimeout, s.Tradefetcher.StartupTimeout, s.Notifier.StartupTimeout = s.StartupTimeout, s.StartupTimeout, s.StartupTimeout
	s.Gateway.Youzan, s.Tradefetcher.Youzan = yz, yz
	s.Gateway.Broker, s.Tradefetcher.Broker, s.Notifier.Broker = b, b, b
	s.Gateway.DatabaseURL, s.Tradefetcher.DatabaseURL, s.Notifier.DatabaseURL = db, db, db
	// In sandbox mode the secret may still be "": the app takes it from
	// DATA_DIR and sets both (App.start).
	s.Gateway.ReturnSecret, s.Gateway.OrderTTL = s.Notifier.Secret, s.Tradefetcher.Sweep.OrderTTL
	s.DemoMerchant = s.Sandbox && len(s.Notifier.Endpoints) == 0
	return s, p.err()
}

// loadSandboxSecret picks the secret sandbox notifications are signed
// with: SANDBOX_SECRET; else SELF_SECRET only with SANDBOX_USE_SELF_SECRET
// (the behaviour before sandbox isolation, for test rigs that verify with
// SELF_SECRET); else "" for the caller to take from DATA_DIR.
func (s *Serve) loadSandboxSecret(env Env, p *problems) {
	self := s.Notifier.Secret
	s.Notifier.Secret, s.SandboxSecret = "", true
	reuse, err := env.Bool("SANDBOX_USE_SELF_SECRET")
	p.add(err)
	switch {
	case reuse:
		if self == "" {
			p.add(errors.New("config: SANDBOX_USE_SELF_SECRET is set but SELF_SECRET is not"))
		}
		s.Notifier.Secret, s.SandboxSecret, s.SecretSource = self, false, "SELF_SECRET (SANDBOX_USE_SELF_SECRET)"
	case env.Get("SANDBOX_SECRET", "") != "":
		s.Notifier.Secret, s.SecretSource = env.Get("SANDBOX_SECRET", ""), "SANDBOX_SECRET"
	default:
		s.SecretSource = filepath.Join(s.DataDir, SandboxSecretFile)
	}
	if self != "" && !reuse {
		s.SandboxIgnored = append(s.SandboxIgnored, "SELF_SECRET")
	}
}

// AllowSandboxBackends puts back the DATABASE_URL and NATS_URL that sandbox
// mode ignored. Only Go test harnesses call it (to run the sandbox on
// Postgres and a NATS server); no flag or variable reaches it.
func (s *Serve) AllowSandboxBackends() {
	if !s.Sandbox {
		return
	}
	s.Gateway.Broker, s.Tradefetcher.Broker, s.Notifier.Broker = s.ignoredBroker, s.ignoredBroker, s.ignoredBroker
	s.Gateway.DatabaseURL, s.Tradefetcher.DatabaseURL, s.Notifier.DatabaseURL = s.ignoredDB, s.ignoredDB, s.ignoredDB
	s.SandboxIgnored = slices.DeleteFunc(s.SandboxIgnored, func(n string) bool {
		return n == "DATABASE_URL" || n == "NATS_URL" || n == "NATS_CREDS"
	})
}

// loopbackOnly reports whether addr (host:port) listens on loopback only.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopback.Host(host)
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
	auth := "no credentials"
	switch {
	case b.Creds != "":
		auth = "credentials file " + b.Creds
	case urlHasUser(b.NATSURL):
		auth = "user and password (set)"
	}
	fmt.Fprintf(w, "  nats          %s (replicas %d, %s)\n", nats, b.Replicas, auth)
	fmt.Fprintf(w, "  database      %s\n", orNone(db))
}

// Banner prints the settings, secrets shown only as set or unset.
func (g Gateway) Banner(w io.Writer) {
	fmt.Fprintf(w, "  addr          %s   ops %s\n", g.Addr, g.OpsAddr)
	fmt.Fprintf(w, "  api key       %s   admin key %s   console session %s\n", secret(g.APIKey), secret(g.AdminKey), g.AdminSessionTTL)
	fmt.Fprintf(w, "  checkout      %s/pay/<token>   return url hosts %s   order ttl %s\n",
		orNone(g.PublicURL), orNone(strings.Join(g.ReturnURLHosts, ",")), g.OrderTTL)
	fmt.Fprintf(w, "  notify url    hosts %s\n", orNone(strings.Join(g.NotifyURLHosts, ",")))
	g.Youzan.banner(w)
	g.Broker.banner(w, g.DatabaseURL)
}

// Banner prints the settings, secrets shown only as set or unset.
func (t Tradefetcher) Banner(w io.Writer) {
	fmt.Fprintf(w, "  metrics       %s\n", t.MetricsAddr)
	fmt.Fprintf(w, "  fetch retries %s   give up unknown trades after %s\n", durations(t.RetrySchedule), t.GiveUpAfter)
	fmt.Fprintf(w, "  order ttl     %s   reconcile every %s\n", t.Sweep.OrderTTL, t.Sweep.Interval)
	fmt.Fprintf(w, "  late payments closed orders reconciled every %s for %s\n", t.Sweep.LateInterval, t.Sweep.LateWindow)
	fmt.Fprintf(w, "  attempt log   kept %s\n", t.Sweep.AttemptLogRetention)
	t.Youzan.banner(w)
	t.Broker.banner(w, t.DatabaseURL)
}

// Banner prints the settings, secrets shown only as set or unset.
func (n Notifier) Banner(w io.Writer) {
	fmt.Fprintf(w, "  metrics       %s\n", n.MetricsAddr)
	n.endpoints(w)
	n.healthBanner(w)
	fmt.Fprintf(w, "  notify url    hosts %s   private allowed %s\n",
		orNone(strings.Join(n.NotifyURLHosts, ",")), orNone(strings.Join(n.NotifyURLPrivateHosts, ",")))
	n.Broker.banner(w, n.DatabaseURL)
}

func (n Notifier) healthBanner(w io.Writer) {
	fmt.Fprintf(w, "  endpoint health pause after %s failing, probe every %s, drain %d/s\n", n.PauseAfter, n.ProbeInterval, n.DrainRate)
}

func (n Notifier) endpoints(w io.Writer) {
	if n.EndpointsFile != "" {
		fmt.Fprintf(w, "  merchant      %d endpoints from %s (PUSH_ENDPOINTS_FILE; SIGHUP re-reads it)\n", len(n.EndpointSet), n.EndpointsFile)
		for _, ep := range n.EndpointSet {
			fmt.Fprintf(w, "    %s (%s, %s, %s)\n", RedactURL(ep.URL), ep.Format, ep.Signing, ep.describe())
		}
		if len(n.Statuses) > 0 {
			fmt.Fprintf(w, "  push statuses %s (PUSH_STATUSES, before each endpoint's own)\n", statusList(n.Statuses))
		}
		return
	}
	eps := make([]string, len(n.Endpoints))
	for i, e := range n.Endpoints {
		eps[i] = RedactURL(e)
	}
	fmt.Fprintf(w, "  merchant      %s (%s, secret %s)\n", strings.Join(eps, " "), n.Format, secret(n.Secret))
	fmt.Fprintf(w, "  push retries  %s\n", durations(n.RetrySchedule))
	if len(n.Statuses) > 0 {
		fmt.Fprintf(w, "  push statuses %s\n", statusList(n.Statuses))
	}
}

func statusList(m map[string]bool) string {
	var st []string
	for s := range m {
		st = append(st, s)
	}
	slices.SortFunc(st, func(a, b string) int { return domain.Rank(a) - domain.Rank(b) })
	return strings.Join(st, ",")
}

// describe is an endpoint's secrets (as set or a count, never a value),
// statuses and retries, for the banner.
func (ep Endpoint) describe() string {
	var parts []string
	if ep.Signing != SigningStandard {
		parts = append(parts, "md5 secret "+secret(ep.MD5Secret))
	}
	if len(ep.Secrets) > 0 {
		parts = append(parts, fmt.Sprintf("%d whsec_ secrets", len(ep.Secrets)))
	}
	st := "all statuses"
	if ep.Statuses != nil {
		st = "statuses " + statusList(ep.Statuses)
	}
	return strings.Join(append(parts, st, "retries "+durations(ep.RetrySchedule)), ", ")
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

// urlHasUser reports whether a NATS URL (list) carries user info.
func urlHasUser(s string) bool {
	for _, p := range strings.Split(s, ",") {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			return true
		}
	}
	return false
}
