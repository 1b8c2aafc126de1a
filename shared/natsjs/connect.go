package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yzpay/yzpay/shared/config"
)

// ConnectBroker is Connect to the configured broker, with its credentials:
// user and password in NATS_URL (nats.go reads them from the URL) or a
// NATS_CREDS file.
func ConnectBroker(ctx context.Context, b config.Broker, name string, wait time.Duration, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	var opts []nats.Option
	if b.Creds != "" {
		opts = append(opts, nats.UserCredentials(b.Creds))
	}
	return Connect(ctx, b.NATSURL, name, b.Replicas, wait, log, opts...)
}

// Connect connects to url, then opens JetStream and ensures the streams. A
// server that does not answer yet is tried again every half second, so
// services may start before the broker, but for no longer than wait in all:
// past it Connect gives up with an error naming the server (never its
// credentials). Once connected, the connection reconnects forever.
func Connect(ctx context.Context, url, name string, replicas int, wait time.Duration, log *slog.Logger, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	where := config.RedactURL(url)
	deadline := time.Now().Add(wait)
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted()) }),
	}
	opts = append(opts, extra...)
	var nc *nats.Conn
	for logged := false; ; {
		// One try dials every server of the URL once; each dial gets at
		// most 2 s, and never more than what is left of wait.
		d := &dialer{Dialer: net.Dialer{Timeout: min(2*time.Second, max(time.Until(deadline), 500*time.Millisecond))}}
		c, err := nats.Connect(url, append(opts, nats.SetCustomDialer(d))...)
		if err == nil {
			nc = c
			break
		}
		if errors.Is(err, nats.ErrNoServers) {
			// nats.go says only this when every server refused the
			// connection; the dial error says so.
			if derr := d.lastErr(); derr != nil {
				err = derr
			}
		}
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			// The server answered and refused: waiting will not help.
			return nil, nil, fmt.Errorf("NATS at %s refused the credentials (user and password in NATS_URL, or NATS_CREDS): %w", where, err)
		}
		if !time.Now().Before(deadline) {
			return nil, nil, fmt.Errorf("NATS at %s does not answer after %s: %w", where, wait, err)
		}
		if !logged {
			log.Warn("NATS does not answer yet; retrying", "url", where, "for", wait, "err", err)
			logged = true
		}
		if err := sleep(ctx, min(500*time.Millisecond, time.Until(deadline))); err != nil {
			return nil, nil, fmt.Errorf("NATS at %s: %w", where, err)
		}
	}
	js, err := Open(ctx, nc, replicas, time.Until(deadline))
	if err != nil {
		nc.Close()
		if ctx.Err() == nil {
			return nil, nil, fmt.Errorf("NATS at %s: not ready after %s: %w", where, wait, err)
		}
		return nil, nil, fmt.Errorf("NATS at %s: %w", where, err)
	}
	return nc, js, nil
}

// Open opens JetStream on nc and ensures the streams, retrying for up to
// wait (at least one try) so that a server still starting has time to.
func Open(ctx context.Context, nc *nats.Conn, replicas int, wait time.Duration) (jetstream.JetStream, error) {
	// Async publishes (the tradefetcher's events) give up after 10 s
	// instead of waiting forever for a reply that was lost.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		try := min(5*time.Second, max(time.Until(deadline), time.Second))
		sctx, cancel := context.WithTimeout(ctx, try)
		err = EnsureStreams(sctx, js, DefaultStreamSetup(replicas))
		cancel()
		if err == nil {
			return js, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("JetStream streams not set up: %w", err)
		}
		if err := sleep(ctx, min(time.Second, time.Until(deadline))); err != nil {
			return nil, err
		}
	}
}

// dialer is a net.Dialer that remembers its last error.
type dialer struct {
	net.Dialer
	mu   sync.Mutex
	last error
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.Dialer.Dial(network, address)
	if err != nil {
		d.mu.Lock()
		d.last = err
		d.mu.Unlock()
	}
	return c, err
}

func (d *dialer) lastErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
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
