// Package sandbox is a Youzan Cloud stand-in that speaks the real protocol
// over HTTP: /auth/token, the /api gateway with its envelopes and error
// codes, QR-code creation, trade reads, QR-trade listing, and signed trade
// push messages with Youzan's re-push schedule. It is yzpay's test mode: the
// tests, the demo and `yzpay serve --sandbox` run the whole payment flow
// against it with no Youzan account.
//
// Beyond the Youzan surface it offers a small control surface under
// /sandbox/ (pay or close a QR code, fault-injection knobs, token expiry)
// and a pay page behind every qr_url.
package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Sandbox. Zero values get sensible defaults.
type Config struct {
	ClientID, ClientSecret, KdtID string        // credentials the sandbox accepts; New fills random ones if empty
	PushURL                       string        // where to push trade messages ("" = push nowhere)
	PushStyle                     string        // "trade" (default) or "legacy" (TRADE_ORDER_STATE)
	SignMode                      string        // "both" (default), "body", "header"
	RetryScale                    float64       // multiplies Youzan's re-push schedule; default 1
	TokenTTL                      time.Duration // default 7*24h
	PublicURL                     string        // base URL used in qr_url; "" = derive from the request's Host
	Knobs                         Knobs
	Logger                        *slog.Logger
	HTTPClient                    *http.Client // for pushes
	KdtName                       string       // shop name in pushes; default "yzpay 沙箱小店"
	Seed                          uint64       // seed for knob dice, ids and buyer ids
}

// Knobs inject the faults a real integration meets. They can be changed at
// any time (SetKnobs, POST /sandbox/knobs).
type Knobs struct {
	Latency       time.Duration // added to every API answer
	ErrorRate     float64       // fraction of API calls answered HTTP 502
	RateLimitRate float64       // fraction answered with one of the three documented rate-limit shapes (rotating)
	ReadLag       time.Duration // trade.get says "trade not found" for this long after a trade appears
	DropPushes    bool          // record but never send pushes (reconciliation tests)
	SuccessDelay  time.Duration // time between TRADE_PAID and TRADE_SUCCESS (default 0: immediately)
}

// Push styles and sign modes.
const (
	PushStyleTrade  = "trade"
	PushStyleLegacy = "legacy"
	SignBoth        = "both"
	SignBody        = "body"
	SignHeader      = "header"
)

// Errors returned by Pay and CloseQR (wrapped).
var (
	ErrUnknownQR   = errors.New("sandbox: unknown qr_id")
	ErrAlreadyPaid = errors.New("sandbox: dynamic QR code already paid")
	ErrClosed      = errors.New("sandbox: QR code closed")
	ErrUnknownTID  = errors.New("sandbox: unknown tid")
)

// Sandbox is an http.Handler serving the Youzan protocol plus the sandbox
// control surface. It is safe for concurrent use.
type Sandbox struct {
	cfg     Config
	kdtID   int64
	log     *slog.Logger
	hc      *http.Client
	mux     *http.ServeMux
	qrImage string

	ctx    context.Context // cancelled by Close: aborts pushes in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	knobs     Knobs
	pushURL   string
	rng       *mrand.Rand
	rlNext    int
	tokens    map[string]*token
	current   string // token handed out for refresh:false while valid
	qrs       map[int64]*qrCode
	trades    map[string]*trade
	nextQR    int64
	nextPayID int64
	tidSeq    int64
	qrCount   int
	queues    map[string]*pushQueue

	tokenRequests, apiCalls, pushesSent, pushesFailed, pushesDropped atomic.Int64
}

type token struct {
	expires time.Time
	expired bool // set by ExpireTokens
}

type qrCode struct {
	id      int64
	name    string
	price   int64 // fen
	created time.Time
	paid    bool
	closed  bool
	tids    []string
}

