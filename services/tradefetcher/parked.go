package tradefetcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/youzan"
)

// Receipts whose trade Youzan does not know are parked in the store and the
// message is acked, so the consumer's ack-pending count falls back to zero
// however many there are. runParked asks Youzan again on the fetch schedule,
// puts a receipt back into the stream once its trade exists (the consumer
// then handles it like any other), and gives it up as dead once it is older
// than FETCH_GIVE_UP_AFTER.

const (
	// parkedBatch receipts are taken per store round trip.
	parkedBatch = 200
	// parkedWorkers trade.get calls for parked receipts run at once: few,
	// so that retries of unknown trades leave Youzan's capacity (and the
	// CPU) to fresh receipts.
	parkedWorkers = 4
	// parkedLease keeps a taken receipt from other replicas while one
	// retries it; a replica that dies leaves it due again after this.
	parkedLease = time.Minute
)

// park stores the not-found receipts of a batch in one transaction and acks
// them once that is durable; if the store fails they are naked and come
// back.
func (f *Fetcher) park(ctx context.Context, items []*item) {
	var rs []domain.ParkedReceipt
	var its []*item
	now := time.Now().UTC()
	for _, it := range items {
		if !it.park {
			continue
		}
		h := it.msg.Headers()
		received, _ := time.Parse(time.RFC3339Nano, h.Get(natsjs.HeaderReceivedAt))
		rs = append(rs, domain.ParkedReceipt{
			TID:        it.push.TID,
			Type:       strings.TrimPrefix(it.msg.Subject(), natsjs.WebhookSubject("")),
			Status:     h.Get(natsjs.HeaderStatus),
			Body:       it.msg.Data(),
			ReceivedAt: received,
			LastError:  it.err.Error(),
			LastTryAt:  now,
			NextTryAt:  f.nextTry(now, now, 1),
		})
		its = append(its, it)
	}
	if len(rs) == 0 {
		return
	}
	if err := f.deps.Store.ParkReceipts(ctx, rs); err != nil {
		f.log.Error("store unavailable; unknown-trade receipts will be redelivered", "receipts", len(rs), "err", err)
		for _, it := range its {
			f.m.Receipts.WithLabelValues("store_error").Inc()
			_ = it.msg.NakWithDelay(f.cfg.StoreRetry)
		}
		return
	}
	for _, it := range its {
		f.m.Receipts.WithLabelValues("parked").Inc()
		f.m.ReceiptsParked.Inc()
		_ = it.msg.Ack()
	}
	f.log.Info("trade not found; receipts parked for retry", "receipts", len(rs), "first_tid", rs[0].TID)
}

// nextTry is when a parked receipt first seen at firstSeen, after attempts
// trade.get calls, is asked about again: the schedule's step, but no later
// than the give-up time, so that FETCH_GIVE_UP_AFTER is kept at any value.
func (f *Fetcher) nextTry(now, firstSeen time.Time, attempts int) time.Time {
	next := now.Add(natsjs.Step(f.cfg.RetrySchedule, attempts))
	if limit := firstSeen.Add(f.cfg.GiveUpAfter); limit.After(now) && limit.Before(next) {
		next = limit
	}
	return next
}

// runParked retries parked receipts every ParkPoll until ctx ends.
func (f *Fetcher) runParked(ctx context.Context) {
	t := time.NewTicker(f.cfg.ParkPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := f.retryParked(ctx)
			if err != nil {
				if ctx.Err() == nil {
					f.log.Warn("retrying parked receipts failed; the next round tries again", "err", err)
				}
				break
			}
			if n < parkedBatch {
				break
			}
		}
	}
}

// retryParked handles one batch of due parked receipts and reports how many
// it took.
func (f *Fetcher) retryParked(ctx context.Context) (int, error) {
	due, err := f.deps.Store.DueReceipts(ctx, time.Now(), parkedLease, parkedBatch)
	if err != nil {
		return 0, err
	}
	sem := make(chan struct{}, parkedWorkers)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		dead []string
	)
	for _, r := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			gaveUp, err := f.retryOne(ctx, r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if gaveUp {
				dead = append(dead, r.TID)
			}
		}()
	}
	wg.Wait()
	if len(dead) > 0 {
		f.log.Warn("trade still not found after FETCH_GIVE_UP_AFTER; receipts kept as dead (yzpay receipts list --state dead)",
			"receipts", len(dead), "first_tid", dead[0], "give_up_after", f.cfg.GiveUpAfter)
	}
	return len(due), errors.Join(errs...)
}

// retryOne asks Youzan about one parked receipt and acts on the answer.
func (f *Fetcher) retryOne(ctx context.Context, r domain.ParkedReceipt) (gaveUp bool, err error) {
	_, gerr := f.deps.Youzan.GetTrade(ctx, r.TID)
	if gerr == nil {
		// The trade exists now: back into the pipeline, then forget it.
		if err := f.republish(ctx, r); err != nil {
			return false, err // the lease runs out and it is tried again
		}
		f.m.Receipts.WithLabelValues("found_later").Inc()
		f.log.Info("parked receipt's trade found; receipt back in the pipeline", "tid", r.TID, "attempts", r.Attempts+1)
		return false, f.deps.Store.ResolveReceipt(ctx, r.TID, r.Attempts)
	}
	if ctx.Err() != nil {
		return false, nil // the lease runs out and another round retries it
	}
	now := time.Now().UTC()
	try := domain.ReceiptTry{At: now, Error: gerr.Error()}
	if youzan.IsNotFound(gerr) && now.Sub(r.FirstSeen) >= f.cfg.GiveUpAfter {
		try.Dead = true
	} else {
		// Only "not found" gives a receipt up: while Youzan fails we cannot
		// tell, and an outage must not kill receipts.
		try.NextTryAt = f.nextTry(now, r.FirstSeen, r.Attempts+1)
	}
	if _, err := f.deps.Store.RecordReceiptTry(ctx, r.TID, try); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return false, nil // resolved meanwhile by another replica
		}
		return false, err
	}
	if try.Dead {
		f.m.Receipts.WithLabelValues("given_up").Inc()
		f.m.ReceiptsGivenUp.Inc()
		f.log.Debug("parked receipt given up", "tid", r.TID, "attempts", r.Attempts+1, "first_seen", r.FirstSeen)
	}
	return try.Dead, nil
}

// republish puts a parked receipt back on its webhook subject with the
// headers the gateway gave it. The msg id names the attempt, so two replicas
// racing on one receipt publish it once.
func (f *Fetcher) republish(ctx context.Context, r domain.ParkedReceipt) error {
	typ := r.Type
	if typ == "" {
		typ = natsjs.ReconcileType
	}
	msg := nats.NewMsg(natsjs.WebhookSubject(typ))
	msg.Data = r.Body
	msg.Header.Set(natsjs.HeaderTID, r.TID)
	if r.Status != "" {
		msg.Header.Set(natsjs.HeaderStatus, r.Status)
	}
	if !r.ReceivedAt.IsZero() {
		msg.Header.Set(natsjs.HeaderReceivedAt, r.ReceivedAt.UTC().Format(time.RFC3339Nano))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id := fmt.Sprintf("parked:%s:%d", r.TID, r.Attempts)
	if _, err := f.deps.JS.PublishMsg(pctx, msg, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("republish parked receipt %s: %w", r.TID, err)
	}
	return nil
}
