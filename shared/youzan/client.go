package youzan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/yzpay/yzpay/shared/loopback"
)

// Config configures a Client for one shop.
type Config struct {
	BaseURL      string        // default "https://open.youzanyun.com"
	ClientID     string        // self-use app client_id
	ClientSecret string        // self-use app client_secret
	KdtID        string        // shop id, the token's grant_id
	HTTPClient   *http.Client  // optional
	Timeout      time.Duration // per HTTP call; default 5s
	RenewBefore  time.Duration // renew the token this long before expiry; default 10m
	// Observe, if set, is called once per API call (after retries within the call) and once per
	// token request, with the API name (e.g. "youzan.trade.get", or "auth/token"), a result label
	// ("ok", "retryable", "error") and the duration. Used for metrics.
	Observe func(api, result string, d time.Duration)
	Logger  *slog.Logger // optional; never log secrets or tokens
}

// DefaultBaseURL is the current Youzan Cloud gateway.
const DefaultBaseURL = "https://open.youzanyun.com"

// maxBody bounds what we read from Youzan; trade bodies are a few KiB.
const maxBody = 8 << 20

// Client talks to the Youzan Cloud gateway on behalf of one shop. It is safe
// for concurrent use; all goroutines share one cached access token.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
	// rt is hc's transport when hc is our own: calling it directly skips
	// http.Client's per-request header copy, kept for following redirects
	// that hc refuses anyway. nil with a caller's HTTPClient (which may have
	// a Timeout or a cookie jar that must apply).
	rt  http.RoundTripper
	log *slog.Logger
	now func() time.Time // replaced in tests

	mu       sync.Mutex
	tok      string
	expires  time.Time
	renewAt  time.Time
	inflight *tokenFetch
}

// tokenFetch is one in-flight /auth/token request that every goroutine
// needing a token waits on, so a burst of callers costs one request.
type tokenFetch struct {
	done    chan struct{}
	tok     string
	expires time.Time
	err     error
}

// New validates cfg and returns a Client. No network call is made.
func New(cfg Config) (*Client, error) {
	var missing []string
	if cfg.ClientID == "" {
		missing = append(missing, "ClientID")
	}
	if cfg.ClientSecret == "" {
		missing = append(missing, "ClientSecret")
	}
	if cfg.KdtID == "" {
		missing = append(missing, "KdtID")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("youzan: missing config: %s", strings.Join(missing, ", "))
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("youzan: BaseURL %q is not an absolute URL", cfg.BaseURL)
	}
	// The token request carries the app secret: over plain HTTP anyone on
	// the path could read it. Only a loopback base (the sandbox, tests) may
	// skip TLS.
	if u.Scheme != "https" && !loopback.Host(u.Hostname()) {
		return nil, fmt.Errorf("youzan: BaseURL %q must use https (plain http is allowed only on loopback)", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = 10 * time.Minute
	}
	c := &Client{
		cfg:  cfg,
		base: strings.TrimRight(cfg.BaseURL, "/"),
		hc:   cfg.HTTPClient,
		log:  cfg.Logger,
		now:  time.Now,
	}
	if c.hc == nil {
		// The default transport keeps two idle connections per host; under
		// load every further call would open (and leave in TIME_WAIT) a new
		// TLS connection to the gateway.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		c.hc = &http.Client{Transport: tr}
		c.rt = tr
	}
	// A redirect would resend the request — the secret, the token — to a
	// host we did not choose; Youzan's API never redirects.
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// KdtID returns the shop id this client acts for.
func (c *Client) KdtID() string { return c.cfg.KdtID }

// token returns a usable access token. bad, if non-empty, is a token the
// gateway just rejected: it is never returned again.
func (c *Client) token(ctx context.Context, bad string) (string, error) {
	c.mu.Lock()
	now := c.now()
	old := c.tok
	valid := old != "" && old != bad && now.Before(c.expires)
	if valid && now.Before(c.renewAt) {
		c.mu.Unlock()
		return old, nil
	}
	f := c.inflight
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		c.inflight = f
		// refresh:false would hand back the very token we want rid of
		// (docs/youzan.md#token-renewal: "returns the same token without
		// extending it"), so ask for a new one whenever we already hold one.
		refresh := old != ""
		// Detached from ctx: other goroutines wait on this fetch and must
		// not fail because the one that started it gave up.
		go c.fetchToken(context.WithoutCancel(ctx), f, refresh)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return "", ctxError("auth/token", ctx.Err())
	}
	if f.err != nil {
		if valid {
			// Early renewal failed but the current token still works.
			c.log.Warn("youzan: token renewal failed, keeping current token", "err", f.err)
			return old, nil
		}
		return "", f.err
	}
	return f.tok, nil
}

func (c *Client) fetchToken(ctx context.Context, f *tokenFetch, refresh bool) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	tok, exp, err := c.requestToken(ctx, refresh)
	// Token requests are observed like API calls ("auth/token"): a token
	// that cannot be renewed shows before the calls that need it fail.
	c.observe("auth/token", err, time.Since(start))

	c.mu.Lock()
	now := c.now()
	c.inflight = nil
	if err == nil {
		c.tok, c.expires = tok, exp
		// Renew RenewBefore ahead of expiry, but never in the first half of
		// the token's life: with a short-lived token (sandbox) a large
		// RenewBefore would otherwise renew on every call.
		c.renewAt = exp.Add(-c.cfg.RenewBefore)
		if half := now.Add(exp.Sub(now) / 2); c.renewAt.Before(half) {
			c.renewAt = half
		}
		c.log.Info("youzan: access token obtained", "kdt_id", c.cfg.KdtID, "expires", exp, "refresh", refresh)
	} else {
		// Don't hammer a failing token endpoint on every call while the
		// current token is still good (token fetches are rate-limited).
		c.renewAt = now.Add(min(30*time.Second, max(0, c.expires.Sub(now)/2)))
		c.log.Warn("youzan: access token request failed", "kdt_id", c.cfg.KdtID, "err", err)
	}
	f.tok, f.expires, f.err = tok, exp, err
	c.mu.Unlock()
	close(f.done)
}

