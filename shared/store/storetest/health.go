package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// testEndpointHealth: the endpoint health the notifier replicas share
// (services/notifier/health.go) behaves the same on every backend: a
// failure streak of PauseAfter pauses, one replica claims each probe, a
// success or an operator resumes, and held deliveries are listed.
func testEndpointHealth(t *testing.T, s store.Store) {
	const ep = "https://shop.example/notify"
	p := store.HealthPolicy{PauseAfter: time.Hour, ProbeInterval: 2 * time.Minute}
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	note := func(ok bool, at time.Time) (domain.EndpointHealth, bool) {
		t.Helper()
		h, changed, err := s.NoteEndpoint(ctx(t), domain.EndpointOutcome{Endpoint: ep, OK: ok, Error: "HTTP 503", At: at}, p)
		if err != nil {
			t.Fatal(err)
		}
		return h, changed
	}

	if _, _, err := s.ResumeEndpoint(ctx(t), ep, t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("ResumeEndpoint of an endpoint with no health = %v, want ErrNotFound", err)
	}
	if h, changed := note(false, t0); changed || h.State != domain.EndpointActive || !h.FailingSince.Equal(t0) {
		t.Errorf("first failure: %+v, changed %v; want active, failing since %v", h, changed, t0)
	}
	if h, changed := note(false, t0.Add(30*time.Minute)); changed || h.State != domain.EndpointActive {
		t.Errorf("failing for 30m of a 1h PauseAfter: %+v, changed %v; want still active", h, changed)
	}
	paused := t0.Add(time.Hour)
	h, changed := note(false, paused)
	if !changed || h.State != domain.EndpointPaused || !h.NextProbeAt.Equal(paused.Add(p.ProbeInterval)) {
		t.Fatalf("failing for PauseAfter: %+v, changed %v; want paused, first probe at %v", h, changed, paused.Add(p.ProbeInterval))
	}

	// One replica claims a due probe; a second asking at the same time, or
	// one asking before it is due, gets nothing.
	due := paused.Add(p.ProbeInterval)
	if ok, err := s.ClaimEndpoint(ctx(t), ep, domain.EndpointPaused, due.Add(-time.Second), due.Add(time.Minute)); err != nil || ok {
		t.Errorf("claim before the probe is due = %v, %v; want false", ok, err)
	}
	if ok, err := s.ClaimEndpoint(ctx(t), ep, domain.EndpointPaused, due, due.Add(time.Minute)); err != nil || !ok {
		t.Errorf("claim of a due probe = %v, %v; want true", ok, err)
	}
	if ok, err := s.ClaimEndpoint(ctx(t), ep, domain.EndpointPaused, due, due.Add(time.Minute)); err != nil || ok {
		t.Errorf("second claim of the same probe = %v, %v; want false", ok, err)
	}
	if ok, err := s.ClaimEndpoint(ctx(t), ep, domain.EndpointActive, due, due.Add(time.Minute)); err != nil || ok {
		t.Errorf("claim as active of a paused endpoint = %v, %v; want false", ok, err)
	}

	// Deliveries held by the pause are pending with no next attempt.
	base := domain.Attempt{Endpoint: ep, Status: domain.StatusTradeSuccess, Event: []byte(`{}`), At: paused}
	held, retrying := base, base
	held.EventID, held.OrderID, held.Held, held.Error = "E1:TRADE_SUCCESS", "hold-1", true, "held: the endpoint is paused"
	retrying.EventID, retrying.OrderID, retrying.HTTPStatus, retrying.Error, retrying.NextAttemptAt = "E2:TRADE_SUCCESS", "hold-2", 503, "HTTP 503", due
	if _, err := s.RecordAttempts(ctx(t), []domain.Attempt{held, retrying}); err != nil {
		t.Fatal(err)
	}
	all, err := s.PendingDeliveries(ctx(t), ep, false, 10)
	if err != nil || len(all) != 2 {
		t.Errorf("pending deliveries = %d, %v; want 2", len(all), err)
	}
	heldOnly, err := s.PendingDeliveries(ctx(t), ep, true, 10)
	if err != nil || len(heldOnly) != 1 || heldOnly[0].EventID != held.EventID {
		t.Errorf("held deliveries = %+v, %v; want only %s", heldOnly, err, held.EventID)
	}
	hs, err := s.ListEndpointHealth(ctx(t))
	if err != nil || len(hs) != 1 || hs[0].Endpoint != ep || hs[0].State != domain.EndpointPaused || hs[0].Pending != 2 {
		t.Errorf("ListEndpointHealth = %+v, %v; want %s paused with 2 pending", hs, err, ep)
	}

	// An operator resumes; resuming again changes nothing.
	h, changed, err = s.ResumeEndpoint(ctx(t), ep, due)
	if err != nil || !changed || h.State != domain.EndpointActive || !h.FailingSince.IsZero() || !h.NextProbeAt.IsZero() {
		t.Errorf("ResumeEndpoint = %+v, %v, %v; want active, no failure streak, no probe", h, changed, err)
	}
	if _, changed, err := s.ResumeEndpoint(ctx(t), ep, due); err != nil || changed {
		t.Errorf("second ResumeEndpoint: changed %v, %v; want no change", changed, err)
	}
	// A success on an active endpoint changes nothing either.
	if h, changed := note(true, due.Add(time.Second)); changed || h.State != domain.EndpointActive || h.LastError != "" {
		t.Errorf("success while active: %+v, changed %v", h, changed)
	}
}

// testHeldMarkLeavesDeliveredAlone: a resumed endpoint's drain marks a held
// delivery "queued again"; if that delivery was delivered meanwhile, it
// stays delivered, with no error and no next attempt that would make it read
// as pending. Both in one batch and in two calls (the Postgres store writes
// a batch of distinct deliveries in one statement, repeats one by one).
func testHeldMarkLeavesDeliveredAlone(t *testing.T, s store.Store) {
	for i, split := range []bool{false, true} {
		base := domain.Attempt{EventID: []string{"E1:TRADE_SUCCESS", "E2:TRADE_SUCCESS"}[i], Endpoint: "http://m.example/notify",
			OrderID: "o-1", Status: domain.StatusTradeSuccess, Event: []byte(`{}`)}
		ok := base
		ok.Delivered, ok.HTTPStatus, ok.At = true, 200, time.Now().UTC()
		queued := base
		queued.Held, queued.Error, queued.NextAttemptAt, queued.At = true, "queued again: the endpoint resumed", time.Now().UTC(), time.Now().UTC()
		var d domain.Delivery
		if split {
			if _, err := s.RecordAttempts(ctx(t), []domain.Attempt{ok}); err != nil {
				t.Fatal(err)
			}
			ds, err := s.RecordAttempts(ctx(t), []domain.Attempt{queued})
			if err != nil {
				t.Fatal(err)
			}
			d = ds[0]
		} else {
			ds, err := s.RecordAttempts(ctx(t), []domain.Attempt{ok, queued})
			if err != nil {
				t.Fatal(err)
			}
			d = ds[1]
		}
		if d.State() != domain.DeliveryDelivered || d.LastError != "" || !d.NextAttemptAt.IsZero() || d.Attempts != 1 {
			t.Errorf("split %v: after a held mark on a delivered delivery: state %s, last error %q, next attempt %v, attempts %d; want delivered, no error, none, 1",
				split, d.State(), d.LastError, d.NextAttemptAt, d.Attempts)
		}
	}
}
