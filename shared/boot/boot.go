// Package boot wires what every yzpay process needs from its environment:
// the logger, the NATS connection, the store and the Youzan client, with the
// fail-fast rule of design.md: a missing variable stops the process with one
// line naming it.
package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/events"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/opshttp"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/store/pgstore"
	"github.com/yzpay/yzpay/shared/store/sqlitestore"
	"github.com/yzpay/yzpay/shared/youzan"
)

// DefaultYouzanBase is YOUZAN_API_BASE's default.
const DefaultYouzanBase = "https://open.youzanyun.com"

// Logger builds the slog logger from LOG_LEVEL and LOG_FORMAT.
func Logger(env config.Env) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(env.Get("LOG_LEVEL", "info")) {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, errors.New("LOG_LEVEL must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(env.Get("LOG_FORMAT", "text")) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, errors.New("LOG_FORMAT must be text or json")
}

// ConnectNATS connects (retrying in the background if the server is not up
// yet), reconnects forever, and makes sure the streams exist.
func ConnectNATS(ctx context.Context, url, name string, replicas int, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connect NATS: %w", err)
	}
	js, err := Streams(ctx, nc, replicas)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Streams opens JetStream on nc and ensures the streams, retrying for up to
// a minute so services may start before the broker.
func Streams(ctx context.Context, nc *nats.Conn, replicas int) (jetstream.JetStream, error) {
	// Async publishes (the tradefetcher's events) give up after 10 s
	// instead of waiting forever for a reply that was lost.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = events.EnsureStreams(sctx, js, events.DefaultSetup(replicas))
		cancel()
		if err == nil {
			return js, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// NATSCheck is ready while the connection is up and JetStream answers.
func NATSCheck(nc *nats.Conn, js jetstream.JetStream) opshttp.Check {
	return opshttp.Check{Name: "nats", Fn: func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		_, err := js.AccountInfo(ctx)
		return err
	}}
}

// StoreCheck is ready while the store answers.
func StoreCheck(s store.Store) opshttp.Check {
	return opshttp.Check{Name: "store", Fn: s.Ping}
}

// OpenStore opens Postgres when databaseURL is set, else SQLite at
// sqlitePath, and applies migrations (idempotent; advisory-locked on
// Postgres so replicas starting together do not race). The description
// names the store for the start-up banner without credentials.
func OpenStore(ctx context.Context, databaseURL, sqlitePath string) (store.Store, string, error) {
	if databaseURL != "" {
		s, err := pgstore.Open(ctx, databaseURL)
		if err != nil {
			return nil, "", err
		}
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, "", err
		}
		return s, "postgres " + config.RedactURL(databaseURL), nil
	}
	if sqlitePath == "" {
		return nil, "", errors.New("DATABASE_URL is required")
	}
	s, err := sqlitestore.Open(ctx, sqlitePath)
	if err != nil {
		return nil, "", err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, "", err
	}
	return s, "sqlite " + sqlitePath, nil
}

// YouzanCredentials are the app's credentials.
type YouzanCredentials struct {
	BaseURL, ClientID, ClientSecret, KdtID string
}

// YouzanFromEnv reads the credentials; all three are required.
func YouzanFromEnv(env config.Env) (YouzanCredentials, error) {
	if err := env.Require("YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID"); err != nil {
		return YouzanCredentials{}, err
	}
	return YouzanCredentials{
		BaseURL:      env.Get("YOUZAN_API_BASE", DefaultYouzanBase),
		ClientID:     env.Get("YOUZANYUN_CLIENT_ID", ""),
		ClientSecret: env.Get("YOUZANYUN_CLIENT_SECRET", ""),
		KdtID:        env.Get("YOUZAN_KDT_ID", ""),
	}, nil
}

// Youzan builds the client with metrics.
func Youzan(c YouzanCredentials, m *metrics.Metrics, log *slog.Logger) (*youzan.Client, error) {
	return youzan.New(youzan.Config{
		BaseURL: c.BaseURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret, KdtID: c.KdtID,
		Observe: m.ObserveYouzan, Logger: log,
	})
}

// Main runs a service binary: it loads envrc and the environment, builds the
// logger, cancels the context on SIGINT/SIGTERM and exits non-zero with one
// line when run fails.
func Main(name string, run func(ctx context.Context, env config.Env, log *slog.Logger) error) {
	env, err := config.Load("envrc")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	log, err := Logger(env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	log = log.With("service", name)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env, log); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	log.Info("stopped")
}

// MergeMissing merges the Missing errors of several config readers.
func MergeMissing(errs ...error) error {
	var all config.Missing
	for _, err := range errs {
		var m config.Missing
		if errors.As(err, &m) {
			all = append(all, m...)
		} else if err != nil {
			return err
		}
	}
	if len(all) > 0 {
		return all
	}
	return nil
}

// Group runs every fn until ctx ends or one of them returns; then it cancels
// the rest, waits for them and returns the first error. Signal and failure
// end a process the same way.
func Group(ctx context.Context, fns ...func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { errc <- fn(ctx) }()
	}
	var first error
	for range fns {
		if err := <-errc; err != nil && first == nil && !errors.Is(err, context.Canceled) {
			first = err
		}
		cancel()
	}
	return first
}

// Split reads what a split service needs besides its own settings:
// NATS_URL, DATABASE_URL and NATS_REPLICAS.
type Split struct {
	NATSURL, DatabaseURL string
	Replicas             int
}

// SplitFromEnv requires NATS_URL and DATABASE_URL.
func SplitFromEnv(env config.Env) (Split, error) {
	s := Split{NATSURL: env.Get("NATS_URL", ""), DatabaseURL: env.Get("DATABASE_URL", "")}
	n, err := env.Int("NATS_REPLICAS", 1)
	if err != nil {
		return s, err
	}
	s.Replicas = n
	return s, env.Require("NATS_URL", "DATABASE_URL")
}