type tokenRequest struct {
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	AuthorizeType string `json:"authorize_type"`
	GrantID       string `json:"grant_id"`
	Refresh       bool   `json:"refresh"`
}

type tokenData struct {
	AccessToken string `json:"access_token"`
	Expires     ID     `json:"expires"` // absolute, epoch milliseconds
	Scope       string `json:"scope"`
	AuthorityID ID     `json:"authority_id"`
}

func (c *Client) requestToken(ctx context.Context, refresh bool) (string, time.Time, error) {
	const api = "auth/token"
	body, err := json.Marshal(tokenRequest{
		ClientID:      c.cfg.ClientID,
		ClientSecret:  c.cfg.ClientSecret,
		AuthorizeType: "silent",
		GrantID:       c.cfg.KdtID,
		Refresh:       refresh,
	})
	if err != nil {
		return "", time.Time{}, &Error{API: api, Kind: Protocol, Message: "encode request", err: err}
	}
	status, resp, err := c.send(ctx, api, c.base+"/auth/token", body, nil)
	if err != nil {
		return "", time.Time{}, err
	}
	res, err := classify(api, status, resp)
	if err != nil {
		var ye *Error
		if errors.As(err, &ye) && ye.Kind == Business {
			switch ye.Code {
			case 1000, 1004, 1005, 1103, 1105:
				ye.Kind = Auth
			}
		}
		return "", time.Time{}, err
	}
	var d tokenData
	if err := json.Unmarshal(res, &d); err != nil {
		return "", time.Time{}, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "decode token data", err: err}
	}
	if d.AccessToken == "" || d.Expires <= 0 {
		return "", time.Time{}, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "token response without access_token or expires"}
	}
	return d.AccessToken, time.UnixMilli(int64(d.Expires)), nil
}

// call performs one API call: token, POST, classification, one token
// renewal + retry on 4201/4202/4203, and decode of the business result.
// decode errors count as the call's outcome for Observe.
func (c *Client) call(ctx context.Context, api, version string, params any, decode func(json.RawMessage) error) error {
	return c.do(ctx, api, version, params, func(status int, body []byte) error {
		res, err := classify(api, status, body)
		if err != nil {
			return err
		}
		return decode(res)
	})
}

// do is call with the whole answer (HTTP status and body) handed to
// answer, which classifies and decodes it: GetTrade reads its answer in one
// pass instead of classifying it first and decoding the result again. A
// Token-kind error from answer renews the token and calls once more; answer
// must return one only for a classified gateway answer, never for a decode
// failure.
func (c *Client) do(ctx context.Context, api, version string, params any, answer func(status int, body []byte) error) error {
	start := time.Now()
	err := c.invoke(ctx, api, version, params, answer)
	d := time.Since(start)
	label := c.observe(api, err, d)
	if err != nil {
		c.log.Debug("youzan: call failed", "api", api, "result", label, "duration", d, "err", err)
	} else {
		c.log.Debug("youzan: call ok", "api", api, "duration", d)
	}
	return err
}

