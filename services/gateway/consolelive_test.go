package gateway

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/servicetest"
)

// An order page is rendered before it subscribes to the event stream, so
// the hub's first reading of its order may already be newer than the page
// (the console test's replay, delivered in that gap, stayed "failed" on the
// page). The page gets one "order" event at that first reading, then one per
// change; another page's subscription does not disturb it.
func TestConsoleHubTellsANewOrderPageOnce(t *testing.T) {
	b := servicetest.Start(t)
	ctx := context.Background()
	if _, err := b.Store.Reserve(ctx, domain.NewOrder{OrderID: "o-1", Name: "coffee", Price: 680}, time.Minute); err != nil {
		t.Fatal(err)
	}
	h := newConsoleHub(&Gateway{deps: Deps{Store: b.Store}, log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.running = true // the test drives checkOrders itself; no loop
	events := func(s *consoleSub) int {
		n := 0
		for {
			select {
			case m := <-s.ch:
				if m.event != "order" {
					t.Fatalf("event %q, want order", m.event)
				}
				n++
			default:
				return n
			}
		}
	}

	first, _ := h.subscribe("o-1")
	h.checkOrders(ctx)
	if n := events(first); n != 1 {
		t.Fatalf("a page that just subscribed got %d order events at the hub's first reading, want 1", n)
	}
	h.checkOrders(ctx)
	if n := events(first); n != 0 {
		t.Fatalf("%d order events with nothing changed, want 0", n)
	}

	second, _ := h.subscribe("o-1")
	h.checkOrders(ctx)
	if n, m := events(first), events(second); n != 0 || m != 1 {
		t.Fatalf("after a second page subscribed: first page %d events (want 0), second %d (want 1)", n, m)
	}

	if _, err := b.Store.AttachQR(ctx, "o-1", domain.QRCode{ID: 7, URL: "https://qr/7"}); err != nil {
		t.Fatal(err)
	}
	h.checkOrders(ctx)
	if n, m := events(first), events(second); n != 1 || m != 1 {
		t.Fatalf("after the order changed: %d and %d events, want 1 each", n, m)
	}
}
