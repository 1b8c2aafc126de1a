package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/merchant"
)

// tokenBytes: 192 random bits, more than the 128 a checkout token needs to
// be unguessable, in 32 URL-safe characters.
const tokenBytes = 24

const maxReturnURL = 2048

func newCheckoutToken() string {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validToken is a cheap shape check before the store is asked.
func validToken(s string) bool {
	if len(s) < 22 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkCreateURLs applies README's rules for the per-order URLs of a create
// request. notify_url is refused until the notifier can deliver to it:
// accepting it silently would send that order's notifications elsewhere
// than the merchant asked.
func (g *Gateway) checkCreateURLs(cr createRequest) error {
	if cr.notifyURL {
		return domain.Errorf(domain.CodeURLNotAllowed, "notify_url is not supported yet; notifications go to the PUSH_API endpoints")
	}
	if cr.returnURL == "" {
		return nil
	}
	if len(g.cfg.ReturnURLHosts) == 0 {
		return domain.Errorf(domain.CodeURLNotAllowed, "return_url is not allowed: RETURN_URL_HOSTS is empty")
	}
	u, err := url.Parse(cr.returnURL)
	if err != nil || len(cr.returnURL) > maxReturnURL || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return domain.Errorf(domain.CodeURLNotAllowed, "return_url must be an absolute https URL without user info or fragment, at most 2048 bytes")
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && g.cfg.Sandbox && isLoopback(host):
	default:
		return domain.Errorf(domain.CodeURLNotAllowed, "return_url must be https (http only to a loopback host in sandbox mode)")
	}
	if !slices.Contains(g.cfg.ReturnURLHosts, host) {
		return domain.Errorf(domain.CodeURLNotAllowed, "return_url's host is not in RETURN_URL_HOSTS")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bindCheckout gives the order its page, or finds the one it has. The
// return_url counts like the price: another one for the same order is a
// conflict, not a silent change of where buyers are sent.
func (g *Gateway) bindCheckout(ctx context.Context, orderID, returnURL string) (domain.Checkout, error) {
	c, err := g.deps.Store.BindCheckout(ctx, domain.Checkout{Token: newCheckoutToken(), OrderID: orderID, ReturnURL: returnURL})
	if err != nil {
		return domain.Checkout{}, fmt.Errorf("bind checkout: %w", err)
	}
	if c.ReturnURL != returnURL {
		return domain.Checkout{}, domain.Errorf(domain.CodeOrderConflict, "order_id exists with a different return_url")
	}
	return c, nil
}

// returnTo is where the page sends a buyer who paid: the merchant's
// return_url with a query signed like the notifications (merchant.Sign over
// time|trade_no|order_id|payment|status), so the merchant's page can trust
// it before the notification arrives. Other query parameters are kept.
func (g *Gateway) returnTo(c domain.Checkout, ev domain.PaymentEvent, now time.Time) string {
	if c.ReturnURL == "" || g.cfg.ReturnSecret == "" {
		return ""
	}
	u, err := url.Parse(c.ReturnURL)
	if err != nil {
		return "" // checked at create; a stored one cannot fail
	}
	f := merchant.Fields{
		Time: strconv.FormatInt(now.Unix(), 10), TradeNo: ev.TID + "-" + strconv.FormatInt(ev.QRID, 10),
		OrderID: ev.OrderID, Payment: ev.Payment, Status: ev.Status,
	}
	q := u.Query()
	for _, k := range []string{"order_id", "status", "time", "trade_no", "payment", "sign"} {
		q.Del(k)
	}
	q.Set("order_id", f.OrderID)
	q.Set("status", f.Status)
	q.Set("time", f.Time)
	q.Set("trade_no", f.TradeNo)
	q.Set("payment", strconv.FormatInt(f.Payment, 10))
	q.Set("sign", merchant.Sign(f, g.cfg.ReturnSecret))
	u.RawQuery = q.Encode()
	return u.String()
}

// errNoPage hides whether a token was malformed or unknown.
var errNoPage = domain.Errorf(domain.CodeNotFound, "no such checkout page")

func (g *Gateway) checkoutByToken(ctx context.Context, token string) (domain.Checkout, error) {
	if !validToken(token) {
		return domain.Checkout{}, errNoPage
	}
	c, err := g.deps.Store.CheckoutByToken(ctx, token)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Checkout{}, errNoPage
	}
	return c, err
}
