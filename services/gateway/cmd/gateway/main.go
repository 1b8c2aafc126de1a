// Command gateway runs the yzpay HTTP gateway alone (see package gateway).
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/boot"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/opshttp"
	"github.com/yzpay/yzpay/shared/replay"
)

func main() { boot.Main("gateway", run) }

func run(ctx context.Context, env config.Env, log *slog.Logger) error {
	cfg, cerr := gateway.FromEnv(env, false)
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
	nc, js, err := boot.ConnectNATS(ctx, split.NATSURL, "yzpay-gateway", split.Replicas, log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	client, err := boot.Youzan(yz, m, log)
	if err != nil {
		return err
	}
	cfg.ClientID, cfg.ClientSecret = yz.ClientID, yz.ClientSecret
	g, err := gateway.New(cfg, gateway.Deps{
		Store: st, JS: js, Youzan: client, Metrics: m, Logger: log,
		Checks:   []opshttp.Check{boot.NATSCheck(nc, js), boot.StoreCheck(st)},
		Replayer: replay.Replayer{Store: st, JS: js},
	})
	if err != nil {
		return err
	}
	ln, err := opshttp.Listen(env.Get("GATEWAY_ADDR", gateway.DefaultAddr))
	if err != nil {
		return err
	}
	log.Info("gateway listening", "addr", ln.Addr().String(), "store", storeDesc, "nats", config.RedactURL(split.NATSURL),
		"youzan", yz.BaseURL, "admin_api", cfg.AdminKey != "")
	return opshttp.Serve(ctx, ln, g.Handler(), 10*time.Second)
}
