package tradefetcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan"
)

// QRTradeLister lists the trades of one QR code; *youzan.Client implements it.
type QRTradeLister = youzan.QRTradeLister

// Sweeper catches what pushes miss. Reconciliation asks
// youzan.trades.qr.get about unpaid orders and feeds any paid trade into the
// pipeline as a receipt, exactly as if Youzan had pushed it. Expiry closes
// orders unpaid after OrderTTL, after asking Youzan once more. The
// tradefetcher runs it only while it holds the sweep lease (Fetcher.Run),
// to spare Youzan's rate limit; should two replicas ever overlap, receipts
// and close events carry fixed Nats-Msg-Ids and the store's transitions are
// idempotent, so doubled work cannot change the outcome.
type Sweeper struct {
	cfg config.Sweep
	st  store.Store
	js  jetstream.JetStream
	yz  QRTradeLister
	m   *metrics.Metrics
	log *slog.Logger
	now func() time.Time
}

// NewSweeper fills defaults.
func NewSweeper(cfg config.Sweep, st store.Store, js jetstream.JetStream, yz QRTradeLister, m *metrics.Metrics, log *slog.Logger) *Sweeper {
	if cfg.Interval <= 0 {
		cfg.Interval = config.DefaultReconcileInterval
	}
	if cfg.OrderTTL <= 0 {
		cfg.OrderTTL = config.DefaultOrderTTL
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.LateInterval <= 0 {
		cfg.LateInterval = config.DefaultReconcileLateInterval
	}
	if log == nil {
		log = slog.Default()
	}
	return &Sweeper{cfg: cfg, st: st, js: js, yz: yz, m: m, log: log.With("component", "sweeper"), now: time.Now}
}

// Run sweeps every Interval, and reconciles late payments every
// LateInterval, until ctx ends.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	late := time.NewTicker(s.cfg.LateInterval)
	defer late.Stop()
	prune := time.NewTicker(pruneInterval)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-prune.C:
			if _, err := s.PruneAttempts(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("attempt log retention incomplete; the next run retries", "err", err)
			}
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweep incomplete; the next one retries", "err", err)
			}
		case <-late.C:
			if err := s.ReconcileLate(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("late-payment reconciliation incomplete; the next one retries", "err", err)
			}
		}
	}
}

// The attempt-log retention sweep: every pruneInterval, rows older than
// ATTEMPT_LOG_RETENTION go pruneBatch per statement with prunePause between
// statements, so that a month of backlog never holds long locks nor starves
// the notifier's RecordAttempts of the database.
const (
	pruneInterval = 10 * time.Minute
	pruneBatch    = 1000
	prunePause    = 100 * time.Millisecond
)

// PruneAttempts deletes attempt-log rows older than AttemptLogRetention,
// in batches, and returns how many it deleted.
func (s *Sweeper) PruneAttempts(ctx context.Context) (int, error) {
	retention := s.cfg.AttemptLogRetention
	if retention <= 0 {
		retention = config.DefaultAttemptLogRetention
	}
	before := s.now().Add(-retention)
	total := 0
	for {
		n, err := s.st.DeleteAttemptsBefore(ctx, before, pruneBatch)
		total += n
		if s.m != nil {
			s.m.AttemptsPruned.Add(float64(n))
		}
		if err != nil {
			return total, fmt.Errorf("prune attempt log: %w", err)
		}
		if n < pruneBatch {
			if total > 0 {
				s.log.Info("attempt log pruned", "deleted", total, "older_than", before.UTC().Format(time.RFC3339))
			}
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(prunePause):
		}
	}
}

// ReconcileLate asks Youzan about orders closed unpaid by expiry within the
// last LateWindow: their QR can still be paid (a buyer who scanned at minute
// 29 pays at minute 31), and if that push is lost nothing else would find
// the payment. A paid trade goes into the pipeline as a receipt; the store
// then moves the closed order to the paid status (domain.Advances) and the
// merchant is told. Orders are picked by creation time, since an expiry
// closes an order ORDER_TTL after it.
func (s *Sweeper) ReconcileLate(ctx context.Context) error {
	if s.cfg.LateWindow <= 0 {
		return nil
	}
	now := s.now()
	f := store.OrderFilter{
		Status:        domain.StatusTradeClosed,
		CreatedAfter:  now.Add(-s.cfg.OrderTTL - s.cfg.LateWindow),
		CreatedBefore: now.Add(-s.cfg.OrderTTL),
		Limit:         s.cfg.Batch,
	}
	var errs []error
	for {
		orders, err := s.st.ListOrders(ctx, f)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("list closed orders: %w", err))...)
		}
		for _, o := range orders {
			if o.EverPaid || o.QRID == 0 {
				continue // a refund, or never had a QR to pay
			}
			if n, err := s.reconcile(ctx, o); err != nil {
				errs = append(errs, err)
			} else if n > 0 {
				s.log.Warn("closed order paid after ORDER_TTL; its payment goes to the merchant", "order_id", o.OrderID, "qr_id", o.QRID)
			}
		}
		if len(orders) < f.Limit || ctx.Err() != nil {
			return errors.Join(errs...)
		}
		last := orders[len(orders)-1]
		f.AfterCreatedAt, f.AfterOrderID = last.CreatedAt, last.OrderID
	}
}

