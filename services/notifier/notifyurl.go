package notifier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
)

// This file delivers to an order's own notify_url (create field) instead of
// the configured endpoints: the same format, MD5 signing with SELF_SECRET
// and retry schedule as PUSH_API, but through a client that refuses to
// connect to private, loopback or link-local addresses unless the host is
// listed in NOTIFY_URL_PRIVATE_HOSTS. A merchant names the URL, so without
// this anyone holding the API key could make the notifier POST into the
// operator's network (SSRF).

// errBlocked marks an attempt refused before anything was sent; it is not
// retried (the address will not become public by waiting) and is given up
// at once, replayable once the operator has fixed the settings.
var errBlocked = errors.New("blocked")

type blockedError struct{ why string }

func (e *blockedError) Error() string { return "blocked: " + e.why }
func (e *blockedError) Unwrap() error { return errBlocked }

// nonPublic are ranges net/netip's predicates do not cover that a notify_url
// must not reach either.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("100::/64"),       // discard
	netip.MustParsePrefix("2001::/32"),      // Teredo: tunnels to any IPv4
	netip.MustParsePrefix("2002::/16"),      // 6to4: likewise
	netip.MustParsePrefix("192.88.99.0/24"), // 6to4 relay anycast
}

// publicAddr reports whether a notify_url may connect to ip without the
// host being listed in NOTIFY_URL_PRIVATE_HOSTS.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsGlobalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// dialGuard dials per-order URLs. It resolves the host itself and dials the
// addresses it got, checking each in the dialer's Control hook, i.e. on the
// address the socket really connects to: a second DNS answer (rebinding)
// is never consulted.
type dialGuard struct {
	private map[string]bool
	lookup  func(ctx context.Context, host string) ([]netip.Addr, error)
	dialer  net.Dialer
}

func (g *dialGuard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := net.LookupPort(network, portStr)
	if err != nil {
		return nil, err
	}
	allowPrivate := g.private[strings.ToLower(host)]
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = g.lookup(ctx, host); err != nil {
		return nil, err
	}
	d := g.dialer
	d.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &blockedError{why: "unreadable address " + address}
		}
		if !allowPrivate && !publicAddr(ap.Addr()) {
			return &blockedError{why: fmt.Sprintf("%s resolves to the non-public address %s (list it in NOTIFY_URL_PRIVATE_HOSTS to allow)", host, ap.Addr())}
		}
		return nil
	}
	var first error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		if first == nil || errors.Is(err, errBlocked) && !errors.Is(first, errBlocked) {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("no address for %s", host)
	}
	return nil, first
}

func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// newOrderClient is NewHTTPClient for per-order URLs: the same timeout, no
// redirects, and no proxy (a proxy would dial in our place, unchecked).
func newOrderClient(timeout time.Duration, g *dialGuard) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = g.DialContext
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func newDialGuard(cfg config.Notifier) *dialGuard {
	g := &dialGuard{private: map[string]bool{}, lookup: defaultLookup, dialer: net.Dialer{Timeout: 10 * time.Second}}
	for _, h := range cfg.NotifyURLPrivateHosts {
		g.private[strings.ToLower(h)] = true
	}
	return g
}

// endpointsFor is where j's event goes: the order's notify_url alone, or
// every configured endpoint.
func (n *Notifier) endpointsFor(j *job) []*endpoint {
	if j.notifyURL == "" {
		return n.endpoints.Load().list
	}
	return []*endpoint{{Endpoint: config.Endpoint{
		URL: j.notifyURL, Format: n.cfg.Format, Signing: config.SigningMD5, MD5Secret: n.cfg.Secret,
		RetrySchedule: n.cfg.RetrySchedule,
	}, perOrder: true}}
}

// clientFor is the HTTP client for ep; a per-order URL whose host is no
// longer in NOTIFY_URL_HOSTS (the list may have shrunk since the order was
// made) or that cannot be signed is refused before any connection.
func (n *Notifier) clientFor(ep *endpoint) (*http.Client, error) {
	if !ep.perOrder {
		return n.client, nil
	}
	u, err := url.Parse(ep.URL)
	if err != nil {
		return nil, &blockedError{why: "unreadable notify_url"}
	}
	if !slices.Contains(n.cfg.NotifyURLHosts, strings.ToLower(u.Hostname())) {
		return nil, &blockedError{why: "the notify_url's host is not in NOTIFY_URL_HOSTS"}
	}
	if ep.MD5Secret == "" {
		return nil, &blockedError{why: "no SELF_SECRET to sign a notify_url push with"}
	}
	return n.orderClient, nil
}

// giveUpBlocked ends a delivery refused by the guard at once: visible in
// the store (failed, with the reason), the log and the metrics.
func (n *Notifier) giveUpBlocked(ev domain.PaymentEvent, ep *endpoint, attempt int, a domain.Attempt) domain.Attempt {
	a.GiveUp = true
	n.m.Deliveries.WithLabelValues("blocked").Inc()
	n.m.DeliveriesGivenUp.Inc()
	n.log.Error("push to the order's notify_url refused and given up; fix NOTIFY_URL_HOSTS / NOTIFY_URL_PRIVATE_HOSTS, then replay",
		"event_id", ev.EventID, "order_id", ev.OrderID, "status", ev.Status,
		"endpoint", config.RedactURL(ep.URL), "attempts", attempt, "err", a.Error)
	return a
}
