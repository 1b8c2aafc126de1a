// Command tradefetcher runs the yzpay trade fetcher alone (see package tradefetcher).
package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/yzpay/yzpay/services/tradefetcher"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/lag"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/process"
	"github.com/yzpay/yzpay/shared/store/postgres"
	"github.com/yzpay/yzpay/shared/youzan"
	"golang.org/x/sync/errgroup"
)

func main() { process.Main("tradefetcher", run) }

func run(ctx context.Context, env config.Env, stderr io.Writer) error {
	cfg, err := config.LoadTradefetcher(env)
	if err != nil {
		return err
	}
	log := cfg.Log.Logger(stderr).With("service", "tradefetcher")
	fmt.Fprintln(stderr, "yzpay tradefetcher")
	cfg.Banner(stderr)
	m := metrics.New()
	st, err := postgres.OpenMigrated(ctx, cfg.DatabaseURL, cfg.StartupTimeout)
	if err != nil {
		return err
	}
	defer st.Close()
	nc, js, err := natsjs.ConnectBroker(ctx, cfg.Broker, "yzpay-tradefetcher", cfg.StartupTimeout, log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	yz, err := youzan.New(youzan.Config{
		BaseURL: cfg.Youzan.BaseURL, ClientID: cfg.Youzan.ClientID, ClientSecret: cfg.Youzan.ClientSecret,
		KdtID: cfg.Youzan.KdtID, Observe: m.ObserveYouzan, Logger: log,
	})
	if err != nil {
		return err
	}
	f, err := tradefetcher.New(cfg, tradefetcher.Deps{Store: st, JS: js, Youzan: yz, Metrics: m, Logger: log})
	if err != nil {
		return err
	}
	ln, err := httpapi.Listen(cfg.MetricsAddr)
	if err != nil {
		return err
	}
	log.Info("tradefetcher running", "metrics", ln.Addr().String())
	ops := httpapi.OpsMux(m, log, httpapi.Check{Name: "nats", Fn: natsjs.Ping(nc, js)}, httpapi.Check{Name: "store", Fn: st.Ping})
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.Run(ctx) })
	lagPoller := lag.New(js, m, []lag.Target{lag.Tradefetcher}, lag.Options{Logger: log})
	g.Go(func() error { return lagPoller.Run(ctx) })
	g.Go(func() error { return httpapi.Serve(ctx, ln, ops, 5*time.Second) })
	return g.Wait()
}
