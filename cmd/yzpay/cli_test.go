package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/store/sqlite"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// An operator lists given-up deliveries from the store yzpay serve uses.
func TestDeliveriesList(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no envrc here
	t.Setenv("DATA_DIR", dir)
	t.Setenv("DATABASE_URL", "")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "yzpay.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.RecordAttempts(ctx, []domain.Attempt{
		{EventID: "E1:TRADE_SUCCESS", Endpoint: "https://shop.example/hook?token=s3cret", OrderID: "o-1", Status: "TRADE_SUCCESS",
			Event: []byte(`{}`), HTTPStatus: 500, Error: "merchant answered HTTP 500", GiveUp: true, At: now},
		{EventID: "E2:TRADE_SUCCESS", Endpoint: "https://shop.example/hook?token=s3cret", OrderID: "o-2", Status: "TRADE_SUCCESS",
			Event: []byte(`{}`), HTTPStatus: 200, Delivered: true, At: now},
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, errs := runCLI(t, "deliveries", "list", "--state", "failed")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "E1:TRADE_SUCCESS") || strings.Contains(out, "E2:TRADE_SUCCESS") {
		t.Errorf("failed list shows the wrong rows:\n%s", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("the endpoint's token is printed:\n%s", out)
	}
	if code, _, errs := runCLI(t, "deliveries", "list", "--state", "lost"); code != 2 || !strings.Contains(errs, "--state") {
		t.Errorf("bad --state: exit %d, %q", code, errs)
	}
	// Replaying needs the running notifier's broker; without NATS_URL it says so.
	t.Setenv("NATS_URL", "")
	if code, _, errs := runCLI(t, "deliveries", "replay", "E1:TRADE_SUCCESS"); code != 2 || !strings.Contains(errs, "NATS_URL") {
		t.Errorf("replay without NATS_URL: exit %d, %q", code, errs)
	}
}

func TestHelpAndVersion(t *testing.T) {
	if code, out, _ := runCLI(t, "--help"); code != 0 || !strings.Contains(out, "yzpay serve") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	if code, _, errs := runCLI(t, "help", "serve"); code != 0 || !strings.Contains(errs, "--sandbox") {
		t.Errorf("help serve: exit %d\n%s", code, errs)
	}
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "yzpay ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if code, _, errs := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: exit %d %q", code, errs)
	}
}

// Outside sandbox mode a missing setting stops serve with one line naming
// every missing variable, and no secret value.
func TestServeRefusesWithoutConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, v := range []string{"YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID", "GATEWAY_API_KEY",
		"SELF_SECRET", "PUSH_API", "YOUZAN_MODE"} {
		t.Setenv(v, "")
	}
	code, _, errs := runCLI(t, "serve")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, v := range []string{"GATEWAY_API_KEY", "SELF_SECRET", "PUSH_API", "YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID"} {
		if !strings.Contains(errs, v) {
			t.Errorf("error does not name %s: %q", v, errs)
		}
	}
	if n := strings.Count(strings.TrimSpace(errs), "\n"); n != 0 {
		t.Errorf("want one line, got:\n%s", errs)
	}
}

// An operator lists dead receipts (trades Youzan never knew) and replays one:
// it becomes due again in the store the running tradefetcher reads.
func TestReceiptsListAndReplay(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no envrc here
	t.Setenv("DATA_DIR", dir)
	t.Setenv("DATABASE_URL", "")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "yzpay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.ParkReceipts(ctx, []domain.ParkedReceipt{
		{TID: "E20260101000000000000001", Type: "trade_TradePaid", Body: []byte(`{}`), LastError: "trade not found", LastTryAt: now, NextTryAt: now.Add(time.Hour)},
		{TID: "E20260101000000000000002", Type: "trade_TradePaid", Body: []byte(`{}`), LastTryAt: now, NextTryAt: now.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordReceiptTry(ctx, "E20260101000000000000001", domain.ReceiptTry{At: now, Error: "trade not found", Dead: true}); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCLI(t, "receipts", "list", "--state", "dead")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "E20260101000000000000001") || !strings.Contains(out, "dead") || strings.Contains(out, "E20260101000000000000002") {
		t.Errorf("dead list shows the wrong rows:\n%s", out)
	}
	if code, _, errs := runCLI(t, "receipts", "list", "--state", "lost"); code != 2 || !strings.Contains(errs, "--state") {
		t.Errorf("bad --state: exit %d, %q", code, errs)
	}
	if code, out, errs := runCLI(t, "receipts", "replay", "E20260101000000000000001"); code != 0 || !strings.Contains(out, "replayed") {
		t.Fatalf("replay: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, "receipts", "replay", "E29999999999999999999999"); code != 1 || !strings.Contains(errs, "no parked or dead receipt") {
		t.Errorf("replay of an unknown tid: exit %d, %q", code, errs)
	}
	rs, err := st.ListReceipts(ctx, store.ReceiptFilter{State: domain.ReceiptDead})
	if err != nil || len(rs) != 0 {
		t.Errorf("after replay, dead receipts: %+v, %v (want none: it is parked and due)", rs, err)
	}
}

// An operator reads an event's attempts and an order's timeline from the
// store yzpay serve uses, without the endpoint's token.
func TestAttemptsAndTimelineCLI(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("DATA_DIR", dir)
	t.Setenv("DATABASE_URL", "")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "yzpay.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Reserve(ctx, domain.NewOrder{OrderID: "o-1", Name: "tea", Price: 100}, time.Minute); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.RecordAttempts(ctx, []domain.Attempt{
		{EventID: "E1:TRADE_SUCCESS", Endpoint: "https://shop.example/hook?token=s3cret", OrderID: "o-1", Status: "TRADE_SUCCESS",
			HTTPStatus: 502, ErrorClass: domain.AttemptErrorHTTP, Excerpt: "bad gateway", Duration: 7 * time.Millisecond,
			NextAttemptAt: now.Add(time.Minute), At: now},
		{EventID: "E1:TRADE_SUCCESS", Endpoint: "https://shop.example/hook?token=s3cret", OrderID: "o-1", Status: "TRADE_SUCCESS",
			HTTPStatus: 200, Delivered: true, At: now.Add(time.Second)},
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, errs := runCLI(t, "deliveries", "attempts", "E1:TRADE_SUCCESS")
	if code != 0 {
		t.Fatalf("attempts: exit %d: %s", code, errs)
	}
	if strings.Count(out, "shop.example") != 2 || !strings.Contains(out, `"bad gateway"`) || !strings.Contains(out, "http_status") ||
		!strings.Contains(out, "delivered") || strings.Contains(out, "s3cret") {
		t.Errorf("attempts output:\n%s", out)
	}
	if code, _, errs := runCLI(t, "deliveries", "attempts", "E404"); code != 1 || !strings.Contains(errs, "no delivery") {
		t.Errorf("attempts of an unknown event: exit %d, %q", code, errs)
	}
	code, out, errs = runCLI(t, "orders", "timeline", "o-1")
	if code != 0 {
		t.Fatalf("timeline: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "order_created") || !strings.Contains(lines[2], "attempt") ||
		!strings.Contains(lines[3], "#2 delivered") || strings.Contains(out, "s3cret") {
		t.Errorf("timeline output:\n%s", out)
	}
	if code, _, errs := runCLI(t, "orders", "timeline", "nope"); code != 1 || !strings.Contains(errs, "no order") {
		t.Errorf("timeline of an unknown order: exit %d, %q", code, errs)
	}
}
