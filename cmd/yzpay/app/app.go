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
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/services/notifier"
	"github.com/yzpay/yzpay/services/tradefetcher"
	"github.com/yzpay/yzpay/shared/boot"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/lag"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsembed"
	"github.com/yzpay/yzpay/shared/opshttp"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/sandbox"
	"github.com/yzpay/yzpay/shared/store"
)

// Options select what runs.
type Options struct {
	Env     config.Env
	Sandbox bool // also set by YOUZAN_MODE=sandbox
	Logger  *slog.Logger
	// Sandbox tuning for tests; ignored outside sandbox mode.
	SandboxConfig sandbox.Config
}

// App is a running yzpay.
type App struct {
	URL        string // the gateway's base URL
	Sandbox    *sandbox.Sandbox
	Store      store.Store
	JS         jetstream.JetStream
	Metrics    *metrics.Metrics
	Banner     string
	MerchantCh chan DemoPush // pushes the demo merchant accepted (sandbox without PUSH_API)

	log     *slog.Logger
	nc      *nats.Conn
	embed   *natsembed.Server
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	closers []func()
	once    sync.Once
}

// Start wires and starts everything; it returns once the gateway listens.
// Missing configuration fails with the names of every missing variable.
func Start(ctx context.Context, o Options) (a *App, err error) {
	env := o.Env
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	sandboxMode := o.Sandbox || strings.EqualFold(env.Get("YOUZAN_MODE", ""), "sandbox")

	gwCfg, gerr := gateway.FromEnv(env, sandboxMode)
	ntCfg, nerr := notifier.FromEnv(env, sandboxMode)
	tfCfg, terr := tradefetcher.FromEnv(env)
	var yz boot.YouzanCredentials
	var yerr error
	if !sandboxMode {
		yz, yerr = boot.YouzanFromEnv(env)
	}
	if sandboxMode && ntCfg.Secret == "" {
		// The demo merchant and the notifier share a secret nobody else
		// needs to know; a fresh one per run is the safe default.
		ntCfg.Secret = randomHex(16)
		var m config.Missing
		if errors.As(nerr, &m) {
			nerr = dropName(m, "SELF_SECRET")
		}
	}
	if err := boot.MergeMissing(gerr, nerr, terr, yerr); err != nil {
		return nil, err
	}
	replicas, err := env.Int("NATS_REPLICAS", 1)
	if err != nil {
		return nil, err
	}

	a = &App{log: log, Metrics: metrics.New(), done: make(chan struct{})}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	dataDir := env.Get("DATA_DIR", "./data")

	st, storeDesc, err := boot.OpenStore(ctx, env.Get("DATABASE_URL", ""), filepath.Join(dataDir, "yzpay.db"))
	if err != nil {
		return nil, err
	}
	a.Store = st
	a.closers = append(a.closers, func() { st.Close() })

	brokerDesc, err := a.connectNATS(ctx, env.Get("NATS_URL", ""), filepath.Join(dataDir, "nats"), replicas)
	if err != nil {
		return nil, err
	}

	ln, err := opshttp.Listen(env.Get("GATEWAY_ADDR", gateway.DefaultAddr))
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { ln.Close() })
	a.URL = "http://" + loopbackAddr(ln.Addr())

	mux := http.NewServeMux()
	var sandboxAPI http.Handler
	if sandboxMode {
		sc := o.SandboxConfig
		sc.PushURL = a.URL + "/api/status"
		sc.PublicURL = a.URL
		if sc.Logger == nil {
			sc.Logger = log.With("component", "sandbox")
		}
		sb, err := sandbox.New(sc)
		if err != nil {
			return nil, err
		}
		a.Sandbox = sb
		a.closers = append(a.closers, func() { sb.Close() })
		c := sb.Config()
		yz = boot.YouzanCredentials{BaseURL: a.URL, ClientID: c.ClientID, ClientSecret: c.ClientSecret, KdtID: c.KdtID}
		for _, p := range []string{"/auth/", "/sandbox/", "/wxpay/"} {
			mux.Handle(p, sb)
		}
		sandboxAPI = sb
		if len(ntCfg.Endpoints) == 0 {
			a.MerchantCh = make(chan DemoPush, 1024)
			mux.Handle("/demo-merchant", demoMerchant(ntCfg.Secret, log.With("component", "demo-merchant"), a.MerchantCh))
			ntCfg.Endpoints = []string{a.URL + "/demo-merchant"}
		}
		if gwCfg.APIKey == "" {
			log.Warn("sandbox mode without GATEWAY_API_KEY: /api/payment/* is open to anyone who can reach " + a.URL)
		}
	}

	yc, err := boot.Youzan(yz, a.Metrics, log)
	if err != nil {
		return nil, err
	}
	gwCfg.ClientID, gwCfg.ClientSecret = yz.ClientID, yz.ClientSecret
	checks := []opshttp.Check{boot.NATSCheck(a.nc, a.JS), boot.StoreCheck(st)}
	gw, err := gateway.New(gwCfg, gateway.Deps{
		Store: st, JS: a.JS, Youzan: yc, Metrics: a.Metrics, Logger: log.With("service", "gateway"),
		Checks: checks, Replayer: replay.Replayer{Store: st, JS: a.JS},
	})
	if err != nil {
		return nil, err
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
	tf, err := tradefetcher.New(tfCfg, tradefetcher.Deps{Store: st, JS: a.JS, Youzan: yc, Metrics: a.Metrics, Logger: log})
	if err != nil {
		return nil, err
	}
	nt, err := notifier.New(ntCfg, notifier.Deps{Store: st, JS: a.JS, Metrics: a.Metrics, Logger: log})
	if err != nil {
		return nil, err
	}
	lagPoller := lag.New(a.JS, a.Metrics, []lag.Target{lag.Tradefetcher, lag.Notifier}, lag.Options{Logger: log.With("component", "lag")})

	var b strings.Builder
	fmt.Fprintf(&b, "yzpay %s\n", Version)
	fmt.Fprintf(&b, "  API       %s/api/payment/qrcode (Youzan pushes: %s/api/status)\n", a.URL, a.URL)
	fmt.Fprintf(&b, "  metrics   %s/metrics   health %s/healthz  %s/readyz\n", a.URL, a.URL, a.URL)
	fmt.Fprintf(&b, "  store     %s\n", storeDesc)
	fmt.Fprintf(&b, "  broker    %s\n", brokerDesc)
	fmt.Fprintf(&b, "  merchant  %s (%s)\n", config.RedactURL(strings.Join(ntCfg.Endpoints, ",")), ntCfg.Format)
	if sandboxMode {
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
		a.err = boot.Group(runCtx,
			func(ctx context.Context) error { return opshttp.Serve(ctx, ln, mux, 10*time.Second) },
			tf.Run,
			nt.Run,
			lagPoller.Run,
		)
		a.closeAll()
	}()
	return a, nil
}

// connectNATS uses NATS_URL when set, else an embedded server.
func (a *App) connectNATS(ctx context.Context, url, storeDir string, replicas int) (string, error) {
	if url != "" {
		nc, js, err := boot.ConnectNATS(ctx, url, "yzpay", replicas, a.log)
		if err != nil {
			return "", err
		}
		a.nc, a.JS = nc, js
		a.closers = append(a.closers, func() { nc.Close() })
		return "nats " + config.RedactURL(url), nil
	}
	srv, err := natsembed.Start(natsembed.Options{StoreDir: storeDir})
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
	js, err := boot.Streams(ctx, nc, 1)
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

func (a *App) closeAll() {
	a.once.Do(func() {
		for i := len(a.closers) - 1; i >= 0; i-- {
			a.closers[i]()
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = io.ReadFull(rand.Reader, b)
	return hex.EncodeToString(b)
}

func dropName(m config.Missing, name string) error {
	var out config.Missing
	for _, n := range m {
		if n != name {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Version is set at build time with -ldflags "-X .../app.Version=…".
var Version = "dev"
