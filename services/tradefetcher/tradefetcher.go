// Package tradefetcher turns verified Youzan push receipts into payment-status
// events. A push alone is not trusted: for every receipt it reads the trade
// with youzan.trade.get, records the observation in the store (status only
// moves forward) and publishes an event for the status trade.get returned.
// A receipt is acked only after its effect is durable: the observation
// stored and the event's PubAck received.
package tradefetcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/lease"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan"
	"github.com/yzpay/yzpay/shared/youzan/push"
)

// Youzan is what the fetcher and its sweeper ask Youzan; *youzan.Client
// implements it.
type Youzan interface {
	GetTrade(ctx context.Context, tid string) (youzan.Trade, error)
	QRTradeLister
}

// Deps are the worker's collaborators.
type Deps struct {
	Store   store.Store
	JS      jetstream.JetStream
	Youzan  Youzan
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Fetcher is the worker.
type Fetcher struct {
	cfg  config.Tradefetcher
	deps Deps
	log  *slog.Logger
	m    *metrics.Metrics
}

// New fills defaults.
func New(cfg config.Tradefetcher, deps Deps) (*Fetcher, error) {
	if deps.Store == nil || deps.JS == nil || deps.Youzan == nil || deps.Metrics == nil {
		return nil, errors.New("tradefetcher: Store, JS, Youzan and Metrics are required")
	}
	if len(cfg.RetrySchedule) == 0 {
		cfg.RetrySchedule = config.DefaultFetchRetrySchedule
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.StoreRetry <= 0 {
		cfg.StoreRetry = time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = config.DefaultFetchGiveUpAfter
	}
	if cfg.ParkPoll <= 0 {
		cfg.ParkPoll = min(max(cfg.RetrySchedule[0], 50*time.Millisecond), time.Second)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	return &Fetcher{cfg: cfg, deps: deps, log: deps.Logger.With("service", "tradefetcher"), m: deps.Metrics}, nil
}

// SweepLease names the lease (in lease.DefaultBucket) whose holder sweeps.
const SweepLease = "tradefetcher-sweeps"

// Run consumes receipts, and sweeps for missed pushes and expired orders,
// until ctx ends.
func (f *Fetcher) Run(ctx context.Context) error {
	ccfg := natsjs.TradefetcherConsumer(f.cfg.AckWait)
	cons, err := natsjs.EnsureConsumer(ctx, f.deps.JS, natsjs.WebhookStream, ccfg)
	if err != nil {
		return err
	}
	sw := NewSweeper(f.cfg.Sweep, f.deps.Store, f.deps.JS, f.deps.Youzan, f.m, f.log)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The sweeps run on one replica at a time: the one holding the lease.
		_ = lease.Run(ctx, f.deps.JS, lease.Options{
			Key: SweepLease, TTL: f.cfg.Sweep.LeaseTTL, Replicas: f.cfg.Broker.Replicas, Logger: f.log,
			OnChange: func(held bool) { f.m.SweepLeaseHeld.Set(map[bool]float64{true: 1}[held]) },
		}, sw.Run)
	}()
	parkedDone := make(chan struct{})
	go func() {
		defer close(parkedDone)
		f.runParked(ctx)
	}()
	err = natsjs.Consume(ctx, cons, f.handle, natsjs.ConsumeOptions{
		Batch:        f.cfg.Batch,
		AckWait:      ccfg.AckWait,
		OnRedelivery: func() { f.m.Redeliveries.WithLabelValues(natsjs.TradefetcherDurable).Inc() },
		Logger:       f.log,
	}, f.cfg.Grace)
	cancel()
	<-done
	<-parkedDone
	return err
}

// item is one receipt's journey through a batch.
type item struct {
	msg   jetstream.Msg
	push  push.Push
	trade youzan.Trade
	err   error
	done  bool // acked/naked/termed already
	park  bool // trade not found: to be parked in the store, then acked
}

func (f *Fetcher) handle(ctx context.Context, msgs []jetstream.Msg) {
	items := make([]*item, len(msgs))
	for i, m := range msgs {
		items[i] = &item{msg: m}
	}
	t0 := time.Now()
	f.fetchTrades(ctx, items)
	t1 := time.Now()
	f.park(ctx, items)
	defer func() {
		if f.log.Enabled(ctx, slog.LevelDebug) {
			f.log.Debug("batch handled", "size", len(msgs), "trade_get", t1.Sub(t0), "total", time.Since(t0))
		}
	}()

	// One store transaction for every trade read in this batch.
	var obs []domain.Observation
	var pending []*item
	for _, it := range items {
		if it.done {
			continue
		}
		obs = append(obs, domain.Observation{
			QRID: it.trade.QRID, TID: it.trade.TID, Status: it.trade.Status, Payment: it.trade.Payment,
			BuyerID: it.trade.BuyerID, PayType: it.trade.PayType, PaidAt: it.trade.PaidAt, ObservedAt: time.Now().UTC(),
		})
		pending = append(pending, it)
	}
	if len(obs) == 0 {
		return
	}
	changes, err := f.deps.Store.RecordObservations(ctx, obs)
	if err != nil {
		f.log.Error("store unavailable; receipts will be redelivered", "receipts", len(pending), "err", err)
		for _, it := range pending {
			f.m.Receipts.WithLabelValues("store_error").Inc()
			_ = it.msg.NakWithDelay(f.cfg.StoreRetry)
		}
		return
	}

	// Publish the events together, then ack once every PubAck is in.
	type pub struct {
		it  *item
		fut jetstream.PubAckFuture
		ev  domain.PaymentEvent
	}
	var pubs []pub
	for i, it := range pending {
		c := changes[i]
		switch {
		case c.Order.OrderID == "":
			f.m.Receipts.WithLabelValues("not_ours").Inc()
			f.log.Debug("trade of a QR code yzpay did not create", "tid", it.trade.TID, "qr_id", it.trade.QRID)
			_ = it.msg.Ack()
		default:
			// Publish the status the order stands at, whether or not this
			// observation moved it and even when the reading is stale (the
			// order is further along): if a crash came between a store
			// commit and its PubAck, that event exists nowhere else, and
			// Nats-Msg-Id makes the repeats no-ops.
			if c.Order.Status != obs[i].Status {
				f.m.Receipts.WithLabelValues("stale").Inc()
			}
			if c.Changed && domain.IsPaid(c.Order.Status) && c.Order.Payment != c.Order.Price {
				// The buyer paid another amount than the order's price. The
				// notification carries what Youzan reported; the merchant
				// decides (README, "Merchant notifications").
				f.m.AmountMismatch.Inc()
				f.log.Error("paid amount differs from the order's price", "order_id", c.Order.OrderID,
					"tid", c.Order.TID, "price_fen", c.Order.Price, "payment_fen", c.Order.Payment, "status", c.Order.Status)
			}
			ev := domain.FromOrder(c.Order)
			msg := nats.NewMsg(natsjs.StatusSubject(ev.Status))
			msg.Data = ev.Encode()
			if v := it.msg.Headers().Get(natsjs.HeaderReceivedAt); v != "" {
				msg.Header.Set(natsjs.HeaderReceivedAt, v)
			}
			fut, err := f.deps.JS.PublishMsgAsync(msg, jetstream.WithMsgID(ev.EventID))
			if err != nil {
				f.m.Receipts.WithLabelValues("publish_error").Inc()
				f.log.Warn("publish event failed; receipt will be redelivered", "event_id", ev.EventID, "err", err)
				_ = it.msg.NakWithDelay(f.cfg.StoreRetry)
				continue
			}
			if c.Changed {
				f.log.Info("order status changed", "order_id", ev.OrderID, "qr_id", ev.QRID, "tid", ev.TID,
					"from", c.From, "status", ev.Status, "event_id", ev.EventID)
			}
			pubs = append(pubs, pub{it: it, fut: fut, ev: ev})
		}
	}
	// One deadline for the whole batch: a PubAck that never comes (a lost
	// reply during a leader election) must not hold the batch forever.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, p := range pubs {
		select {
		case ack := <-p.fut.Ok():
			if !ack.Duplicate {
				f.m.TradeEvents.WithLabelValues(p.ev.Status).Inc()
				f.m.Receipts.WithLabelValues("published").Inc()
			} else {
				f.m.Receipts.WithLabelValues("duplicate").Inc()
			}
			_ = p.it.msg.Ack()
		case err := <-p.fut.Err():
			f.m.Receipts.WithLabelValues("publish_error").Inc()
			f.log.Warn("event not stored; receipt will be redelivered", "event_id", p.ev.EventID, "err", err)
			_ = p.it.msg.NakWithDelay(f.cfg.StoreRetry)
		case <-wctx.Done():
			f.m.Receipts.WithLabelValues("publish_error").Inc()
			f.log.Warn("no PubAck in time; receipt will be redelivered", "event_id", p.ev.EventID)
			_ = p.it.msg.NakWithDelay(f.cfg.StoreRetry)
		}
	}
}

// readReceipt reads what the tradefetcher needs of a stored push: the trade id
// from the gateway's header, else (receipts stored by older gateways) from
// the body.
func readReceipt(m jetstream.Msg) (push.Push, error) {
	if tid := m.Headers().Get(natsjs.HeaderTID); tid != "" {
		return push.Push{TID: tid}, nil
	}
	return push.Parse(m.Data())
}

// lagging reports whether trade.get returned a status behind the one the
// push announced (the docs warn the read side lags the push).
func lagging(it *item) bool {
	pushed := it.msg.Headers().Get(natsjs.HeaderStatus)
	return domain.Rank(pushed) > 0 && domain.Rank(it.trade.Status) > 0 && domain.Rank(it.trade.Status) < domain.Rank(pushed)
}

// fetchTrades calls trade.get for every receipt, Workers at a time, and
// settles the receipts that need no store work.
func (f *Fetcher) fetchTrades(ctx context.Context, items []*item) {
	var todo []*item
	for _, it := range items {
		p, err := readReceipt(it.msg)
		if err != nil || p.TID == "" {
			// The gateway verified it, so this is not Youzan's doing; keep
			// it in the stream for an operator rather than retry forever.
			f.m.Receipts.WithLabelValues("malformed").Inc()
			f.log.Error("unreadable receipt left in the stream", "subject", it.msg.Subject(), "err", err)
			_ = it.msg.Term()
			it.done = true
			continue
		}
		it.push = p
		todo = append(todo, it)
	}
	// At most Workers calls at once, by that many goroutines taking the
	// receipts in turn: one goroutine per receipt grew a fresh stack for
	// every HTTP call (runtime.copystack in the profile).
	work := make(chan *item)
	var wg sync.WaitGroup
	for range min(f.cfg.Workers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				it.trade, it.err = f.deps.Youzan.GetTrade(ctx, it.push.TID)
			}
		}()
	}
	for _, it := range todo {
		work <- it
	}
	close(work)
	wg.Wait()
	for _, it := range items {
		if it.done {
			continue
		}
		switch {
		case youzan.IsNotFound(it.err):
			// Parked rather than naked: a naked message stays ack-pending
			// while it waits, so a flood of unknown trades would hold the
			// consumer's slots and delay real receipts (docs/security.md,
			// "Receipts for unknown trades").
			it.park = true
			it.done = true
		case it.err != nil:
			n := natsjs.Delivered(it.msg)
			delay := natsjs.Step(f.cfg.RetrySchedule, n)
			if youzan.IsRetryable(it.err) {
				f.m.Receipts.WithLabelValues("retry").Inc()
				f.log.Warn("trade.get failed; will retry", "tid", it.push.TID, "delivery", n, "delay", delay, "err", it.err)
			} else {
				// Not retryable by nature (bad credentials, a revoked
				// capability): an operator must act, and the receipt waits.
				f.m.Receipts.WithLabelValues("failed").Inc()
				f.log.Error("trade.get refused; receipt kept for retry after the operator fixes it",
					"tid", it.push.TID, "delivery", n, "delay", delay, "err", it.err)
			}
			_ = it.msg.NakWithDelay(delay)
			it.done = true
		case it.trade.QRID == 0:
			f.m.Receipts.WithLabelValues("not_qr").Inc()
			_ = it.msg.Ack()
			it.done = true
		case lagging(it):
			// Youzan's read side has not caught up with the push yet.
			n := natsjs.Delivered(it.msg)
			if n <= len(f.cfg.RetrySchedule) {
				f.m.Receipts.WithLabelValues("lagging").Inc()
				f.log.Info("trade.get behind the push; will read again", "tid", it.push.TID,
					"pushed", it.msg.Headers().Get(natsjs.HeaderStatus), "read", it.trade.Status, "delivery", n)
				_ = it.msg.NakWithDelay(natsjs.Step(f.cfg.RetrySchedule, n))
				it.done = true
			}
			// Past the schedule, what trade.get says is taken as it is.
		}
	}
}