// observe reports one call to Config.Observe and returns its result label.
func (c *Client) observe(api string, err error, d time.Duration) string {
	label := "ok"
	switch {
	case err == nil:
	case IsRetryable(err):
		label = "retryable"
	default:
		label = "error"
	}
	if c.cfg.Observe != nil {
		c.cfg.Observe(api, label, d)
	}
	return label
}

// encodedParams are params already in the JSON json.Marshal would write.
type encodedParams []byte

func (c *Client) invoke(ctx context.Context, api, version string, params any, answer func(status int, body []byte) error) error {
	if params == nil {
		params = struct{}{}
	}
	var body []byte
	if raw, ok := params.(encodedParams); ok {
		body = raw
	} else {
		var err error
		if body, err = json.Marshal(params); err != nil {
			return &Error{API: api, Kind: BadRequest, Message: "encode params", err: err}
		}
	}
	tok, err := c.token(ctx, "")
	if err != nil {
		return fmt.Errorf("youzan %s: access token: %w", api, err)
	}
	err = c.post(ctx, api, version, tok, body, answer)
	var ye *Error
	if errors.As(err, &ye) && ye.Kind == Token {
		c.log.Info("youzan: token rejected, renewing once", "api", api, "code", ye.Code)
		tok, terr := c.token(ctx, tok)
		if terr != nil {
			return fmt.Errorf("youzan %s: access token: %w", api, terr)
		}
		err = c.post(ctx, api, version, tok, body, answer)
	}
	return err
}

func (c *Client) post(ctx context.Context, api, version, tok string, body []byte, answer func(status int, body []byte) error) error {
	u := c.base + "/api/" + url.PathEscape(api) + "/" + url.PathEscape(version) + "?access_token=" + url.QueryEscape(tok)
	buf := answerBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledAnswer {
			answerBufs.Put(buf)
		}
	}()
	status, resp, err := c.send(ctx, api, u, body, buf)
	if err != nil {
		return err
	}
	return answer(status, resp)
}

// answerBufs hold API answers between calls. An answer function keeps
// nothing that shares the body's memory (everything it returns is decoded
// into strings and numbers of their own), so the buffer is reused once it
// returns. Larger answers than maxPooledAnswer are left to the collector.
var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledAnswer = 64 << 10

// send POSTs body as JSON with the per-call timeout and maps transport
// failures to *Error without the URL (which carries the token). The answer
// is read into dst when given (its memory is then dst's).
func (c *Client) send(ctx context.Context, api, u string, body []byte, dst *bytes.Buffer) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, ctxError(api, err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, &Error{API: api, Kind: BadRequest, Message: "build request"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "yzpay")
	var resp *http.Response
	if c.rt != nil {
		// What hc.Do does with our own client: no timeout or jar of its own,
		// and a redirect is answered as it is (ErrUseLastResponse).
		resp, err = c.rt.RoundTrip(req)
	} else {
		resp, err = c.hc.Do(req)
	}
	if err != nil {
		return 0, nil, transportError(ctx, api, err)
	}
	defer resp.Body.Close()
	var b []byte
	if dst != nil {
		_, err = dst.ReadFrom(io.LimitReader(resp.Body, maxBody))
		b = dst.Bytes()
	} else {
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	}
	if err != nil {
		return resp.StatusCode, nil, transportError(ctx, api, err)
	}
	return resp.StatusCode, b, nil
}

func ctxError(api string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("youzan %s: %w", api, err)
	}
	return &Error{API: api, Kind: Timeout, Message: err.Error(), err: err}
}

func transportError(parent context.Context, api string, err error) error {
	// Only the inner error is kept: *url.Error's text includes the URL and
	// therefore the access token.
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	if errors.Is(parent.Err(), context.Canceled) {
		return fmt.Errorf("youzan %s: %w", api, context.Canceled)
	}
	var ne net.Error
	if errors.Is(inner, context.DeadlineExceeded) || (errors.As(inner, &ne) && ne.Timeout()) {
		return &Error{API: api, Kind: Timeout, Message: inner.Error(), err: context.DeadlineExceeded}
	}
	return &Error{API: api, Kind: Network, Message: inner.Error(), err: inner}
}

