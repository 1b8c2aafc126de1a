package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/cputime"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

const (
	apiKey = "bench-key"
	secret = "bench-self-secret"
)

// proc is one yzpay process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	peak int64
	// window is the largest resident set seen since the last resetWindow.
	window atomic.Int64
}

func startProc(pin *pinning, name, bin string, args []string, env []string, dir string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	name0, args0 := pin.command(bin, args)
	cmd := exec.Command(name0, args0...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath}
	p.window.Store(0)
	go func() { _ = cmd.Wait(); f.Close() }()
	return p, nil
}

// sampleRSS records the process's peak resident set (VmHWM).
func (p *proc) sampleRSS() {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			if kb*1024 > p.peak {
				p.peak = kb * 1024
			}
		case "VmRSS:":
			if kb*1024 > p.window.Load() {
				p.window.Store(kb * 1024)
			}
		}
	}
}

func (p *proc) stop() {
	p.sampleRSS()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for p.cmd.ProcessState == nil {
			time.Sleep(20 * time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// cpuSeconds is the user+system CPU time a process has used, 0 for one
// that has gone.
func cpuSeconds(pid int) float64 {
	d, err := cputime.Of(pid)
	if err != nil {
		return 0
	}
	return d.Seconds()
}

// externalCPU is the CPU time of the machine's PostgreSQL and nats-server
// processes, which the split setup uses; 0 for the embedded one.
func externalCPU(setup string) float64 {
	if setup != "split" {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	var t float64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		switch strings.TrimSpace(string(comm)) {
		case "postgres", "nats-server":
			t += cpuSeconds(pid)
		}
	}
	return t
}

// windowRSS sums the processes' largest resident sets since the last call
// and starts a new window.
func windowRSS(procs []*proc) int64 {
	var t int64
	for _, p := range procs {
		p.sampleRSS()
		t += p.window.Swap(0)
	}
	return t
}

func cpuOf(procs []*proc) float64 {
	var t float64
	for _, p := range procs {
		t += cpuSeconds(p.cmd.Process.Pid)
	}
	return t
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(url string, procs []*proc) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range procs {
			if p.cmd.ProcessState != nil {
				return fmt.Errorf("%s exited during start; see %s", p.name, p.log)
			}
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 60s", url)
}

func (m *benchMerchant) delivered(ids []string) (n int, last time.Time) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var lastNs int64
	for _, id := range ids {
		if s := m.slots[id]; s != nil {
			if t := s.first.Load(); t != 0 {
				n++
				lastNs = max(lastNs, t)
			}
		}
	}
	return n, time.Unix(0, lastNs)
}

// payment is one prepared push.
type payment struct {
	orderID string
	body    []byte
	header  http.Header
}

func runSetup(ctx context.Context, o options, setup string) (SetupResult, error) {
	dir, err := os.MkdirTemp("", "yzpay-bench-"+setup+"-")
	if err != nil {
		return SetupResult{}, err
	}
	if o.keep {
		fmt.Printf("%s: logs and data kept in %s\n", setup, dir)
	} else {
		defer os.RemoveAll(dir)
	}

	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		return SetupResult{}, err
	}
	defer sb.Close()
	var yz http.Handler = sb
	var cache *tradeCache
	if o.rig == "cheap" {
		cache = newTradeCache(sb)
		yz = cache
	}
	sbSrv := httptest.NewServer(yz)
	defer sbSrv.Close()
	m := newMerchant(o.rig == "full")
	mSrv := httptest.NewServer(m)
	defer mSrv.Close()
	c := sb.Config()
	gwAddr := freeAddr()
	common := []string{
		"YOUZAN_API_BASE=" + sbSrv.URL, "YOUZANYUN_CLIENT_ID=" + c.ClientID, "YOUZANYUN_CLIENT_SECRET=" + c.ClientSecret,
		"YOUZAN_KDT_ID=" + c.KdtID, "SELF_SECRET=" + secret, "PUSH_API=" + mSrv.URL, "GATEWAY_API_KEY=" + apiKey,
		"GATEWAY_ADDR=" + gwAddr, "OPS_ADDR=same", "LOG_LEVEL=" + o.logLevel, "ORDER_TTL=24h", "RECONCILE_INTERVAL=1h",
	}
	res := SetupResult{Setup: setup, PeakRSSProcess: map[string]int64{}, Rig: o.rig, Pinning: o.pin.String(), YzpayCores: o.pin.yzCores}
	var procs []*proc
	switch setup {
	case "embedded":
		res.Description = "yzpay serve: gateway+tradefetcher+notifier in one process, embedded JetStream (file store), SQLite"
		args := []string{"serve"}
		if o.cpuprofile != "" {
			prof, _ := filepath.Abs(o.cpuprofile)
			args = append(args, "--cpuprofile", prof)
		}
		if o.memprofile != "" {
			prof, _ := filepath.Abs(o.memprofile)
			args = append(args, "--memprofile", prof)
		}
		p, err := startProc(&o.pin, "yzpay", filepath.Join(o.bin, "yzpay"), args, append(common, "DATA_DIR="+filepath.Join(dir, "data")), dir)
		if err != nil {
			return res, err
		}
		procs = append(procs, p)
	case "split":
		res.Description = "gateway, tradefetcher, notifier as three processes on PostgreSQL and nats-server (JetStream file store)"
		dbURL, drop, err := createDB(ctx, o.pgURL)
		if err != nil {
			return res, err
		}
		defer drop()
		if err := resetStreams(ctx, o.natsURL); err != nil {
			return res, err
		}
		defer func() { _ = resetStreams(ctx, o.natsURL) }()
		if o.pin.on {
			fmt.Println("split: PostgreSQL and nats-server are the machine's, not started by the bench, so they are not pinned: they run on any core, the rig's included")
		}
		env := append(common, "DATABASE_URL="+dbURL, "NATS_URL="+o.natsURL)
		// Migrate once first so the three do not all wait on the lock.
		if out, err := exec.Command(filepath.Join(o.bin, "yzpay"), "migrate").CombinedOutput(); err != nil {
			_ = out
		}
		for _, name := range []string{"gateway", "tradefetcher", "notifier"} {
			e := env
			if name != "gateway" {
				e = append(env, "METRICS_ADDR="+freeAddr())
			}
			p, err := startProc(&o.pin, name, filepath.Join(o.bin, name), nil, e, dir)
			if err != nil {
				return res, err
			}
			procs = append(procs, p)
		}
	default:
		return res, fmt.Errorf("unknown setup %q (embedded or split)", setup)
	}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	base := "http://" + gwAddr
	if err := waitReady(base+"/readyz", procs); err != nil {
		return res, err
	}
	stopSampling := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				for _, p := range procs {
					p.sampleRSS()
				}
			}
		}
	}()
	defer close(stopSampling)

	// Keep-alive everywhere: the pushes reuse idle connections (each answer
	// is read to the end), as do yzpay's clients to the sandbox and merchant.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}}
	var (
		qrTime time.Duration
		qrCPU  float64 // seconds of yzpay CPU while orders were created
	)
	for i, rate := 0, 0; ; i++ {
		rate = nextRate(o, i, rate)
		if rate == 0 {
			break
		}
		n := int(float64(rate) * o.stepDur.Seconds())
		// Orders for this step are created (QR image rendered) and paid
		// before it, so that stepping up needs no huge creation phase.
		pays, took, cpu, qrErrs, err := createOrders(ctx, client, base, sb, cache, fmt.Sprintf("%s-%d", setup, i), n, o.workers,
			func() float64 { return cpuOf(procs) })
		if err != nil {
			return res, err
		}
		qrTime += took
		qrCPU += cpu
		res.Orders += len(pays)
		res.QRErrors += qrErrs
		res.QRPhaseRSSBytes = max(res.QRPhaseRSSBytes, windowRSS(procs))
		ids := make([]string, len(pays))
		for i, p := range pays {
			ids[i] = p.orderID
		}
		m.expect(ids)
		cpu0, self0, ext0 := cpuOf(procs), cpuSeconds(os.Getpid()), externalCPU(setup)
		step := offer(client, base, m, pays, rate, o.drain)
		if step.Delivered > 0 {
			step.YzpayCPUms = (cpuOf(procs) - cpu0) * 1000 / float64(step.Delivered)
			step.HarnessCPUms = (cpuSeconds(os.Getpid()) - self0) * 1000 / float64(step.Delivered)
			step.ServersCPUms = (externalCPU(setup) - ext0) * 1000 / float64(step.Delivered)
		}
		step.PerYzpayCore = step.Achieved / float64(res.YzpayCores)
		step.BadSigns = int(m.badSigns.Load())
		step.PeakRSSBytes = windowRSS(procs)
		res.Steps = append(res.Steps, step)
		if step.Missing > 0 || step.DupEvents > 0 {
			res.Failed = true
		}
		if step.Behind {
			break
		}
		res.HighestHeld = step.Offered
		res.MaxSustained = max(res.MaxSustained, step.Achieved)
	}
	if qrTime > 0 {
		res.QRPerSecond = float64(res.Orders) / qrTime.Seconds()
	}
	if res.Orders > 0 {
		res.QRCPUms = qrCPU * 1000 / float64(res.Orders)
	}
	if cache != nil {
		res.TradeGetCached, res.TradeGetSandbox = cache.hits.Load(), cache.misses.Load()
	}
	for _, p := range procs {
		p.sampleRSS()
		res.PeakRSSProcess[p.name] = p.peak
		res.PeakRSSBytes += p.peak
	}
	return res, nil
}

