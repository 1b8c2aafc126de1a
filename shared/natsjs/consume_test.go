package natsjs_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/servicetest"
)

// Batches are handled on goroutines of their own, which may start in any
// order; Admit sees them in the order JetStream delivered them, every one
// of them, so a handler can take its place in a queue there (the notifier
// keeps each order's statuses in order that way).
func TestConsumeAdmitsBatchesInDeliveryOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, cons := testConsumer(t, "admit")
	const n = 60
	for i := range n {
		if _, err := js.Publish(ctx, "admit.x", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu       sync.Mutex
		admitted []uint64
		handled  int
	)
	done := make(chan error, 1)
	go func() {
		done <- natsjs.Consume(ctx, cons, func(context.Context, []jetstream.Msg) {
			t.Error("the BatchHandler ran although Admit gave the batch's handler")
		}, natsjs.ConsumeOptions{
			Batch: 1, InFlight: 8, AckWait: 30 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Admit: func(batch []jetstream.Msg) func(context.Context) {
				md, err := batch[0].Metadata()
				if err != nil {
					t.Error(err)
					return nil
				}
				mu.Lock()
				admitted = append(admitted, md.Sequence.Stream)
				mu.Unlock()
				return func(context.Context) {
					_ = batch[0].Ack()
					mu.Lock()
					handled++
					mu.Unlock()
				}
			},
		}, time.Second)
	}()
	servicetest.Eventually(t, fmt.Sprintf("all %d messages handled", n), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled == n
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(admitted) != n {
		t.Fatalf("%d batches admitted, want %d", len(admitted), n)
	}
	for i, seq := range admitted {
		if seq != uint64(i+1) {
			t.Fatalf("batch %d admitted holds message %d: batches admitted out of delivery order: %v", i, seq, admitted)
		}
	}
}

// While every in-flight slot is busy, messages that arrive join one batch,
// handled when a slot frees, instead of queueing as a run of small batches:
// a bigger batch shares the store's reads and its commit.
func TestConsumeBatchesWhatArrivesWhileSlotsAreBusy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, cons := testConsumer(t, "busy")
	publish := func(from, to int) {
		for i := from; i <= to; i++ {
			if _, err := js.Publish(ctx, "busy.x", []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	delivered := func(n int) {
		servicetest.Eventually(t, fmt.Sprintf("%d messages delivered to the consumer", n), func() bool {
			ci, err := cons.Info(ctx)
			return err == nil && ci.NumAckPending == n
		})
	}

	var (
		mu      sync.Mutex
		sizes   []int
		handled int
	)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- natsjs.Consume(ctx, cons, func(_ context.Context, batch []jetstream.Msg) {
			mu.Lock()
			first := len(sizes) == 0
			sizes = append(sizes, len(batch))
			mu.Unlock()
			if first {
				<-release // holds the only slot
			}
			for _, m := range batch {
				_ = m.Ack()
			}
			mu.Lock()
			handled += len(batch)
			mu.Unlock()
		}, natsjs.ConsumeOptions{
			Batch: 64, InFlight: 1, AckWait: 30 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}, time.Second)
	}()

	publish(1, 1)
	servicetest.Eventually(t, "the first batch is being handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sizes) == 1
	})
	// One message arrives alone while the slot is busy, then nine more.
	publish(2, 2)
	delivered(2)
	publish(3, 11)
	delivered(11)
	close(release)
	servicetest.Eventually(t, "all 11 messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled == 11
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 2 || sizes[1] < 2 {
		t.Fatalf("batch sizes %v: the message that arrived while the slot was busy was handled alone, not with those that followed it", sizes)
	}
}

// testConsumer starts an embedded JetStream with a stream NAME on subjects
// name.> and an explicit-ack durable consumer name on it.
func testConsumer(t *testing.T, name string) (jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	_, js := servicetest.JetStream(t)
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: strings.ToUpper(name), Subjects: []string{name + ".>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := natsjs.EnsureConsumer(ctx, js, strings.ToUpper(name), jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return js, cons
}
