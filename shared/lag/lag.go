// Package lag polls JetStream for how far yzpay's durable consumers are
// behind and exports it as Prometheus gauges (see shared/metrics). It polls
// in the background every few seconds rather than on each scrape: a scrape
// then never waits on the broker, and several Prometheus servers scraping
// do not multiply the load on it.
package lag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
)

// Target is one durable consumer and the stream it reads.
type Target struct {
	Stream, Consumer string
}

// The pipeline's consumers. Each process watches the consumer it runs, so
// the series come from where the work happens; `yzpay serve` watches both.
var (
	Tradefetcher = Target{Stream: natsjs.WebhookStream, Consumer: natsjs.TradefetcherDurable}
	Notifier     = Target{Stream: natsjs.PaymentStream, Consumer: natsjs.NotifierDurable}
)

// DefaultInterval is how often the services poll.
const DefaultInterval = 5 * time.Second

// Options tune a Poller; the zero value is what the services use.
type Options struct {
	Interval time.Duration // default DefaultInterval
	// Timeout bounds one poll round, so a broker that does not answer
	// counts as a failed poll instead of stalling the loop; default 5 s.
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time // for tests
}

// Poller keeps the stream and consumer gauges of its targets up to date.
type Poller struct {
	js      jetstream.JetStream
	m       *metrics.Metrics
	targets []Target
	o       Options
}

// New returns a Poller for targets; Run starts it.
func New(js jetstream.JetStream, m *metrics.Metrics, targets []Target, o Options) *Poller {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Poller{js: js, m: m, targets: targets, o: o}
}

// Run polls at once and then every Interval until ctx ends; it returns nil
// then. A failed poll is counted and logged when polling starts or stops
// failing (not every few seconds through a broker outage); the gauges keep
// their last values meanwhile.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	failing := false
	for {
		pctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
		err := p.Poll(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil:
			p.m.LagPollErrors.Inc()
			if !failing {
				p.o.Logger.Warn("consumer lag poll failed; lag gauges are stale until it recovers", "err", err)
			}
			failing = true
		case failing:
			p.o.Logger.Info("consumer lag poll recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll reads every target's stream and consumer once and sets the gauges.
// A stream or consumer that does not exist (yet: the services create them
// as they start) has its series removed rather than reported as zero lag.
func (p *Poller) Poll(ctx context.Context) error {
	var errs []error
	streams := map[string]jetstream.Stream{}
	failed := map[string]bool{}
	for _, tg := range p.targets {
		if failed[tg.Stream] {
			continue
		}
		st, seen := streams[tg.Stream]
		if !seen {
			var err error
			if st, err = p.pollStream(ctx, tg.Stream); err != nil {
				errs = append(errs, err)
				failed[tg.Stream] = true
				continue
			}
			streams[tg.Stream] = st
		}
		if st == nil {
			p.forgetConsumer(tg)
			continue
		}
		if err := p.pollConsumer(ctx, st, tg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pollStream returns nil (and no error) when the stream does not exist.
func (p *Poller) pollStream(ctx context.Context, name string) (jetstream.Stream, error) {
	st, err := p.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		p.m.StreamMessages.DeleteLabelValues(name)
		p.m.StreamBytes.DeleteLabelValues(name)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	s := st.CachedInfo().State
	p.m.StreamMessages.WithLabelValues(name).Set(float64(s.Msgs))
	p.m.StreamBytes.WithLabelValues(name).Set(float64(s.Bytes))
	return st, nil
}

func (p *Poller) pollConsumer(ctx context.Context, st jetstream.Stream, tg Target) error {
	c, err := st.Consumer(ctx, tg.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		p.forgetConsumer(tg)
		return nil
	}
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", tg.Consumer, tg.Stream, err)
	}
	ci := c.CachedInfo()
	age, err := p.oldestAge(ctx, st, ci)
	if err != nil {
		return fmt.Errorf("oldest message of consumer %s on %s: %w", tg.Consumer, tg.Stream, err)
	}
	p.m.ConsumerPending.WithLabelValues(tg.Stream, tg.Consumer).Set(float64(ci.NumPending))
	p.m.ConsumerAckPending.WithLabelValues(tg.Stream, tg.Consumer).Set(float64(ci.NumAckPending))
	p.m.ConsumerRedelivered.WithLabelValues(tg.Stream, tg.Consumer).Set(float64(ci.NumRedelivered))
	p.m.ConsumerOldestAge.WithLabelValues(tg.Stream, tg.Consumer).Set(age.Seconds())
	return nil
}

// oldestAge is how long ago the oldest message the consumer has not
// acknowledged was stored. Everything up to the ack floor is acknowledged,
// so that message is the first one after the floor that matches the
// consumer's filter, whether it was handed out (and is being worked on or
// waiting out a retry delay) or not yet. The server finds it for us (a
// get with next_by_subj), which also steps over messages that were deleted
// or fall outside the filter. Consumer info and the get are two requests,
// so the answer may be one poll stale: good enough for a gauge.
func (p *Poller) oldestAge(ctx context.Context, st jetstream.Stream, ci *jetstream.ConsumerInfo) (time.Duration, error) {
	if ci.NumPending == 0 && ci.NumAckPending == 0 {
		return 0, nil
	}
	seq := max(ci.AckFloor.Stream+1, st.CachedInfo().State.FirstSeq)
	filter := ci.Config.FilterSubject
	if filter == "" {
		filter = ">"
	}
	msg, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil // acknowledged and gone since the consumer info
	}
	if err != nil {
		return 0, err
	}
	return max(0, p.o.Now().Sub(msg.Time)), nil
}

func (p *Poller) forgetConsumer(tg Target) {
	p.m.ConsumerPending.DeleteLabelValues(tg.Stream, tg.Consumer)
	p.m.ConsumerAckPending.DeleteLabelValues(tg.Stream, tg.Consumer)
	p.m.ConsumerRedelivered.DeleteLabelValues(tg.Stream, tg.Consumer)
	p.m.ConsumerOldestAge.DeleteLabelValues(tg.Stream, tg.Consumer)
}
