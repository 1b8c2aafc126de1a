// Package consume runs a durable JetStream pull consumer in batches: fetch up
// to N messages, hand the batch to a handler that acks or naks each message
// itself, repeat until the context ends. Both pipeline workers use it, so a
// fetched batch can share one store transaction and one round of publishes.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler processes one batch. It must ack, nak or term every message; a
// message it forgets is redelivered after AckWait.
type Handler func(ctx context.Context, batch []jetstream.Msg)

// Options tune the loop.
type Options struct {
	Batch   int           // messages per fetch; default 64
	MaxWait time.Duration // how long one fetch waits for the first message; default 1s
	// InFlight batches may be handled at once, so one slow batch (a merchant
	// timing out) does not hold up the rest; default 4.
	InFlight int
	// OnRedelivery is called for each message delivered more than once.
	OnRedelivery func()
	Logger       *slog.Logger
}

// Run fetches and handles batches until ctx ends. Batches being handled
// when ctx ends are finished with a context that outlives ctx by at most
// grace, so a graceful stop does not leave half-processed work.
func Run(ctx context.Context, cons jetstream.Consumer, h Handler, o Options, grace time.Duration) error {
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.InFlight <= 0 {
		o.InFlight = 4
	}
	sem := make(chan struct{}, o.InFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		release := func() { <-sem }
		msgs, err := fetch(cons, o.Batch, o.MaxWait)
		if err != nil {
			release()
			if ctx.Err() != nil {
				break
			}
			o.Logger.Warn("fetch failed; retrying", "err", err, "backoff", backoff)
			if !sleep(ctx, backoff) {
				break
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if len(msgs) == 0 {
			release()
			continue
		}
		if o.OnRedelivery != nil {
			for _, m := range msgs {
				if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
					o.OnRedelivery()
				}
			}
		}
		hctx, cancel := detach(ctx, grace)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer release()
			defer cancel()
			h(hctx, msgs)
		}()
	}
	return nil
}

// fetch waits for one message, then takes whatever else is already
// waiting, up to n. A plain Fetch(n) would hold the first message until n
// arrived or the wait expired: hundreds of milliseconds of latency at low
// load, for nothing.
func fetch(cons jetstream.Consumer, n int, wait time.Duration) ([]jetstream.Msg, error) {
	first, err := cons.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range first.Messages() {
		msgs = append(msgs, m)
	}
	if err := first.Error(); err != nil && len(msgs) == 0 && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	if len(msgs) == 0 || n <= 1 {
		return msgs, nil
	}
	rest, err := cons.FetchNoWait(n - 1)
	if err != nil {
		return msgs, nil // the first message is ours; the rest can wait
	}
	for m := range rest.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// detach returns a context that ends grace after parent does.
func detach(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Delivered is the message's delivery count (1 on first delivery).
func Delivered(m jetstream.Msg) int {
	md, err := m.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}

// Step returns schedule[n-1], or its last element past the end.
func Step(schedule []time.Duration, n int) time.Duration {
	if len(schedule) == 0 {
		return time.Second
	}
	if n < 1 {
		n = 1
	}
	if n > len(schedule) {
		return schedule[len(schedule)-1]
	}
	return schedule[n-1]
}

// Setup creates or updates the durable consumer on stream.
func Setup(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}
