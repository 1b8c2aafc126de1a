package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/yzpay/yzpay/cmd/yzpay/app"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/process"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

func versionString() string { return app.Version }

// defaultMemoryLimit is `yzpay serve`'s soft heap limit unless GOMEMLIMIT is set.
const defaultMemoryLimit = 128 << 20

// setup loads envrc + environment, printing why it failed.
func setup(stderr io.Writer) (config.Env, bool) {
	env, err := config.Load("envrc")
	if err != nil {
		fmt.Fprintln(stderr, "yzpay:", process.Line(err))
		return env, false
	}
	return env, true
}

// setupTool loads the operator commands' configuration and logger.
func setupTool(stderr io.Writer) (config.Tool, *slog.Logger, bool) {
	env, ok := setup(stderr)
	if !ok {
		return config.Tool{}, nil, false
	}
	t, err := config.LoadTool(env)
	if err != nil {
		fmt.Fprintln(stderr, "yzpay:", process.Line(err))
		return t, nil, false
	}
	return t, t.Log.Logger(stderr), true
}

// toolStore is what a store-reading subcommand starts with.
type toolStore struct {
	store.Store
	cfg  config.Tool
	desc string // the store, for humans (no password)
	log  *slog.Logger
}

// openToolStore loads the CLI's settings and opens (and migrates) the store
// for subcommand name. On failure it has printed one line and returns nil
// with the exit status.
func openToolStore(ctx context.Context, name string, stderr io.Writer) (*toolStore, int) {
	tc, log, ok := setupTool(stderr)
	if !ok {
		return nil, process.ExitUsage
	}
	st, desc, err := app.OpenStore(ctx, tc)
	if err != nil {
		fmt.Fprintf(stderr, "yzpay %s: %s\n", name, process.Line(err))
		return nil, process.ExitFailure
	}
	return &toolStore{Store: st, cfg: tc, desc: desc, log: log}, 0
}

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: yzpay %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse returns an exit code when the command should stop (help or bad flags).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "serve [--sandbox]\n\nRuns gateway, tradefetcher and notifier in one process. With NATS_URL unset it\nstarts an embedded JetStream server under DATA_DIR/nats; with DATABASE_URL unset\nit uses SQLite at DATA_DIR/yzpay.db.", stderr)
	sb := fs.Bool("sandbox", false, "also run the Youzan sandbox in-process (same as YOUZAN_MODE=sandbox)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file until the process stops (for performance work)")
	memprofile := fs.String("memprofile", "", "write a heap profile to this file each time the live heap is larger than ever before, checked every second (for performance work)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *memprofile != "" {
		stop, err := startHeapSnapshots(*memprofile, time.Second, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "yzpay serve:", process.Line(err))
			return 2
		}
		defer stop()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "yzpay serve:", process.Line(err))
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "yzpay serve:", process.Line(err))
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	env, ok := setup(stderr)
	if !ok {
		return 2
	}
	lc, err := config.LoadLogging(env)
	if err != nil {
		fmt.Fprintln(stderr, "yzpay serve:", err)
		return 2
	}
	log := lc.Logger(stderr)
	// GOMEMLIMIT is the Go runtime's own variable, read by the runtime.
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit keeps the single binary small on a small machine:
		// under overload the GC works harder instead of the heap growing.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	a, err := app.Start(ctx, app.Options{Env: env, Sandbox: *sb, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "yzpay serve:", process.Line(err))
		return process.ExitFailure
	}
	fmt.Fprint(stdout, a.Banner)
	if err := a.Err(); err != nil {
		fmt.Fprintln(stderr, "yzpay serve:", process.Line(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("migrate", "migrate\n\nApplies the store's migrations to DATABASE_URL (or, when unset, the SQLite file\nDATA_DIR/yzpay.db) and exits. Safe to run while services are up.", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	st, code := openToolStore(ctx, "migrate", stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	fmt.Fprintln(stdout, "migrations applied:", st.desc)
	return 0
}

func cmdSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sandbox", "sandbox [flags]\n\nRuns the Youzan sandbox alone: the Youzan API (token, QR create, trade get,\nQR trades), pay pages and signed pushes to --push-url.", stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	pushURL := fs.String("push-url", "http://127.0.0.1:8080/api/status", "where to push trade messages (the gateway's /api/status)")
	style := fs.String("push-style", sandbox.PushStyleTrade, "push message types: trade (trade_*) or legacy (TRADE_ORDER_STATE)")
	sign := fs.String("sign", sandbox.SignBoth, "push signatures: both, body or header")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	tc, log, ok := setupTool(stderr)
	if !ok {
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "yzpay sandbox:", process.Line(err))
		return 1
	}
	public := "http://" + ln.Addr().String()
	sb, err := sandbox.New(sandbox.Config{
		ClientID: tc.Youzan.ClientID, ClientSecret: tc.Youzan.ClientSecret,
		KdtID: tc.Youzan.KdtID, PushURL: *pushURL, PushStyle: *style, SignMode: *sign,
		PublicURL: public, Logger: log,
	})
	if err != nil {
		ln.Close()
		fmt.Fprintln(stderr, "yzpay sandbox:", process.Line(err))
		return 1
	}
	defer sb.Close()
	c := sb.Config()
	fmt.Fprintf(stdout, "Youzan sandbox on %s, pushing to %s\n", public, *pushURL)
	fmt.Fprintf(stdout, "  export YOUZAN_API_BASE=%s YOUZANYUN_CLIENT_ID=%s YOUZAN_KDT_ID=%s\n", public, c.ClientID, c.KdtID)
	fmt.Fprintf(stdout, "  (YOUZANYUN_CLIENT_SECRET: set it in the environment to choose it; a generated one is not printed)\n")
	fmt.Fprintf(stdout, "  pay page: %s/wxpay/confirmQr?qr_id=<qr_id>&kdt_id=%s   or: curl -X POST %s/sandbox/qrcodes/<qr_id>/pay\n", public, c.KdtID, public)
	if err := httpapi.Serve(ctx, ln, sb, 5*time.Second); err != nil {
		fmt.Fprintln(stderr, "yzpay sandbox:", process.Line(err))
		return 1
	}
	return 0
}

func cmdDeliveries(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay" && args[0] != "attempts") {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprint(stderr, "Usage:\n  yzpay deliveries list [--state failed|pending|delivered|superseded] [--endpoint URL]\n  yzpay deliveries replay (EVENT_ID... | --all-failed) [--endpoint URL]\n  yzpay deliveries attempts EVENT_ID\n")
			return 0
		}
		fmt.Fprintln(stderr, "usage: yzpay deliveries list|replay|attempts ... (see yzpay help deliveries)")
		return 2
	}
	sub := args[0]
	fs := newFlags("deliveries "+sub, "deliveries "+sub, stderr)
	state := fs.String("state", "", "pending, delivered, failed or superseded (list)")
	endpoint := fs.String("endpoint", "", "only this merchant endpoint")
	allFailed := fs.Bool("all-failed", false, "replay every given-up delivery (replay)")
	limit := fs.Int("limit", 100, "rows to list")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if sub == "attempts" && fs.NArg() != 1 {
		fmt.Fprintln(stderr, "yzpay deliveries attempts: name one EVENT_ID")
		return 2
	}
	st, code := openToolStore(ctx, "deliveries", stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	if sub == "attempts" {
		return printAttempts(ctx, st, fs.Arg(0), stdout, stderr)
	}
	if sub == "list" {
		switch *state {
		case "", domain.DeliveryPending, domain.DeliveryDelivered, domain.DeliveryFailed, domain.DeliverySuperseded:
		default:
			fmt.Fprintln(stderr, "yzpay deliveries list: --state must be pending, delivered, failed or superseded")
			return 2
		}
		ds, err := st.ListDeliveries(ctx, store.DeliveryFilter{State: *state, Endpoint: *endpoint, Limit: *limit})
		if err != nil {
			fmt.Fprintln(stderr, "yzpay deliveries list:", process.Line(err))
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EVENT_ID\tORDER_ID\tSTATUS\tENDPOINT\tSTATE\tATTEMPTS\tLAST_HTTP\tLAST_ERROR")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", d.EventID, d.OrderID, d.Status, config.RedactURL(d.Endpoint),
				d.State(), d.Attempts, d.LastHTTPStatus, oneLine(d.LastError))
		}
		tw.Flush()
		return 0
	}
	if !*allFailed && fs.NArg() == 0 {
		fmt.Fprintln(stderr, "yzpay deliveries replay: name EVENT_IDs or --all-failed")
		return 2
	}
	if st.cfg.Broker.NATSURL == "" {
		fmt.Fprintln(stderr, "yzpay deliveries replay: NATS_URL is required (replays go to the running notifier through JetStream)")
		return 2
	}
	nc, js, err := natsjs.ConnectBroker(ctx, st.cfg.Broker, "yzpay-cli", st.cfg.StartupTimeout, st.log)
	if err != nil {
		fmt.Fprintln(stderr, "yzpay deliveries replay:", process.Line(err))
		return 1
	}
	defer nc.Close()
	r := replay.Replayer{Store: st, JS: js}
	if *allFailed {
		n, err := r.AllFailed(ctx, *endpoint)
		fmt.Fprintf(stdout, "replayed %d failed deliveries\n", n)
		if err != nil {
			fmt.Fprintln(stderr, "yzpay deliveries replay:", process.Line(err))
			return 1
		}
		return 0
	}
	for _, id := range fs.Args() {
		ds, err := r.Replay(ctx, id, *endpoint)
		if err != nil {
			fmt.Fprintf(stderr, "yzpay deliveries replay %s: %v\n", id, err)
			return 1
		}
		fmt.Fprintf(stdout, "replayed %s to %d endpoint(s)\n", id, len(ds))
	}
	return 0
}