// Sweep runs one reconciliation and one expiry pass.
func (s *Sweeper) Sweep(ctx context.Context) error {
	now := s.now()
	// Reconcile orders old enough that their push is overdue but young
	// enough to be payable.
	recent, err := s.st.UnpaidOrders(ctx, now.Add(-s.cfg.OrderTTL), now.Add(-s.cfg.Interval), s.cfg.Batch)
	if err != nil {
		return fmt.Errorf("list unpaid orders: %w", err)
	}
	var errs []error
	for _, o := range recent {
		if _, err := s.reconcile(ctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	expired, err := s.st.UnpaidOrders(ctx, time.Unix(0, 0), now.Add(-s.cfg.OrderTTL), s.cfg.Batch)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list expired orders: %w", err))...)
	}
	for _, o := range expired {
		if err := s.expire(ctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.republishClosed(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reconcile asks Youzan for paid trades of o's QR and publishes a receipt
// for each; it reports how many it found.
func (s *Sweeper) reconcile(ctx context.Context, o domain.Order) (int, error) {
	tids, err := youzan.PaidTIDs(ctx, s.yz, o.QRID)
	if err != nil {
		s.m.Reconciled.WithLabelValues("error").Inc()
		return 0, fmt.Errorf("trades.qr.get for order %s: %w", o.OrderID, err)
	}
	n := 0
	for _, tid := range tids {
		if err := s.publishReceipt(ctx, tid); err != nil {
			s.m.Reconciled.WithLabelValues("error").Inc()
			return n, err
		}
		n++
		s.log.Info("paid trade found without its push; fed into the pipeline", "order_id", o.OrderID, "qr_id", o.QRID, "tid", tid)
	}
	if n > 0 {
		s.m.Reconciled.WithLabelValues("found").Inc()
	} else {
		s.m.Reconciled.WithLabelValues("unpaid").Inc()
	}
	return n, nil
}

func (s *Sweeper) publishReceipt(ctx context.Context, tid string) error {
	return natsjs.PublishReconcileReceipt(ctx, s.js, tid, s.now())
}

// expire checks Youzan once more, then closes o and tells the merchant.
// The store moves first, and only from WAIT_BUYER_PAY, so a payment that
// lands in between wins and no close is announced for a paid order. The
// event follows; if the process dies before it is stored, republishClosed
// announces it on a later sweep.
func (s *Sweeper) expire(ctx context.Context, o domain.Order) error {
	found, err := s.reconcile(ctx, o)
	if err != nil {
		return err
	}
	if found > 0 {
		return nil // paid after all: the pipeline takes it from here
	}
	c, err := s.st.CloseExpired(ctx, o.OrderID, s.now())
	if err != nil {
		return fmt.Errorf("close %s: %w", o.OrderID, err)
	}
	if !c.Changed {
		return nil
	}
	s.m.Expired.Inc()
	s.log.Info("unpaid order closed after ORDER_TTL", "order_id", o.OrderID, "qr_id", o.QRID)
	// The close is stored; a stop signal now must not keep its announcement
	// from going out.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.publishClosed(pctx, c.Order)
}

// publishClosed announces an expired order's TRADE_CLOSED; its fixed event
// id makes repeats no-ops.
func (s *Sweeper) publishClosed(ctx context.Context, o domain.Order) error {
	ev := domain.FromOrder(o)
	msg := nats.NewMsg(natsjs.StatusSubject(ev.Status))
	msg.Data = ev.Encode()
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.EventID))
	if err != nil {
		return fmt.Errorf("publish close of %s: %w", o.OrderID, err)
	}
	if !ack.Duplicate {
		s.m.TradeEvents.WithLabelValues(ev.Status).Inc()
	}
	return nil
}

// republishClosed repeats the close event of unpaid orders closed in about
// the last 30 sweeps, covering a crash between closing an order and storing
// its event (or a publish that failed). Within JetStream's duplicate window
// the repeats are dropped by event id, and the notifier skips endpoints
// already told, so repeating is harmless.
func (s *Sweeper) republishClosed(ctx context.Context, now time.Time) error {
	f := store.OrderFilter{
		Status:        domain.StatusTradeClosed,
		CreatedAfter:  now.Add(-s.cfg.OrderTTL - 30*s.cfg.Interval),
		CreatedBefore: now.Add(-s.cfg.OrderTTL),
		Limit:         s.cfg.Batch,
	}
	for page := 0; page < 50; page++ {
		orders, err := s.st.ListOrders(ctx, f)
		if err != nil {
			return fmt.Errorf("list closed orders: %w", err)
		}
		for _, o := range orders {
			if o.EverPaid {
				continue
			}
			if err := s.publishClosed(ctx, o); err != nil {
				return err
			}
		}
		if len(orders) < f.Limit {
			return nil
		}
		last := orders[len(orders)-1]
		f.AfterCreatedAt, f.AfterOrderID = last.CreatedAt, last.OrderID
	}
	return nil
}
