// Package app assembles yzpay in one process — gateway, tradefetcher and
// notifier on one store, one JetStream and one metrics registry — with the
// embedded defaults of `yzpay serve`: a JetStream server under DATA_DIR/nats
// when NATS_URL is unset, SQLite at DATA_DIR/yzpay.db when DATABASE_URL is
// unset, and, in sandbox mode, the Youzan sandbox and a demo merchant on the
// gateway's own listener.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/services/notifier"
	"github.com/yzpay/yzpay/services/tradefetcher"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/lag"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/natsjs/embedded"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/store/postgres"
	"github.com/yzpay/yzpay/shared/store/sqlite"
	"github.com/yzpay/yzpay/shared/youzan"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
	"golang.org/x/sync/errgroup"
)

// Options select what runs.
type Options struct {
	Env     config.Env
	Sandbox bool // also set by YOUZAN_MODE=sandbox
	Logger  *slog.Logger
	// Sandbox tuning for tests; ignored outside sandbox mode.
	SandboxConfig sandbox.Config
	// SandboxExternalBackends lets a Go test harness run sandbox mode on
	// the DATABASE_URL and NATS_URL it names, which sandbox mode otherwise
	// ignores. The CLI never sets it.
	SandboxExternalBackends bool
}

// App is a running yzpay.
type App struct {
	URL string // the gateway's base URL
	// OpsURL is the base URL of /metrics, /healthz and /readyz: URL itself
	// with OPS_ADDR=same (sandbox mode's default).
	OpsURL     string
	Sandbox    *sandbox.Sandbox
	Store      store.Store
	JS         jetstream.JetStream
	Metrics    *metrics.Metrics
	Banner     string
	MerchantCh chan DemoPush // pushes the demo merchant accepted (sandbox without PUSH_API)

	log     *slog.Logger
	nc      *nats.Conn
	embed   *embedded.Server
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	closers []func()
	once    sync.Once
}

// Start wires and starts everything; it returns once the gateway listens.
// The configuration is loaded once (config.LoadServe); missing settings
// fail with the names of every missing variable.
func Start(ctx context.Context, o Options) (*App, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg, err := config.LoadServe(o.Env, o.Sandbox)
	if err != nil {
		return nil, err
	}
	if o.SandboxExternalBackends {
		cfg.AllowSandboxBackends()
	}
	a := &App{log: log, Metrics: metrics.New(), done: make(chan struct{})}
	if err := a.start(ctx, cfg, o.SandboxConfig); err != nil {
		a.closeAll()
		return nil, err
	}
	return a, nil
}

