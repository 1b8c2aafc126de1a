// Command notifier runs the yzpay merchant notifier alone (see package notifier).
package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/yzpay/yzpay/services/notifier"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/lag"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/process"
	"github.com/yzpay/yzpay/shared/store/postgres"
	"golang.org/x/sync/errgroup"
)

func main() { process.Main("notifier", run) }

func run(ctx context.Context, env config.Env, stderr io.Writer) error {
	cfg, err := config.LoadNotifier(env)
	if err != nil {
		return err
	}
	log := cfg.Log.Logger(stderr).With("service", "notifier")
	fmt.Fprintln(stderr, "yzpay notifier")
	cfg.Banner(stderr)
	m := metrics.New()
	st, err := postgres.OpenMigrated(ctx, cfg.DatabaseURL, cfg.StartupTimeout)
	if err != nil {
		return err
	}
	defer st.Close()
	nc, js, err := natsjs.ConnectBroker(ctx, cfg.Broker, "yzpay-notifier", cfg.StartupTimeout, log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	n, err := notifier.New(cfg, notifier.Deps{Store: st, JS: js, Metrics: m, Logger: log})
	if err != nil {
		return err
	}
	ln, err := httpapi.Listen(cfg.MetricsAddr)
	if err != nil {
		return err
	}
	log.Info("notifier running", "metrics", ln.Addr().String())
	ops := httpapi.OpsMux(m, log, httpapi.Check{Name: "nats", Fn: natsjs.Ping(nc, js)}, httpapi.Check{Name: "store", Fn: st.Ping})
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.Run(ctx) })
	lagPoller := lag.New(js, m, []lag.Target{lag.Notifier}, lag.Options{Logger: log})
	g.Go(func() error { return lagPoller.Run(ctx) })
	g.Go(func() error { return httpapi.Serve(ctx, ln, ops, 5*time.Second) })
	return g.Wait()
}