const receiptsUsage = "Usage:\n  yzpay receipts list [--state dead|parked] [--limit N]\n  yzpay receipts replay TID...\n"

// cmdReceipts shows receipts whose trade Youzan did not know (parked, then
// dead after FETCH_GIVE_UP_AFTER) and replays them. A replay only marks the
// receipt due in the store: the running tradefetcher asks Youzan once more
// and republishes it if the trade exists, so no broker connection is needed
// and it works against `yzpay serve` too.
func cmdReceipts(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprint(stderr, receiptsUsage)
			return 0
		}
		fmt.Fprintln(stderr, "usage: yzpay receipts list|replay ... (see yzpay help receipts)")
		return 2
	}
	sub := args[0]
	fs := newFlags("receipts "+sub, "receipts "+sub, stderr)
	state := fs.String("state", "", "dead or parked (list)")
	limit := fs.Int("limit", 100, "rows to list")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	switch *state {
	case "", domain.ReceiptDead, domain.ReceiptParked:
	default:
		fmt.Fprintln(stderr, "yzpay receipts list: --state must be dead or parked")
		return 2
	}
	if sub == "replay" && fs.NArg() == 0 {
		fmt.Fprintln(stderr, "yzpay receipts replay: name the TIDs to replay")
		return 2
	}
	st, code := openToolStore(ctx, "receipts", stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	if sub == "list" {
		rs, err := st.ListReceipts(ctx, store.ReceiptFilter{State: *state, Limit: *limit})
		if err != nil {
			fmt.Fprintln(stderr, "yzpay receipts list:", process.Line(err))
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TID\tTYPE\tSTATE\tATTEMPTS\tFIRST_SEEN\tLAST_TRY\tLAST_ERROR")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.TID, r.Type, r.State, r.Attempts,
				r.FirstSeen.Format(time.RFC3339), r.LastTryAt.Format(time.RFC3339), oneLine(r.LastError))
		}
		tw.Flush()
		return 0
	}
	for _, tid := range fs.Args() {
		if _, err := st.ReopenReceipt(ctx, tid, time.Now()); err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				fmt.Fprintf(stderr, "yzpay receipts replay %s: no parked or dead receipt for that tid\n", tid)
			} else {
				fmt.Fprintf(stderr, "yzpay receipts replay %s: %s\n", tid, process.Line(err))
			}
			return 1
		}
		fmt.Fprintf(stdout, "replayed %s: the tradefetcher asks Youzan again now and republishes the receipt if the trade exists\n", tid)
	}
	return 0
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// printAttempts prints an event's attempt log, oldest first.
func printAttempts(ctx context.Context, st store.Store, eventID string, stdout, stderr io.Writer) int {
	as, err := st.AttemptsForEvent(ctx, eventID)
	if err == nil && len(as) == 0 {
		var ds []domain.Delivery
		if ds, err = st.DeliveriesForEvent(ctx, eventID); err == nil && len(ds) == 0 {
			fmt.Fprintf(stderr, "yzpay deliveries attempts: no delivery of %s is recorded\n", eventID)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "yzpay deliveries attempts:", process.Line(err))
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tENDPOINT\tATTEMPT\tOUTCOME\tHTTP\tERROR_CLASS\tDURATION_MS\tEXCERPT")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%s\n", a.At.Format(time.RFC3339Nano), config.RedactURL(a.Endpoint),
			a.Attempt, a.Outcome, a.HTTPStatus, dash(a.ErrorClass), a.DurationMS, excerptLine(a.Excerpt))
	}
	tw.Flush()
	return 0
}