// New validates cfg, fills in defaults and generated credentials, and
// returns a ready Sandbox. Call Close to stop push delivery.
func New(cfg Config) (*Sandbox, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = randHex(9)
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = randHex(16)
	}
	if cfg.KdtID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.KdtID = strconv.Itoa(40000000 + int(uint32(b[0])<<16|uint32(b[1])<<8|uint32(b[2]))%10000000)
	}
	kdt, err := strconv.ParseInt(cfg.KdtID, 10, 64)
	if err != nil || kdt <= 0 {
		return nil, fmt.Errorf("sandbox: KdtID %q is not a positive number", cfg.KdtID)
	}
	switch cfg.PushStyle {
	case "":
		cfg.PushStyle = PushStyleTrade
	case PushStyleTrade, PushStyleLegacy:
	default:
		return nil, fmt.Errorf("sandbox: unknown PushStyle %q", cfg.PushStyle)
	}
	switch cfg.SignMode {
	case "":
		cfg.SignMode = SignBoth
	case SignBoth, SignBody, SignHeader:
	default:
		return nil, fmt.Errorf("sandbox: unknown SignMode %q", cfg.SignMode)
	}
	if cfg.RetryScale <= 0 {
		cfg.RetryScale = 1
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 7 * 24 * time.Hour
	}
	if cfg.KdtName == "" {
		cfg.KdtName = "yzpay 沙箱小店"
	}
	s := &Sandbox{
		cfg:       cfg,
		kdtID:     kdt,
		log:       cfg.Logger,
		hc:        cfg.HTTPClient,
		knobs:     cfg.Knobs,
		pushURL:   cfg.PushURL,
		rng:       mrand.New(mrand.NewPCG(cfg.Seed, 0x79_7a_70_61_79)),
		tokens:    map[string]*token{},
		qrs:       map[int64]*qrCode{},
		trades:    map[string]*trade{},
		queues:    map[string]*pushQueue{},
		nextQR:    8286057,
		nextPayID: 23005982,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hc == nil {
		s.hc = &http.Client{}
	}
	s.tidSeq = int64(s.rng.IntN(100_000_000))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.qrImage = placeholderPNG()
	s.routes()
	return s, nil
}

// ServeHTTP serves the Youzan protocol and the /sandbox control surface.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Config returns the configuration in use, with generated credentials filled in.
func (s *Sandbox) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg
	c.PushURL = s.pushURL
	c.Knobs = s.knobs
	return c
}

// SetPushURL changes where pushes go; messages already being retried follow.
func (s *Sandbox) SetPushURL(u string) {
	s.mu.Lock()
	s.pushURL = u
	s.mu.Unlock()
}

// SetKnobs replaces the fault-injection knobs.
func (s *Sandbox) SetKnobs(k Knobs) {
	s.mu.Lock()
	s.knobs = k
	s.mu.Unlock()
}

// Knobs returns the current knobs.
func (s *Sandbox) Knobs() Knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs
}

// ExpireTokens makes every token issued so far answer 4202, as after seven days.
func (s *Sandbox) ExpireTokens() {
	s.mu.Lock()
	for _, t := range s.tokens {
		t.expired = true
	}
	s.mu.Unlock()
}

// Stats counts requests and push deliveries.
type Stats struct {
	TokenRequests, APICalls, PushesSent, PushesFailed, PushesDropped int64
}

// Stats returns the counters. PushesFailed counts failed attempts (each
// retry that fails counts again); PushesDropped counts messages not sent
// because of DropPushes or an empty push URL.
func (s *Sandbox) Stats() Stats {
	return Stats{
		TokenRequests: s.tokenRequests.Load(),
		APICalls:      s.apiCalls.Load(),
		PushesSent:    s.pushesSent.Load(),
		PushesFailed:  s.pushesFailed.Load(),
		PushesDropped: s.pushesDropped.Load(),
	}
}

// Close stops push delivery and pending retries and waits for them. The
// HTTP surface keeps answering; pays after Close send no pushes.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// goTracked runs f in a goroutine Close waits for, unless already closed.
// Must be called with s.mu held so Add never races with Close's Wait.
func (s *Sandbox) goTracked(f func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// sleepCtx waits d or until ctx ends; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// placeholderPNG is the qr_code data URI: a small valid PNG, not a real QR
// code (yzpay renders its own from qr_url).
func placeholderPNG() string {
	const n = 29
	img := image.NewGray(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			c := color.Gray{Y: 255}
			if (x/3+y/3)%2 == 0 || x < 7 && y < 7 {
				c.Y = 0
			}
			img.SetGray(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}

var shanghai = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600)
}()

const timeLayout = "2006-01-02 15:04:05"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(shanghai).Format(timeLayout)
}

func fmtYuan(fen int64) string {
	return fmt.Sprintf("%d.%02d", fen/100, fen%100)
}