// createOrders creates total orders through the gateway API, then pays each
// in the sandbox without pushing and prepares the signed trade_TradePaid
// push Youzan would send. It also returns the CPU seconds yzpayCPU counted
// while the orders were created (not while they were paid).
func createOrders(ctx context.Context, client *http.Client, base string, sb *sandbox.Sandbox, cache *tradeCache, setup string, total, workers int,
	yzpayCPU func() float64) ([]payment, time.Duration, float64, int, error) {
	type created struct {
		orderID string
		qrID    int64
	}
	out := make([]created, total)
	var errs atomic.Int64
	var idx atomic.Int64
	cpu0 := yzpayCPU()
	start := time.Now()
	var wg sync.WaitGroup
	prefix := fmt.Sprintf("bench-%s-%d-", setup, start.Unix())
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(idx.Add(1)) - 1
				if i >= total {
					return
				}
				id := prefix + strconv.Itoa(i)
				body, _ := json.Marshal(map[string]any{"name": "bench order", "price": 100 + i%900, "order_id": id})
				req, _ := http.NewRequest("POST", base+"/api/payment/qrcode", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+apiKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				var q struct {
					QRID   int64  `json:"qr_id"`
					QRCode string `json:"qr_code"`
				}
				err = json.NewDecoder(resp.Body).Decode(&q)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || q.QRID == 0 || !strings.HasPrefix(q.QRCode, "data:image/png;base64,") {
					errs.Add(1)
					continue
				}
				out[i] = created{orderID: id, qrID: q.QRID}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := yzpayCPU() - cpu0
	var pays []payment
	for _, c := range out {
		if c.qrID == 0 {
			continue
		}
		tr, err := sb.Pay(ctx, c.qrID, sandbox.PayOptions{BuyerID: "buyer-" + c.orderID, NoPush: true})
		if err != nil {
			return nil, 0, 0, 0, fmt.Errorf("sandbox pay: %w", err)
		}
		if cache != nil {
			if err := cache.precompute(tr.TID); err != nil {
				return nil, 0, 0, 0, err
			}
		}
		body, hdr, err := sb.BuildPush(tr.TID, "trade_TradePaid")
		if err != nil {
			return nil, 0, 0, 0, err
		}
		pays = append(pays, payment{orderID: c.orderID, body: body, header: hdr})
	}
	if len(pays) == 0 {
		return nil, 0, 0, 0, errors.New("no order could be created; see the process logs")
	}
	return pays, elapsed, cpu, int(errs.Load()), nil
}

// offer posts pays at rate per second, open loop: each push goes out at its
// scheduled time whether or not earlier ones were answered.
func offer(client *http.Client, base string, m *benchMerchant, pays []payment, rate int, drain time.Duration) StepResult {
	res := StepResult{Offered: rate, Sent: len(pays)}
	accepted := make([]time.Time, len(pays))
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range pays {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Like Youzan, push again when the answer is not a success
			// (here every 2 s for up to 2 minutes; Youzan keeps trying for
			// hours); each refusal counts as an error.
			for try := 0; try < 60; try++ {
				if try > 0 {
					time.Sleep(2 * time.Second)
				}
				if post(client, base, pays[i]) {
					accepted[i] = time.Now()
					return
				}
				errs.Add(1)
			}
		}()
	}
	wg.Wait()
	ids := make([]string, len(pays))
	for i, p := range pays {
		ids[i] = p.orderID
	}
	// Drain: wait while notifications keep arriving.
	lastN, lastProgress := -1, time.Now()
	for {
		n, _ := m.delivered(ids)
		if n == len(ids) {
			break
		}
		if n != lastN {
			lastN, lastProgress = n, time.Now()
		} else if time.Since(lastProgress) > drain {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, last := m.delivered(ids)
	res.Delivered, res.Missing, res.Errors = n, len(ids)-n, int(errs.Load())
	if n > 0 {
		res.Achieved = float64(n) / last.Sub(start).Seconds()
	}
	var lat []float64
	m.mu.RLock()
	for i, id := range ids {
		sl := m.slots[id]
		if t := sl.first.Load(); t != 0 && !accepted[i].IsZero() {
			d := time.Unix(0, t).Sub(accepted[i]).Seconds() * 1000
			if d < 0 {
				d = 0 // the notification beat the gateway's answer back to us
			}
			lat = append(lat, d)
		}
		if c := sl.count.Load(); c > 1 {
			res.Duplicates += int(c) - 1
		}
		sl.mu.Lock()
		res.DupEvents += sl.otherEvents
		sl.mu.Unlock()
	}
	m.mu.RUnlock()
	sort.Float64s(lat)
	res.P50ms, res.P90ms, res.P99ms = pct(lat, 50), pct(lat, 90), pct(lat, 99)
	if len(lat) > 0 {
		res.MaxMs = lat[len(lat)-1]
	}
	// Held, as issue 16 defines sustaining a rate: nothing lost or refused,
	// at least 95 % of the offered rate delivered, p99 under 250 ms.
	res.Behind = res.Missing > 0 || res.Errors > 0 || res.Achieved < 0.95*float64(rate) || res.P99ms >= 250
	return res
}

// post offers one push as Youzan would and reports whether it was accepted.
func post(client *http.Client, base string, p payment) bool {
	req, _ := http.NewRequest("POST", base+"/api/status", bytes.NewReader(p.body))
	for k, v := range p.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200 && bytes.Contains(b, []byte("success"))
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// createDB makes a fresh database for the split setup.
func createDB(ctx context.Context, adminURL string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	name := fmt.Sprintf("yzpay_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	cfg, _ := pgx.ParseConfig(adminURL)
	url := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	return url, func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(context.Background())
	}, nil
}

// resetStreams deletes the yzpay streams on the shared NATS server so each
// run starts empty.
func resetStreams(ctx context.Context, url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for _, s := range []string{natsjs.WebhookStream, natsjs.PaymentStream} {
		if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
	}
	return nil
}

// nextRate is the offered rate of step i: the -steps list, then (with -max)
// half as much again each step, rounded to 500/s, up to -max; 0 ends.
func nextRate(o options, i, prev int) int {
	if i < len(o.steps) {
		return o.steps[i]
	}
	if o.maxRate <= prev {
		return 0
	}
	r := (prev*3/2 + 499) / 500 * 500
	return min(max(r, prev+500), o.maxRate)
}