const ordersUsage = "Usage:\n  yzpay orders timeline ORDER_ID\n"

// cmdOrders shows what happened to an order: creation, trade readings,
// status changes and every delivery attempt, in time order.
func cmdOrders(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "timeline" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprint(stderr, ordersUsage)
			return 0
		}
		fmt.Fprintln(stderr, "usage: yzpay orders timeline ORDER_ID (see yzpay help orders)")
		return 2
	}
	fs := newFlags("orders timeline", "orders timeline ORDER_ID", stderr)
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "yzpay orders timeline: name one ORDER_ID")
		return 2
	}
	st, code := openToolStore(ctx, "orders", stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	es, err := st.OrderTimeline(ctx, fs.Arg(0))
	if errors.Is(err, domain.ErrNotFound) {
		fmt.Fprintf(stderr, "yzpay orders timeline: no order %s\n", fs.Arg(0))
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "yzpay orders timeline:", process.Line(err))
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tKIND\tSTATUS\tEVENT_ID\tDETAIL")
	for _, e := range es {
		detail := e.Detail
		if e.Kind == domain.TimelineAttempt {
			detail = fmt.Sprintf("%s #%d %s http=%d %dms", config.RedactURL(e.Endpoint), e.Attempt, e.Outcome, e.HTTPStatus, e.DurationMS)
			if e.ErrorClass != "" {
				detail += " " + e.ErrorClass
			}
			if e.Excerpt != "" {
				detail += " " + excerptLine(e.Excerpt)
			}
		} else if e.Endpoint != "" {
			detail = config.RedactURL(e.Endpoint) + " " + detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339Nano), e.Kind, dash(e.Status), dash(e.EventID), detail)
	}
	tw.Flush()
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// excerptLine keeps a table row on one line and short.
func excerptLine(s string) string {
	s = oneLine(s)
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return strconv.Quote(s)
}