func (a *App) start(ctx context.Context, cfg config.Serve, sc sandbox.Config) error {
	log := a.log
	if cfg.Gateway.DatabaseURL == "" || cfg.Gateway.Broker.NATSURL == "" || cfg.Sandbox {
		if err := writableDir(cfg.DataDir); err != nil {
			return err
		}
	}
	if cfg.Sandbox {
		if cfg.Notifier.Secret == "" {
			sec, err := sandboxSecret(cfg.SecretSource)
			if err != nil {
				return err
			}
			cfg.Notifier.Secret = sec
			cfg.Gateway.ReturnSecret = sec
		}
		if len(cfg.SandboxIgnored) > 0 {
			log.Warn("sandbox mode ignores " + strings.Join(cfg.SandboxIgnored, ", ") +
				": it keeps its own JetStream and SQLite under DATA_DIR and signs notifications with " + cfg.SecretSource)
		}
	}
	st, storeDesc, err := openStore(ctx, cfg.Gateway.DatabaseURL, filepath.Join(cfg.DataDir, "yzpay.db"), cfg.StartupTimeout)
	if err != nil {
		return err
	}
	a.Store = st
	a.closers = append(a.closers, func() { st.Close() })

	brokerDesc, err := a.connectNATS(ctx, cfg.Gateway.Broker, filepath.Join(cfg.DataDir, "nats"), cfg.StartupTimeout)
	if err != nil {
		return err
	}

	ln, err := httpapi.Listen(cfg.Gateway.Addr)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, func() { ln.Close() })
	a.URL = "http://" + loopbackAddr(ln.Addr())
	a.OpsURL = a.URL
	if cfg.Sandbox && cfg.SandboxExposed {
		log.Warn("sandbox mode listens on " + ln.Addr().String() + " (GATEWAY_ADDR): anyone who can reach it can create orders and pay sandbox QR codes")
	}
	var opsLn net.Listener
	if cfg.Gateway.OpsAddr != config.OpsSame {
		opsLn, err = httpapi.Listen(cfg.Gateway.OpsAddr)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, func() { opsLn.Close() })
		a.OpsURL = "http://" + loopbackAddr(opsLn.Addr())
	}

	mux := http.NewServeMux()
	var sandboxAPI http.Handler
	if cfg.Sandbox {
		sc.PushURL = a.URL + "/api/status"
		sc.PublicURL = a.URL
		if sc.Logger == nil {
			sc.Logger = log.With("component", "sandbox")
		}
		sb, err := sandbox.New(sc)
		if err != nil {
			return err
		}
		a.Sandbox = sb
		a.closers = append(a.closers, func() { sb.Close() })
		c := sb.Config()
		cfg.BindURL(a.URL, config.Youzan{ClientID: c.ClientID, ClientSecret: c.ClientSecret, KdtID: c.KdtID})
		for _, p := range []string{"/auth/", "/sandbox/", "/wxpay/"} {
			mux.Handle(p, sb)
		}
		sandboxAPI = sb
		if cfg.DemoMerchant {
			a.MerchantCh = make(chan DemoPush, 1024)
			mux.Handle("/demo-merchant", demoMerchant(cfg.Notifier.Secret, log.With("component", "demo-merchant"), a.MerchantCh))
		}
		if cfg.Gateway.APIKey == "" {
			log.Warn("sandbox mode without GATEWAY_API_KEY: /api/payment/* is open to anyone who can reach " + a.URL)
		}
	}

	yz := cfg.Gateway.Youzan
	yc, err := youzan.New(youzan.Config{
		BaseURL: yz.BaseURL, ClientID: yz.ClientID, ClientSecret: yz.ClientSecret, KdtID: yz.KdtID,
		Observe: a.Metrics.ObserveYouzan, Logger: log,
	})
	if err != nil {
		return err
	}
	checks := []httpapi.Check{{Name: "nats", Fn: natsjs.Ping(a.nc, a.JS)}, {Name: "store", Fn: st.Ping}}
	gw, err := gateway.New(cfg.Gateway, gateway.Deps{
		Store: st, JS: a.JS, Youzan: yc, Metrics: a.Metrics, Logger: log.With("service", "gateway"),
		Checks: checks, Replayer: replay.Replayer{Store: st, JS: a.JS},
	})
	if err != nil {
		return err
	}
	gwh := gw.Handler()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Youzan's API paths (/api/youzan.*) share the listener with ours
		// in sandbox mode; nothing of the gateway starts with them.
		if sandboxAPI != nil && strings.HasPrefix(r.URL.Path, "/api/youzan.") {
			sandboxAPI.ServeHTTP(w, r)
			return
		}
		gwh.ServeHTTP(w, r)
	}))
	tf, err := tradefetcher.New(cfg.Tradefetcher, tradefetcher.Deps{Store: st, JS: a.JS, Youzan: yc, Metrics: a.Metrics, Logger: log})
	if err != nil {
		return err
	}
	nt, err := notifier.New(cfg.Notifier, notifier.Deps{Store: st, JS: a.JS, Metrics: a.Metrics, Logger: log})
	if err != nil {
		return err
	}
	lagPoller := lag.New(a.JS, a.Metrics, []lag.Target{lag.Tradefetcher, lag.Notifier}, lag.Options{Logger: log.With("component", "lag")})

	var b strings.Builder
	fmt.Fprintf(&b, "yzpay %s\n", Version)
	fmt.Fprintf(&b, "  API       %s/api/payment/qrcode (Youzan pushes: %s/api/status)\n", a.URL, a.URL)
	fmt.Fprintf(&b, "  metrics   %s/metrics   health %s/healthz  %s/readyz\n", a.OpsURL, a.OpsURL, a.OpsURL)
	fmt.Fprintf(&b, "  store     %s\n", storeDesc)
	fmt.Fprintf(&b, "  broker    %s\n", brokerDesc)
	eps := make([]string, len(cfg.Notifier.Endpoints))
	for i, e := range cfg.Notifier.Endpoints {
		eps[i] = config.RedactURL(e)
	}
	if cfg.Notifier.EndpointsFile != "" {
		for _, ep := range cfg.Notifier.EndpointSet {
			eps = append(eps, config.RedactURL(ep.URL)+" "+ep.Signing)
		}
		fmt.Fprintf(&b, "  merchant  %s (from %s; SIGHUP re-reads it)\n", strings.Join(eps, ","), cfg.Notifier.EndpointsFile)
	} else {
		fmt.Fprintf(&b, "  merchant  %s (%s)\n", strings.Join(eps, ","), cfg.Notifier.Format)
	}
	if cfg.Sandbox {
		fmt.Fprintf(&b, "            pushes carry X-Yzpay-Sandbox: 1, signed with %s\n", cfg.SecretSource)
	}
	fmt.Fprintf(&b, "  settings  order ttl %s, reconcile every %s, api key %s, admin api %s\n",
		cfg.Tradefetcher.Sweep.OrderTTL, cfg.Tradefetcher.Sweep.Interval, onOff(cfg.Gateway.APIKey != ""), onOff(cfg.Gateway.AdminKey != ""))
	if cfg.Sandbox {
		fmt.Fprintf(&b, "  sandbox   Youzan sandbox at %s; pay page %s/wxpay/confirmQr?qr_id=<qr_id>&kdt_id=%s\n", a.URL, a.URL, yz.KdtID)
		fmt.Fprintf(&b, "            or: curl -X POST %s/sandbox/qrcodes/<qr_id>/pay\n", a.URL)
	} else {
		fmt.Fprintf(&b, "  youzan    %s (shop %s)\n", yz.BaseURL, yz.KdtID)
	}
	a.Banner = b.String()

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	stopOnParent := context.AfterFunc(ctx, cancel)
	go func() {
		defer close(a.done)
		defer stopOnParent()
		g, gctx := errgroup.WithContext(runCtx)
		g.Go(func() error { return httpapi.Serve(gctx, ln, mux, 10*time.Second) })
		if opsLn != nil {
			g.Go(func() error { return httpapi.Serve(gctx, opsLn, gw.OpsHandler(), 5*time.Second) })
		}
		g.Go(func() error { return tf.Run(gctx) })
		g.Go(func() error { return nt.Run(gctx) })
		g.Go(func() error { return lagPoller.Run(gctx) })
		if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			a.err = err
		}
		a.closeAll()
	}()
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// OpenStore opens the store `yzpay serve` would use: DATABASE_URL, else
// SQLite under DATA_DIR (for the migrate and deliveries commands).
func OpenStore(ctx context.Context, t config.Tool) (store.Store, string, error) {
	return openStore(ctx, t.DatabaseURL, filepath.Join(t.DataDir, "yzpay.db"), t.StartupTimeout)
}

