// Command gateway runs the yzpay HTTP gateway alone (see package gateway).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/process"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/store/postgres"
	"github.com/yzpay/yzpay/shared/youzan"
)

func main() { process.Main("gateway", run) }

func run(ctx context.Context, env config.Env, stderr io.Writer) error {
	cfg, err := config.LoadGateway(env)
	if err != nil {
		return err
	}
	log := cfg.Log.Logger(stderr).With("service", "gateway")
	fmt.Fprintln(stderr, "yzpay gateway")
	cfg.Banner(stderr)
	m := metrics.New()
	st, err := postgres.OpenMigrated(ctx, cfg.DatabaseURL, cfg.StartupTimeout)
	if err != nil {
		return err
	}
	defer st.Close()
	nc, js, err := natsjs.ConnectBroker(ctx, cfg.Broker, "yzpay-gateway", cfg.StartupTimeout, log)
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
	g, err := gateway.New(cfg, gateway.Deps{
		Store: st, JS: js, Youzan: yz, Metrics: m, Logger: log,
		Checks:   []httpapi.Check{{Name: "nats", Fn: natsjs.Ping(nc, js)}, {Name: "store", Fn: st.Ping}},
		Replayer: replay.Replayer{Store: st, JS: js},
	})
	if err != nil {
		return err
	}
	ln, err := httpapi.Listen(cfg.Addr)
	if err != nil {
		return err
	}
	if g.OpsOnMain() {
		log.Info("gateway listening", "addr", ln.Addr().String(), "ops", "same listener (OPS_ADDR=same)")
		return httpapi.Serve(ctx, ln, g.Handler(), 10*time.Second)
	}
	ops, err := httpapi.Listen(cfg.OpsAddr)
	if err != nil {
		ln.Close()
		return err
	}
	log.Info("gateway listening", "addr", ln.Addr().String(), "ops", ops.Addr().String())
	// Either listener failing stops both: a gateway without its ops port
	// would look dead to the load balancer anyway.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- httpapi.Serve(ctx, ln, g.Handler(), 10*time.Second) }()
	go func() { errc <- httpapi.Serve(ctx, ops, g.OpsHandler(), 5*time.Second) }()
	err = <-errc
	cancel()
	return errors.Join(err, <-errc)
}
