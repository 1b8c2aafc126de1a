package storetest

import (
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// testAudit: operator actions are kept in order with who, what and when,
// and an order page finds its own, newest first.
func testAudit(t *testing.T, s store.Store) {
	at := time.Date(2026, 3, 1, 8, 0, 0, 123456000, time.UTC)
	entries := []domain.AuditEntry{
		{At: at, Who: "s1 (li)", Action: "replay", OrderID: "au-1", EventID: "ev-1", Detail: "1 delivery reopened"},
		{At: at.Add(time.Second), Who: "s2", Action: "login"},
		{At: at.Add(2 * time.Second), Who: "s1 (li)", Action: "close", OrderID: "au-1", Detail: "closed"},
	}
	for i, e := range entries {
		got, err := s.RecordAudit(ctx(t), e)
		if err != nil {
			t.Fatalf("RecordAudit: %v", err)
		}
		if got.ID == 0 {
			t.Fatalf("RecordAudit returned no id")
		}
		entries[i].ID = got.ID
	}
	checkUTC(t, "audit at", entries[0].At)
	forOrder, err := s.ListAudit(ctx(t), store.AuditFilter{OrderID: "au-1"})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if len(forOrder) != 2 || forOrder[0] != entries[2] || forOrder[1] != entries[0] {
		t.Fatalf("ListAudit(au-1) = %+v, want the close then the replay:\n%+v", forOrder, []domain.AuditEntry{entries[2], entries[0]})
	}
	all, err := s.ListAudit(ctx(t), store.AuditFilter{Limit: 2})
	if err != nil || len(all) != 2 || all[0].Action != "close" || all[1].Action != "login" {
		t.Fatalf("ListAudit(limit 2) = %+v, %v; want the two newest", all, err)
	}
	if e, err := s.RecordAudit(ctx(t), domain.AuditEntry{Who: "s3", Action: "logout"}); err != nil || e.At.IsZero() {
		t.Fatalf("RecordAudit without a time = %+v, %v; want now", e, err)
	}
}

// testPaidSince: the console's "payments today" counts paid orders from a
// moment on and sums what was paid, not what was asked.
func testPaidSince(t *testing.T, s store.Store) {
	since := time.Now().Add(-time.Minute)
	if n, sum, err := s.PaidSince(ctx(t), since); err != nil || n != 0 || sum != 0 {
		t.Fatalf("PaidSince on an empty store = %d, %d, %v", n, sum, err)
	}
	create(t, s, "ps-1", 8101)
	create(t, s, "ps-2", 8102)
	create(t, s, "ps-unpaid", 8103)
	observe(t, s, paidObs(8101, domain.StatusTradeSuccess), paidObs(8102, domain.StatusTradeSuccess))
	n, sum, err := s.PaidSince(ctx(t), since)
	if err != nil || n != 2 || sum != 2*990 {
		t.Fatalf("PaidSince = %d orders, %d fen, %v; want 2 and %d", n, sum, err, 2*990)
	}
	if n, _, err := s.PaidSince(ctx(t), time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("PaidSince(future) = %d, %v; want 0", n, err)
	}
}