// writableDir makes sure DATA_DIR is a directory yzpay can write in, so that
// a wrong one fails with its name rather than with a file inside it.
func writableDir(dir string) error {
	fail := func(err error) error { return fmt.Errorf("DATA_DIR %s is not a writable directory: %w", dir, err) }
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fail(err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// openStore opens Postgres when databaseURL is set (waiting up to wait for
// it to answer), else SQLite at sqlitePath, and applies migrations. The
// description names the store for the banner without credentials.
func openStore(ctx context.Context, databaseURL, sqlitePath string, wait time.Duration) (store.Store, string, error) {
	if databaseURL != "" {
		s, err := postgres.OpenMigrated(ctx, databaseURL, wait)
		if err != nil {
			return nil, "", err
		}
		return s, "postgres " + config.RedactURL(databaseURL), nil
	}
	s, err := sqlite.Open(ctx, sqlitePath)
	if err != nil {
		return nil, "", err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, "", err
	}
	return s, "sqlite " + sqlitePath, nil
}

// connectNATS uses NATS_URL when set (waiting up to wait for it to answer),
// else an embedded server.
func (a *App) connectNATS(ctx context.Context, b config.Broker, storeDir string, wait time.Duration) (string, error) {
	if url := b.NATSURL; url != "" {
		nc, js, err := natsjs.ConnectBroker(ctx, b, "yzpay", wait, a.log)
		if err != nil {
			return "", err
		}
		a.nc, a.JS = nc, js
		a.closers = append(a.closers, func() { nc.Close() })
		return "nats " + config.RedactURL(url), nil
	}
	srv, err := embedded.Start(embedded.Options{StoreDir: storeDir})
	if err != nil {
		return "", err
	}
	a.embed = srv
	a.closers = append(a.closers, srv.Shutdown)
	nc, err := srv.Connect(nats.Name("yzpay"), nats.MaxReconnects(-1))
	if err != nil {
		return "", err
	}
	a.nc = nc
	a.closers = append(a.closers, func() { nc.Close() })
	js, err := natsjs.Open(ctx, nc, 1, wait)
	if err != nil {
		return "", err
	}
	a.JS = js
	return "embedded JetStream (file store " + storeDir + ", no listener)", nil
}

// Stop shuts down gracefully and waits.
func (a *App) Stop() error {
	if a.cancel != nil {
		a.cancel()
	}
	<-a.done
	return a.err
}

// Err is why the app stopped (nil for a clean stop).
func (a *App) Err() error { <-a.done; return a.err }

// closeAll runs the closers, last opened first. A closer that panics is
// logged and the rest still run: clean-up after a failed start must not turn
// the one line saying why into a stack trace.
func (a *App) closeAll() {
	a.once.Do(func() {
		for i := len(a.closers) - 1; i >= 0; i-- {
			func() {
				defer func() {
					if r := recover(); r != nil {
						a.log.Error("clean-up failed", "panic", fmt.Sprint(r))
					}
				}()
				a.closers[i]()
			}()
		}
	})
}

// loopbackAddr turns ":8080" or "[::]:8080" into a dialable 127.0.0.1:8080.
func loopbackAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// sandboxSecret reads the sandbox's notification secret from path, making
// one up (readable by the owner only) the first time, so that a developer's
// local merchant can be configured with it once per DATA_DIR.
func sandboxSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("sandbox secret: %w", err)
	}
	s := randomHex(16)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("sandbox secret: %w", err)
	}
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = io.ReadFull(rand.Reader, b)
	return hex.EncodeToString(b)
}

// Version is set at build time with -ldflags "-X .../app.Version=…".
var Version = "dev"
