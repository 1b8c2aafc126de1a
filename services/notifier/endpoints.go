package notifier

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/merchant"
	"github.com/yzpay/yzpay/shared/store"
)

// endpoint is a configured endpoint with its Standard Webhooks keys decoded
// once, not per push.
type endpoint struct {
	config.Endpoint
	keys [][]byte
	// perOrder: an order's own notify_url, sent through the SSRF guard.
	perOrder bool
}

// endpointSet is the immutable set Reload swaps in.
type endpointSet struct {
	list []*endpoint
}

func (n *Notifier) newEndpointSet(eps []config.Endpoint) (*endpointSet, error) {
	set := &endpointSet{}
	for _, c := range eps {
		ep := &endpoint{Endpoint: c}
		if ep.Format == "" {
			ep.Format = n.cfg.Format
		}
		if ep.Signing == "" {
			ep.Signing = config.SigningMD5
		}
		if len(ep.RetrySchedule) == 0 {
			ep.RetrySchedule = n.cfg.RetrySchedule
		}
		if ep.Signing == config.SigningStandard {
			ep.Format = config.FormatJSON
		}
		if ep.Signing != config.SigningMD5 {
			if len(ep.Secrets) == 0 {
				return nil, fmt.Errorf("notifier: endpoint %s: signing %s needs a whsec_ secret", config.RedactURL(ep.URL), ep.Signing)
			}
			for _, s := range ep.Secrets {
				k, err := merchant.ParseSecret(s)
				if err != nil {
					return nil, fmt.Errorf("notifier: endpoint %s: %w", config.RedactURL(ep.URL), err)
				}
				ep.keys = append(ep.keys, k)
			}
		}
		set.list = append(set.list, ep)
	}
	return set, nil
}

// Reload reads PUSH_ENDPOINTS_FILE again and swaps the endpoint set in.
// Deliveries already running finish with the set they started with. A file
// that does not load leaves the current set in place (logged at ERROR). An
// endpoint the new file leaves out gets no more pushes; its pending
// deliveries stay pending in the store (WARN with their number), where
// `yzpay deliveries list --state pending` shows them and replay sends them
// once the endpoint is back in the file.
func (n *Notifier) Reload(ctx context.Context) error {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	eps, err := n.cfg.LoadEndpoints()
	var set *endpointSet
	if err == nil {
		set, err = n.newEndpointSet(eps)
	}
	if err != nil {
		n.m.EndpointReloads.WithLabelValues("failed").Inc()
		n.log.Error("endpoints file not reloaded; the previous endpoints stay in use", "file", n.cfg.EndpointsFile, "err", err)
		return err
	}
	old := n.endpoints.Swap(set)
	n.m.EndpointReloads.WithLabelValues("ok").Inc()
	kept := map[string]bool{}
	for _, ep := range set.list {
		kept[ep.URL] = true
	}
	for _, ep := range old.list {
		if kept[ep.URL] {
			continue
		}
		pending, err := n.deps.Store.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryPending, Endpoint: ep.URL, Limit: 1000})
		count := fmt.Sprint(len(pending))
		if err != nil {
			count = "unknown (store: " + err.Error() + ")"
		} else if len(pending) == 1000 {
			count = "1000 or more"
		}
		n.log.Warn("endpoint removed from the endpoints file: no more pushes to it; its pending deliveries stay pending for replay",
			"endpoint", config.RedactURL(ep.URL), "pending", count)
	}
	n.log.Info("endpoints file reloaded", "file", n.cfg.EndpointsFile, "endpoints", len(set.list))
	return nil
}

// reloadOnSIGHUP re-reads the endpoints file on every SIGHUP until ctx ends
// or stop is called.
func (n *Notifier) reloadOnSIGHUP(ctx context.Context) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-ch:
				_ = n.Reload(ctx)
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
