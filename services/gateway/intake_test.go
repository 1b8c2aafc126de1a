package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/natsjs"
)

// serve runs e's handler on a real listener with the production server
// settings (httpapi.Serve) and returns its address. inFlight counts the
// requests inside the handler.
func (e *env) serve(inFlight *atomic.Int64) string {
	e.t.Helper()
	ln, err := httpapi.Listen("127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		e.h.ServeHTTP(w, r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = httpapi.Serve(ctx, ln, h, time.Second) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

const slowHead = "POST /api/status HTTP/1.1\r\nHost: yzpay\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"

// TestSlowSendersDoNotDelayRealPushes: 600 connections (more than the 512
// publish slots) trickle a push body one byte every 200 ms, reconnecting
// whenever the gateway cuts them off, while real signed pushes arrive one
// after another. Each real push must be stored and answered 200 within 1 s.
func TestSlowSendersDoNotDelayRealPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 600 connections")
	}
	// The production PubAck wait, not newEnv's short one: the machine is
	// busy with 600 senders and the race detector.
	e := newEnv(t, func(c *config.Gateway, _ *gateway.Deps) { c.PublishTimeout = 4 * time.Second })
	var inFlight atomic.Int64
	addr := e.serve(&inFlight)

	const senders = 600
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var connects atomic.Int64
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread over one deadline, as independent senders would be,
			// rather than reconnecting all at once every 3 s.
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(i) * 3 * time.Second / senders):
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // a full backlog; try again
					continue
				}
				connects.Add(1)
				trickle(c, stop)
				_ = c.Close()
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	// Today's main gives every slot to these senders: wait until many
	// of them (300; on main all 600 get in and hold the 512 slots) are inside
	// the handler before the real pushes come.
	eventually(t, "slow senders inside the push handler", func() bool { return inFlight.Load() >= 300 })

	client := &http.Client{Timeout: 10 * time.Second}
	var took []time.Duration
	// Real pushes go on until at least 100 were sent and slow senders have
	// been cut off by the read deadline and reconnected (60 of them).
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 100 || connects.Load() < senders+senders/10; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s only %d connections made by %d slow senders: the gateway does not cut them off", connects.Load(), senders)
		}
		tid := fmt.Sprintf("E20240101120000%09d", i)
		body, _ := pushBody("trade_TradePaid", tid, "TRADE_PAID", fmt.Sprintf("real-%d", i))
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/status", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Event-Sign", eventSign(body, clientSecret))
		start := time.Now()
		resp, err := client.Do(req)
		d := time.Since(start)
		if err != nil {
			t.Fatalf("real push %d: %v", i, err)
		}
		reply, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(reply) != youzanSuccess {
			t.Fatalf("real push %d behind %d slow senders: %d %s", i, inFlight.Load(), resp.StatusCode, reply)
		}
		took = append(took, d)
	}
	real := len(took)
	slices.Sort(took)
	p95, p99, worst := took[len(took)*95/100], took[len(took)*99/100], took[len(took)-1]
	t.Logf("%d slow senders (%d connections made, %d in the handler at the end): %d real pushes, p50 %s, p95 %s, p99 %s, max %s",
		senders, connects.Load(), inFlight.Load(), real, took[len(took)/2], p95, p99, worst)
	// Queued behind the senders, a real push would wait out their 3 s read
	// deadline or their whole trickle (minutes); on today's main it is
	// refused 503 at once. The bounds are generous because this machine is
	// shared and runs -race; the quiet-machine figures are in
	// docs/security.md#bounded-intake.
	if p50, slowest := took[len(took)/2], 10*time.Second; p50 > time.Second || worst >= slowest {
		t.Errorf("real pushes answered in p50 %s, max %s; want p50 under 1 s and none %s or more", p50, worst, slowest)
	}
	if n := e.receiptCount(); n != real {
		t.Errorf("%d receipts stored, want %d", n, real)
	}
}

// trickle sends a push head and then one body byte every 200 ms until the
// gateway answers or closes the connection, or stop is closed.
func trickle(c net.Conn, stop <-chan struct{}) {
	if _, err := io.WriteString(c, slowHead); err != nil {
		return
	}
	closed := make(chan struct{})
	go func() {
		// Any answer (or EOF) ends this connection's turn.
		_, _ = bufio.NewReader(c).ReadByte()
		close(closed)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-closed:
			return
		case <-tick.C:
			if _, err := c.Write([]byte{' '}); err != nil {
				return
			}
		}
	}
}

// TestPushBytesInFlightAreBounded: senders that send most of a maximal
// body and stall cannot make the gateway hold more than MaxPushBytes; those
// beyond it are answered 503 busy at once, not when their deadline ends.
func TestPushBytesInFlightAreBounded(t *testing.T) {
	e := newEnv(t, func(c *config.Gateway, _ *gateway.Deps) {
		c.MaxPushBytes = 256 << 10
		c.PushReadTimeout = 30 * time.Second
	})
	var inFlight atomic.Int64
	addr := e.serve(&inFlight)
	const senders = 12
	part := strings.Repeat(" ", 60<<10)
	results := make(chan int, senders)
	for range senders {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				results <- -1
				return
			}
			defer c.Close()
			head := "POST /api/status HTTP/1.1\r\nHost: yzpay\r\nContent-Type: application/json\r\nContent-Length: 65000\r\n\r\n"
			_, _ = io.WriteString(c, head+part)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- 0 // still held when the test gave up
				return
			}
			_ = resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	busy := 0
	for range senders {
		if <-results == http.StatusServiceUnavailable {
			busy++
		}
		if busy >= senders-4 {
			break // at most four 60 KiB bodies fit 256 KiB
		}
	}
	t.Logf("%d stalled 60 KiB senders, budget 256 KiB: %d answered 503 busy", senders, busy)
	if busy < senders-4 {
		t.Errorf("%d of %d over-budget senders answered busy, want at least %d", busy, senders, senders-4)
	}
}

// receiptCount is the number of receipts in the webhook stream.
func (e *env) receiptCount() int {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, natsjs.WebhookStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return int(info.State.Msgs)
}
