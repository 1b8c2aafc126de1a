package store

import (
	"fmt"
	"sort"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
)

// HistoryRow is one row of an order's status history, as the timeline reads it.
type HistoryRow struct {
	Source  string // "youzan" or "expiry"
	TID     string
	Status  string
	From    string
	Changed bool
	Payment int64
	At      time.Time
}

// Timeline merges what both backends read for OrderTimeline into one list
// in time order. At equal times creation comes first, then the history,
// then deliveries, so that a status change precedes the pushes it caused
// even on a coarse clock.
func Timeline(o domain.Order, hist []HistoryRow, attempts []domain.AttemptRecord, superseded []domain.Delivery) []domain.TimelineEntry {
	out := make([]domain.TimelineEntry, 0, 1+len(hist)+len(attempts)+len(superseded))
	created := domain.TimelineEntry{At: o.CreatedAt, Kind: domain.TimelineOrderCreated, Status: domain.StatusWaitBuyerPay}
	if o.QRID != 0 {
		created.Detail = fmt.Sprintf("qr_id %d", o.QRID)
	}
	out = append(out, created)
	everPaid := false
	for _, h := range hist {
		e := domain.TimelineEntry{At: h.At, Kind: domain.TimelineObservation, Status: h.Status}
		if h.Source == "expiry" {
			e.Detail = "expired unpaid"
		} else {
			e.Detail = "trade " + h.TID + " read from Youzan"
		}
		if h.Changed {
			e.Kind = domain.TimelineStatusChanged
			e.Detail += ", from " + h.From
			// The same id the tradefetcher published (domain.FromOrder).
			tid := h.TID
			if h.Status == domain.StatusTradeClosed && !everPaid {
				tid = ""
			}
			e.EventID = domain.EventID(tid, o.OrderID, h.Status)
			if domain.IsPaid(h.Status) {
				everPaid = true
			}
		}
		out = append(out, e)
	}
	for _, a := range attempts {
		out = append(out, domain.TimelineEntry{
			At: a.At, Kind: domain.TimelineAttempt, Status: a.Status, EventID: a.EventID, Endpoint: a.Endpoint,
			Attempt: a.Attempt, HTTPStatus: a.HTTPStatus, Error: a.Error, DurationMS: a.DurationMS,
			Excerpt: a.Excerpt, ErrorClass: a.ErrorClass, Outcome: a.Outcome,
		})
	}
	for _, d := range superseded {
		out = append(out, domain.TimelineEntry{
			At: d.SupersededAt, Kind: domain.TimelineSuperseded, Status: d.Status, EventID: d.EventID,
			Endpoint: d.Endpoint, Detail: d.LastError,
		})
	}
	rank := map[string]int{domain.TimelineOrderCreated: 0, domain.TimelineObservation: 1, domain.TimelineStatusChanged: 1}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		ri, ok := rank[out[i].Kind]
		if !ok {
			ri = 2
		}
		rj, ok := rank[out[j].Kind]
		if !ok {
			rj = 2
		}
		return ri < rj
	})
	return out
}
