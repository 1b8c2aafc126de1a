// Package lease runs work on one process at a time among replicas: a lease
// is one key in a JetStream key-value bucket whose entries expire TTL after
// their last write. Whoever creates the key holds the lease and renews it;
// when the holder dies its key ages out and another replica creates it. It
// works wherever the streams do: on the embedded server of `yzpay serve`
// and on a JetStream cluster (README, "Scaling").
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket holds yzpay's leases.
const DefaultBucket = "YZPAY_LEASES"

// DefaultTTL is how long a lease outlives its holder's last renewal.
const DefaultTTL = 15 * time.Second

// Options name a lease and tune it.
type Options struct {
	Bucket string // default DefaultBucket
	Key    string // the lease's name; required
	// Holder identifies this process in the bucket (for operators reading
	// it); default hostname-pid-random.
	Holder string
	// TTL: a lease not renewed for this long passes to another replica.
	// The holder renews every TTL/4 and stops its work TTL/4 before its
	// last successful renewal would let the lease expire, so a holder cut
	// off from the broker has stopped before anyone else can start.
	TTL      time.Duration // default DefaultTTL
	Replicas int           // of the bucket; default 1
	Logger   *slog.Logger
	// OnChange, if set, is told when this process gains or loses the lease.
	OnChange func(held bool)
}

func (o *Options) defaults() {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Holder == "" {
		o.Holder = defaultHolder()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnChange == nil {
		o.OnChange = func(bool) {}
	}
}

func defaultHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Run runs fn whenever this process holds the lease, until ctx ends. fn's
// context ends when the lease is lost (not renewed in time, or taken over)
// or ctx ends; Run waits for fn to return before it tries for the lease
// again, and releases the lease when ctx ends so that another replica takes
// over at once. If fn returns by itself while ctx is alive, Run releases
// the lease and returns fn's error. Broker failures are retried, never
// returned: Run ends with ctx.
func Run(ctx context.Context, js jetstream.JetStream, o Options, fn func(ctx context.Context) error) error {
	if o.Key == "" {
		return errors.New("lease: Key is required")
	}
	o.defaults()
	log := o.Logger.With("lease", o.Key, "holder", o.Holder)
	step := o.TTL / 4
	var kv jetstream.KeyValue
	warned := false
	for ctx.Err() == nil {
		if kv == nil {
			var err error
			kv, err = bucket(ctx, js, o)
			if err != nil {
				if !warned && ctx.Err() == nil {
					log.Warn("lease bucket unavailable; retrying", "err", err)
					warned = true
				}
				_ = sleep(ctx, step)
				continue
			}
		}
		sent := time.Now()
		cctx, cancel := context.WithTimeout(ctx, step)
		rev, err := kv.Create(cctx, o.Key, []byte(o.Holder))
		cancel()
		if err != nil {
			// Held by another (ErrKeyExists) or the broker did not answer:
			// either way, look again shortly.
			if !errors.Is(err, jetstream.ErrKeyExists) && !warned && ctx.Err() == nil {
				log.Warn("lease not acquired; retrying", "err", err)
				warned = true
			}
			_ = sleep(ctx, step)
			continue
		}
		warned = false
		log.Info("lease acquired")
		done, err := hold(ctx, kv, o, rev, sent, fn, log)
		if done {
			return err
		}
	}
	return nil
}

// hold runs fn while renewing the lease of revision rev (written at sent).
// It reports done when Run should return (ctx ended, or fn returned).
func hold(ctx context.Context, kv jetstream.KeyValue, o Options, rev uint64, sent time.Time,
	fn func(ctx context.Context) error, log *slog.Logger) (done bool, err error) {
	step := o.TTL / 4
	// The bucket times the entry from when the server stored it, which is
	// after sent; stopping a step before sent+TTL leaves fn that long to
	// return before another replica can acquire the lease.
	validUntil := sent.Add(o.TTL - step)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- fn(fctx) }()
	o.OnChange(true)
	defer o.OnChange(false)
	renew := time.NewTicker(step)
	defer renew.Stop()
	expiry := time.NewTimer(time.Until(validUntil))
	defer expiry.Stop()
	stop := func() error {
		cancel()
		return <-result
	}
	for {
		select {
		case <-ctx.Done():
			ferr := stop()
			release(kv, o.Key, rev, log)
			return true, ferr
		case ferr := <-result:
			release(kv, o.Key, rev, log)
			if ctx.Err() != nil {
				return true, nil
			}
			return true, ferr
		case <-expiry.C:
			log.Warn("lease not renewed in time; stopping its work so another replica can take over")
			_ = stop()
			return false, nil
		case <-renew.C:
			at := time.Now()
			rctx, rcancel := context.WithDeadline(ctx, validUntil)
			nrev, err := kv.Update(rctx, o.Key, []byte(o.Holder), rev)
			rcancel()
			switch {
			case err == nil:
				rev = nrev
				validUntil = at.Add(o.TTL - step)
				expiry.Reset(time.Until(validUntil))
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound):
				// Someone else holds it now: this process must have
				// been cut off past the TTL.
				log.Warn("lease lost to another replica; stopping its work", "err", err)
				_ = stop()
				return false, nil
			default:
				if ctx.Err() == nil {
					log.Warn("lease renewal failed; trying again", "err", err, "valid_for", time.Until(validUntil).Round(time.Millisecond))
				}
			}
		}
	}
}

// release deletes the lease if it is still ours, so that another replica
// need not wait out the TTL.
func release(kv jetstream.KeyValue, key string, rev uint64, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
		log.Info("lease not released; it expires by itself", "err", err)
		return
	}
	log.Info("lease released")
}

// bucket creates or updates the bucket: entries expire TTL after their last
// write, and only the latest one is kept.
func bucket(ctx context.Context, js jetstream.JetStream, o Options) (jetstream.KeyValue, error) {
	cctx, cancel := context.WithTimeout(ctx, max(o.TTL/2, 2*time.Second))
	defer cancel()
	kv, err := js.KeyValue(cctx, o.Bucket)
	if err == nil {
		st, serr := kv.Status(cctx)
		if serr == nil && st.TTL() == o.TTL && st.History() == 1 && replicasOf(st) == o.Replicas {
			return kv, nil
		}
	}
	kv, err = js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "yzpay leases: work that runs on one replica at a time",
		History:     1,
		TTL:         o.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", o.Bucket, err)
	}
	return kv, nil
}

func replicasOf(st jetstream.KeyValueStatus) int {
	if s, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return s.StreamInfo().Config.Replicas
	}
	return 0
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
