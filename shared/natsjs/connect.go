package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect connects to url (retrying in the background if the server is not
// up yet, and reconnecting forever), then opens JetStream and ensures the
// streams.
func Connect(ctx context.Context, url, name string, replicas int, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
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
	js, err := Open(ctx, nc, replicas)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Open opens JetStream on nc and ensures the streams, retrying for up to a
// minute so services may start before the broker.
func Open(ctx context.Context, nc *nats.Conn, replicas int) (jetstream.JetStream, error) {
	// Async publishes (the tradefetcher's events) give up after 10 s
	// instead of waiting forever for a reply that was lost.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = EnsureStreams(sctx, js, DefaultStreamSetup(replicas))
		cancel()
		if err == nil {
			return js, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("NATS JetStream does not answer: %w", err)
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

// Ping is the readiness check: the connection is up and JetStream answers.
func Ping(nc *nats.Conn, js jetstream.JetStream) func(context.Context) error {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		_, err := js.AccountInfo(ctx)
		return err
	}
}