// envelope is the union of every answer shape (docs/youzan.md#envelopes).
type envelope struct {
	GwErr    json.RawMessage `json:"gw_err_resp"`
	ErrResp  json.RawMessage `json:"error_response"`
	Response json.RawMessage `json:"response"`
	Success  *bool           `json:"success"`
	Code     text            `json:"code"`
	Message  text            `json:"message"`
	Msg      text            `json:"msg"`
	Data     json.RawMessage `json:"data"`
}

type gwErr struct {
	ErrCode    text `json:"err_code"`
	ErrMsg     text `json:"err_msg"`
	ErrMessage text `json:"err_message"`
}

type legacyErr struct {
	Code    text `json:"code"`
	Msg     text `json:"msg"`
	Message text `json:"message"`
	SubCode text `json:"sub_code"`
	SubMsg  text `json:"sub_msg"`
}

func present(r json.RawMessage) bool {
	return len(r) > 0 && string(r) != "null"
}

// classify turns one HTTP answer into the business result or an *Error, in
// the order gw_err_resp → error_response → response → success/code.
// HTTP 200 alone proves nothing: every gateway error arrives with it.
func classify(api string, status int, body []byte) (json.RawMessage, error) {
	res, err := classifyEnvelope(api, status, body)
	if err == nil {
		err = checkIsSuccess(api, res)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// classifyEnvelope is classify without the is_success check of the result:
// a caller that decodes the result anyway checks it in the same pass.
func classifyEnvelope(api string, status int, body []byte) (json.RawMessage, error) {
	switch {
	case status >= 500:
		return nil, &Error{API: api, Kind: Server, HTTPStatus: status, Message: http.StatusText(status)}
	case status == http.StatusTooManyRequests:
		return nil, &Error{API: api, Kind: RateLimited, HTTPStatus: status, Message: http.StatusText(status)}
	case status >= 300 && status < 400:
		return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "redirect refused (YOUZAN_API_BASE must name the API host itself)"}
	}
	var env envelope
	if !env.scan(body) {
		env = envelope{}
		if err := json.Unmarshal(body, &env); err != nil {
			return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "unparseable body: " + snippet(body), err: err}
		}
	}
	switch {
	case present(env.GwErr):
		var g gwErr
		if err := json.Unmarshal(env.GwErr, &g); err != nil {
			return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "bad gw_err_resp", err: err}
		}
		code, _ := strconv.Atoi(string(g.ErrCode))
		msg := string(g.ErrMsg)
		if msg == "" {
			msg = string(g.ErrMessage)
		}
		return nil, &Error{API: api, Kind: gatewayKind(code), Code: code, Message: msg, HTTPStatus: status}
	case present(env.ErrResp):
		var l legacyErr
		if err := json.Unmarshal(env.ErrResp, &l); err != nil {
			return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "bad error_response", err: err}
		}
		code, _ := strconv.Atoi(string(l.Code))
		msg := string(l.Msg)
		if msg == "" {
			msg = string(l.Message)
		}
		if l.SubMsg != "" {
			msg += " / " + string(l.SubMsg)
		}
		return nil, &Error{API: api, Kind: businessKind(code, msg), Code: code, Message: msg, HTTPStatus: status}
	case present(env.Response):
		return env.Response, nil
	case env.Success != nil || env.Code != "":
		code, _ := strconv.Atoi(string(env.Code))
		ok := code == 200
		if env.Success != nil {
			ok = *env.Success
		}
		msg := string(env.Message)
		if msg == "" {
			msg = string(env.Msg)
		}
		if !ok {
			return nil, &Error{API: api, Kind: businessKind(code, msg), Code: code, Message: msg, HTTPStatus: status}
		}
		return env.Data, nil
	}
	if status != http.StatusOK {
		return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "unexpected HTTP status: " + snippet(body)}
	}
	return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "unrecognised envelope: " + snippet(body)}
}

// checkIsSuccess honours the is_success:false some result objects carry
// inside an otherwise successful envelope.
func checkIsSuccess(api string, res json.RawMessage) error {
	var s struct {
		IsSuccess *bool `json:"is_success"`
	}
	if json.Unmarshal(res, &s) == nil && s.IsSuccess != nil && !*s.IsSuccess {
		return &Error{API: api, Kind: Business, HTTPStatus: http.StatusOK, Message: "is_success is false"}
	}
	return nil
}

// snippet keeps error messages short; Youzan bodies never contain our
// secret or token, and the HTML error pages of proxies can be large.
func snippet(b []byte) string {
	const n = 120
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

func isEmptyResult(r json.RawMessage) bool {
	s := strings.TrimSpace(string(r))
	return s == "" || s == "null" || s == "{}" || s == "[]"
}
