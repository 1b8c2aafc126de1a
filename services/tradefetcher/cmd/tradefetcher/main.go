// Command tradefetcher runs the yzpay trade fetcher alone (see package tradefetcher).
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/yzpay/yzpay/services/tradefetcher"
	"github.com/yzpay/yzpay/shared/boot"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/lag"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/opshttp"
)

func main() { boot.Main("tradefetcher", run) }

func run(ctx context.Context, env config.Env, log *slog.Logger) error {
	cfg, cerr := tradefetcher.FromEnv(env)
	yz, yerr := boot.YouzanFromEnv(env)
	split, serr := boot.SplitFromEnv(env)
	if err := boot.MergeMissing(cerr, yerr, serr); err != nil {
		return err
	}
	m := metrics.New()
	st, storeDesc, err := boot.OpenStore(ctx, split.DatabaseURL, "")
	if err != nil {
		return err
	}
	defer st.Close()
	nc, js, err := boot.ConnectNATS(ctx, split.NATSURL, "yzpay-tradefetcher", split.Replicas, log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	client, err := boot.Youzan(yz, m, log)
	if err != nil {
		return err
	}
	f, err := tradefetcher.New(cfg, tradefetcher.Deps{Store: st, JS: js, Youzan: client, Metrics: m, Logger: log})
	if err != nil {
		return err
	}
	ln, err := opshttp.Listen(env.Get("METRICS_ADDR", tradefetcher.DefaultMetricsAddr))
	if err != nil {
		return err
	}
	log.Info("tradefetcher running", "metrics", ln.Addr().String(), "store", storeDesc, "nats", config.RedactURL(split.NATSURL))
	ops := opshttp.OpsMux(m, log, boot.NATSCheck(nc, js), boot.StoreCheck(st))
	lagPoller := lag.New(js, m, []lag.Target{lag.Tradefetcher}, lag.Options{Logger: log})
	return boot.Group(ctx, f.Run, lagPoller.Run, func(ctx context.Context) error { return opshttp.Serve(ctx, ln, ops, 5*time.Second) })
}
