// Consume runs a durable JetStream pull consumer in batches: take
// what has arrived, up to N messages, hand the batch to a handler that acks
// or naks each message itself, repeat until the context ends. Both pipeline workers use it, so a
// batch can share one store transaction and one round of publishes.
package natsjs

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

// BatchHandler processes one batch. It must ack, nak or term every message; a
// message it forgets is redelivered after AckWait.
type BatchHandler func(ctx context.Context, batch []jetstream.Msg)

// ConsumeOptions tune the loop.
type ConsumeOptions struct {
	Batch int // messages handled together at most; default 64
	// InFlight batches may be handled at once, so one slow batch (a merchant
	// timing out) does not hold up the rest; default 4.
	InFlight int
	// AckWait of the consumer: while a batch is being handled its messages
	// are marked in progress every AckWait/3, so a slow Youzan or merchant
	// does not make JetStream hand out a second copy meanwhile.
	AckWait time.Duration
	// Admit, if set, is called on the receiving loop for each batch, in the
	// order the batches were formed, once the batch has its in-flight slot
	// and before it gets its own goroutine; the func it returns then handles
	// the batch instead of the BatchHandler (nil: nothing to do). A handler
	// that must see batches in delivery order (the notifier's per-order
	// queues) takes its place here: goroutines may start in any order.
	Admit func(batch []jetstream.Msg) func(ctx context.Context)
	// OnRedelivery is called for each message delivered more than once.
	OnRedelivery func()
	Logger       *slog.Logger
}

// Consume receives messages and hands them to h in batches until ctx ends.
// Messages stream in through one long-lived pull subscription; a batch is
// the first message that arrives plus whatever else is already waiting (up
// to Batch), so a lone message is handled at once and a burst is handled
// together. Up to InFlight batches are handled at a time. When ctx ends, no
// new batch starts, batches being handled finish with a context that
// outlives ctx by at most grace, and messages received but not started are
// naked so another worker takes them at once (any still in the client's
// buffer come back after AckWait). A pull request lost with a failed node
// is renewed at once (see pullStalled and pullHeartbeat).
func Consume(ctx context.Context, cons jetstream.Consumer, h BatchHandler, o ConsumeOptions, grace time.Duration) error {
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.InFlight <= 0 {
		o.InFlight = 4
	}
	buffered := o.Batch * o.InFlight
	ch := make(chan jetstream.Msg, buffered)
	// repull is signalled when the client library has no pull request
	// outstanding and would not send another by itself (see pullStalled).
	repull := make(chan struct{}, 1)
	start := func() (jetstream.ConsumeContext, error) {
		return cons.Consume(func(m jetstream.Msg) { ch <- m },
			jetstream.PullMaxMessages(buffered),
			jetstream.PullHeartbeat(pullHeartbeat),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if ctx.Err() != nil {
					return
				}
				o.Logger.Warn("consumer interrupted; it resumes by itself", "err", err)
				if pullStalled(err) {
					select {
					case repull <- struct{}{}:
					default:
					}
				}
			}))
	}
	cc, err := start()
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	sem := make(chan struct{}, o.InFlight)
	var wg sync.WaitGroup
	defer func() {
		cc.Stop()
		wg.Wait()
		for {
			select {
			case m := <-ch:
				_ = m.Nak()
			default:
				return
			}
		}
	}()
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case <-repull:
			// Pull afresh after a short pause, so a consumer that has no
			// leader yet is asked a few times a second, not in a loop.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(repullDelay):
			}
			cc.Stop()
			if cc, err = start(); err != nil {
				return fmt.Errorf("consume: %w", err)
			}
			continue
		case first = <-ch:
		}
		// The slot is taken before the batch is formed: while every slot is
		// busy, what arrives meanwhile joins this batch instead of waiting
		// in the next one. Bigger batches under load share their store
		// reads and commits (docs/performance.md, "Hot path"); an idle
		// consumer still starts on a lone message at once.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			_ = first.Nak()
			return nil
		}
		msgs := []jetstream.Msg{first}
	more:
		for len(msgs) < o.Batch {
			select {
			case m := <-ch:
				msgs = append(msgs, m)
			default:
				break more
			}
		}
		if o.OnRedelivery != nil {
			for _, m := range msgs {
				if Delivered(m) > 1 {
					o.OnRedelivery()
				}
			}
		}
		run := func(ctx context.Context) { h(ctx, msgs) }
		if o.Admit != nil {
			run = o.Admit(msgs)
		}
		if run == nil {
			<-sem
			continue
		}
		hctx, cancel := detach(ctx, grace)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer cancel()
			stop := keepAlive(msgs, o.AckWait)
			defer stop()
			run(hctx)
		}()
	}
}

const (
	// pullHeartbeat is the idle heartbeat asked of the server with each
	// pull request. A pull request can vanish without a word (its consumer's
	// leader node stops); the client notices only when two heartbeats are
	// missed and then pulls again. The library's default, half the 30 s pull
	// expiry, left a replica idle for 30 s after a node failure; the server
	// sends heartbeats only while it has nothing to deliver, so a busy
	// consumer pays nothing for a shorter one and an idle one a few bytes a
	// second.
	pullHeartbeat = 2 * time.Second
	// repullDelay paces fresh pull requests while the consumer has no
	// leader to answer them.
	repullDelay = 250 * time.Millisecond
)

// pullStalled reports whether err leaves the pull consumer with no request
// outstanding that the library would renew by itself. A pull request that
// met no responder (the consumer's leader is being elected, after its node
// stopped or just after the consumer was created), or that the consumer's
// leader dropped as it shut down, is gone, but the library still counts its
// messages as pending and sends no new one until the heartbeat check fires
// (or, for shutdown, until this client itself reconnects, which it need not
// if it is connected to another node). Pulling afresh loses nothing: the
// failed request can deliver nothing more, and should another request of
// the stopped subscription still be served, its messages come back after
// AckWait.
func pullStalled(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrServerShutdown)
}

// keepAlive tells JetStream every ackWait/3 that msgs are still being
// worked on; messages already acked or naked simply refuse it.
func keepAlive(msgs []jetstream.Msg, ackWait time.Duration) (stop func()) {
	if ackWait <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
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

// EnsureConsumer creates or updates the durable consumer on stream.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}
