package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// testAttemptLog: every attempt that was sent leaves one row, numbered as
// the delivery counts it, with its duration, answer and error class; a
// superseded one leaves none; the excerpt is bounded valid UTF-8.
func testAttemptLog(t *testing.T, s store.Store) {
	t0 := time.Now().Add(-time.Minute)
	long := strings.Repeat("é", domain.MaxExcerptLen) + "\xff\x00tail" // 2 KiB, invalid UTF-8 and a NUL
	fail := domain.Attempt{EventID: "T1:TRADE_SUCCESS", Endpoint: "https://a.example/n", OrderID: "o1", Status: "TRADE_SUCCESS",
		Event: []byte(`{}`), HTTPStatus: 503, Error: "merchant answered HTTP 503", ErrorClass: domain.AttemptErrorHTTP,
		Excerpt: long, Duration: 1500 * time.Millisecond, NextAttemptAt: t0.Add(time.Minute), At: t0}
	other := domain.Attempt{EventID: "T1:TRADE_SUCCESS", Endpoint: "https://b.example/n", OrderID: "o1", Status: "TRADE_SUCCESS",
		Event: []byte(`{}`), Error: "post: timeout", ErrorClass: domain.AttemptErrorTimeout, Duration: 5 * time.Second,
		GiveUp: true, At: t0.Add(time.Second)}
	ok := domain.Attempt{EventID: "T1:TRADE_SUCCESS", Endpoint: "https://a.example/n", OrderID: "o1", Status: "TRADE_SUCCESS",
		HTTPStatus: 200, Excerpt: "success", Duration: 12 * time.Millisecond, Delivered: true, At: t0.Add(2 * time.Second)}
	sup := domain.Attempt{EventID: "T1:TRADE_PAID", Endpoint: "https://a.example/n", OrderID: "o1", Status: "TRADE_PAID",
		Superseded: true, Error: "superseded by TRADE_SUCCESS", At: t0.Add(3 * time.Second)}
	if _, err := s.RecordAttempts(ctx(t), []domain.Attempt{fail, other, sup}); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	if _, err := s.RecordAttempts(ctx(t), []domain.Attempt{ok}); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	got, err := s.AttemptsForEvent(ctx(t), "T1:TRADE_SUCCESS")
	if err != nil {
		t.Fatalf("AttemptsForEvent: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("AttemptsForEvent = %d rows %+v, want 3", len(got), got)
	}
	first, second, third := got[0], got[1], got[2]
	if first.Endpoint != fail.Endpoint || first.Attempt != 1 || first.HTTPStatus != 503 || first.DurationMS != 1500 ||
		first.ErrorClass != domain.AttemptErrorHTTP || first.Outcome != domain.AttemptRetry || first.OrderID != "o1" ||
		first.Status != "TRADE_SUCCESS" || !first.At.Equal(us(t0)) || first.Error != fail.Error {
		t.Errorf("failed attempt logged as %+v", first)
	}
	if len(first.Excerpt) > domain.MaxExcerptLen || !strings.HasPrefix(first.Excerpt, "éé") ||
		strings.ContainsRune(first.Excerpt, 0) || !utf8Valid(first.Excerpt) {
		t.Errorf("excerpt not bounded valid UTF-8: %d bytes", len(first.Excerpt))
	}
	if second.Endpoint != other.Endpoint || second.Attempt != 1 || second.HTTPStatus != 0 ||
		second.ErrorClass != domain.AttemptErrorTimeout || second.Outcome != domain.AttemptGivenUp || second.DurationMS != 5000 {
		t.Errorf("timed-out attempt logged as %+v", second)
	}
	if third.Endpoint != ok.Endpoint || third.Attempt != 2 || third.HTTPStatus != 200 || third.Excerpt != "success" ||
		third.ErrorClass != "" || third.Outcome != domain.AttemptDelivered || third.DurationMS != 12 {
		t.Errorf("delivered attempt logged as %+v", third)
	}
	checkUTC(t, "attempt at", first.At, second.At, third.At)
	if sup, err := s.AttemptsForEvent(ctx(t), "T1:TRADE_PAID"); err != nil || len(sup) != 0 {
		t.Errorf("a superseded delivery logged attempts: %+v, %v", sup, err)
	}
	if none, err := s.AttemptsForEvent(ctx(t), "no-such-event"); err != nil || len(none) != 0 {
		t.Errorf("AttemptsForEvent(unknown) = %+v, %v", none, err)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

// testOrderTimeline: creation, readings, status changes (with the event id
// the tradefetcher publishes), attempts and superseded deliveries come back
// in time order; an unknown order is ErrNotFound.
func testOrderTimeline(t *testing.T, s store.Store) {
	if _, err := s.OrderTimeline(ctx(t), "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("OrderTimeline(unknown) = %v, want ErrNotFound", err)
	}
	o := create(t, s, "tl-1", 8801)
	create(t, s, "tl-other", 8802)
	base := time.Now()
	at := func(d time.Duration) time.Time { return base.Add(d) }
	o1 := obs(8801, domain.StatusWaitBuyerPay)
	o1.ObservedAt = at(time.Second)
	o2 := paidObs(8801, domain.StatusTradePaid)
	o2.ObservedAt = at(2 * time.Second)
	other := paidObs(8802, domain.StatusTradePaid)
	observe(t, s, o1, o2, other)
	ev := domain.EventID("T8801", "tl-1", domain.StatusTradePaid)
	if _, err := s.RecordAttempts(ctx(t), []domain.Attempt{
		{EventID: ev, Endpoint: "https://a.example", OrderID: "tl-1", Status: domain.StatusTradePaid, HTTPStatus: 500,
			ErrorClass: domain.AttemptErrorHTTP, Error: "HTTP 500", Excerpt: "oops", Duration: 3 * time.Millisecond,
			NextAttemptAt: at(time.Hour), At: at(3 * time.Second)},
		{EventID: ev, Endpoint: "https://a.example", OrderID: "tl-1", Status: domain.StatusTradePaid, HTTPStatus: 200,
			Delivered: true, At: at(5 * time.Second)},
		{EventID: "x:WAIT_BUYER_PAY", Endpoint: "https://a.example", OrderID: "tl-1", Status: domain.StatusWaitBuyerPay,
			Superseded: true, Error: "superseded by TRADE_PAID", At: at(4 * time.Second)},
		{EventID: "T8802:TRADE_PAID", Endpoint: "https://a.example", OrderID: "tl-other", Status: domain.StatusTradePaid,
			HTTPStatus: 200, Delivered: true, At: at(4 * time.Second)},
	}); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	got, err := s.OrderTimeline(ctx(t), "tl-1")
	if err != nil {
		t.Fatalf("OrderTimeline: %v", err)
	}
	var kinds []string
	for i, e := range got {
		kinds = append(kinds, e.Kind)
		if i > 0 && e.At.Before(got[i-1].At) {
			t.Errorf("entry %d (%s at %v) before entry %d (%v)", i, e.Kind, e.At, i-1, got[i-1].At)
		}
	}
	want := []string{domain.TimelineOrderCreated, domain.TimelineObservation, domain.TimelineStatusChanged,
		domain.TimelineAttempt, domain.TimelineSuperseded, domain.TimelineAttempt}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("timeline kinds = %v, want %v", kinds, want)
	}
	if c := got[0]; !c.At.Equal(o.CreatedAt) || c.Detail != "qr_id 8801" {
		t.Errorf("creation entry %+v", c)
	}
	if e := got[2]; e.Status != domain.StatusTradePaid || e.EventID != ev || !e.At.Equal(us(o2.ObservedAt)) {
		t.Errorf("status change entry %+v, want event %s", e, ev)
	}
	if e := got[3]; e.EventID != ev || e.Attempt != 1 || e.HTTPStatus != 500 || e.Excerpt != "oops" ||
		e.DurationMS != 3 || e.ErrorClass != domain.AttemptErrorHTTP || e.Outcome != domain.AttemptRetry {
		t.Errorf("first attempt entry %+v", e)
	}
	if e := got[4]; e.EventID != "x:WAIT_BUYER_PAY" || e.Detail != "superseded by TRADE_PAID" {
		t.Errorf("superseded entry %+v", e)
	}
	if e := got[5]; e.Attempt != 2 || e.Outcome != domain.AttemptDelivered {
		t.Errorf("second attempt entry %+v", e)
	}
}

// testAttemptRetention: DeleteAttemptsBefore removes only older rows, at
// most limit per call, so the sweeper can loop in small batches.
func testAttemptRetention(t *testing.T, s store.Store) {
	old := time.Now().Add(-40 * 24 * time.Hour)
	var batch []domain.Attempt
	for i := range 25 {
		batch = append(batch, domain.Attempt{EventID: "old", Endpoint: fmt.Sprintf("e%d", i), OrderID: "o",
			HTTPStatus: 500, NextAttemptAt: time.Now(), At: old.Add(time.Duration(i) * time.Second)})
	}
	batch = append(batch, domain.Attempt{EventID: "new", Endpoint: "e", OrderID: "o", HTTPStatus: 200, Delivered: true, At: time.Now()})
	if _, err := s.RecordAttempts(ctx(t), batch); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	cutoff := time.Now().Add(-30 * 24 * time.Hour)
	var counts []int
	for {
		n, err := s.DeleteAttemptsBefore(ctx(t), cutoff, 10)
		if err != nil {
			t.Fatalf("DeleteAttemptsBefore: %v", err)
		}
		counts = append(counts, n)
		if n < 10 {
			break
		}
	}
	if fmt.Sprint(counts) != "[10 10 5]" {
		t.Errorf("deleted per call = %v, want [10 10 5]", counts)
	}
	if got, _ := s.AttemptsForEvent(ctx(t), "old"); len(got) != 0 {
		t.Errorf("%d old attempts survived retention", len(got))
	}
	if got, _ := s.AttemptsForEvent(ctx(t), "new"); len(got) != 1 {
		t.Errorf("recent attempts after retention = %d, want 1", len(got))
	}
	// The delivery's state is not the log's: it stays.
	if ds, err := s.DeliveriesForEvent(ctx(t), "old"); err != nil || len(ds) != 25 {
		t.Errorf("deliveries after retention = %d, %v; want 25", len(ds), err)
	}
}
