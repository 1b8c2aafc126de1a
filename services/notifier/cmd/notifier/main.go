// Command notifier runs the yzpay merchant notifier alone (see package notifier).
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/yzpay/yzpay/services/notifier"
	"github.com/yzpay/yzpay/shared/boot"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/lag"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/opshttp"
)

func main() { boot.Main("notifier", run) }

func run(ctx context.Context, env config.Env, log *slog.Logger) error {
	cfg, cerr := notifier.FromEnv(env, false)
	split, serr := boot.SplitFromEnv(env)
	if err := boot.MergeMissing(cerr, serr); err != nil {
		return err
	}
	m := metrics.New()
	st, storeDesc, err := boot.OpenStore(ctx, split.DatabaseURL, "")
	if err != nil {
		return err
	}
	defer st.Close()
	nc, js, err := boot.ConnectNATS(ctx, split.NATSURL, "yzpay-notifier", split.Replicas, log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	n, err := notifier.New(cfg, notifier.Deps{Store: st, JS: js, Metrics: m, Logger: log})
	if err != nil {
		return err
	}
	ln, err := opshttp.Listen(env.Get("METRICS_ADDR", notifier.DefaultMetricsAddr))
	if err != nil {
		return err
	}
	log.Info("notifier running", "metrics", ln.Addr().String(), "store", storeDesc, "nats", config.RedactURL(split.NATSURL),
		"endpoints", len(cfg.Endpoints), "format", cfg.Format)
	ops := opshttp.OpsMux(m, log, boot.NATSCheck(nc, js), boot.StoreCheck(st))
	lagPoller := lag.New(js, m, []lag.Target{lag.Notifier}, lag.Options{Logger: log})
	return boot.Group(ctx, n.Run, lagPoller.Run, func(ctx context.Context) error { return opshttp.Serve(ctx, ln, ops, 5*time.Second) })
}
