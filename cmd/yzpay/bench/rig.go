package main

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yzpay/yzpay/shared/merchant"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// The rig (load generator, fake Youzan, merchant) shares the machine with
// yzpay, so every CPU millisecond it spends is one yzpay cannot. The cheap
// rig answers trade.get from bodies rendered once, before the step, and the
// merchant checks each sign on pooled buffers; -rig full keeps the old
// sandbox-and-merchant-package path for A/B runs.

const tradeGetPath = "/api/youzan.trade.get/4.0.0"

// tradeCache serves trade.get for the bench's trades from precomputed bodies
// and passes everything else (token, QR creation) to the sandbox.
type tradeCache struct {
	sb     *sandbox.Sandbox
	mu     sync.RWMutex
	bodies map[string][]byte
	hits   atomic.Int64
	misses atomic.Int64
	token  string
}

var jsonContentType = []string{"application/json;charset=UTF-8"}

func newTradeCache(sb *sandbox.Sandbox) *tradeCache {
	return &tradeCache{sb: sb, bodies: map[string][]byte{}}
}

func (c *tradeCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != tradeGetPath || !strings.Contains(r.URL.RawQuery, "access_token=") {
		c.sb.ServeHTTP(w, r)
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	body, err := readInto(r.Body, bp)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	c.mu.RLock()
	ans, ok := c.bodies[string(jsonString(body, "tid"))]
	c.mu.RUnlock()
	if !ok {
		// Not one of ours (or not precomputed): the sandbox answers, with the
		// body put back.
		c.misses.Add(1)
		r.Body = io.NopCloser(bytes.NewReader(bytes.Clone(body)))
		c.sb.ServeHTTP(w, r)
		return
	}
	c.hits.Add(1)
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(ans)
}

// precompute renders the sandbox's own trade.get answer for tid once.
func (c *tradeCache) precompute(tid string) error {
	if c.token == "" {
		cfg := c.sb.Config()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(fmt.Sprintf(
			`{"client_id":%q,"client_secret":%q,"authorize_type":"silent","grant_id":%q}`, cfg.ClientID, cfg.ClientSecret, cfg.KdtID)))
		req.Header.Set("Content-Type", "application/json")
		c.sb.ServeHTTP(rec, req)
		tok := jsonString(rec.Body.Bytes(), "access_token")
		if len(tok) == 0 {
			return fmt.Errorf("sandbox token: %s", rec.Body.String())
		}
		c.token = string(tok)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, tradeGetPath+"?access_token="+c.token, strings.NewReader(`{"tid":"`+tid+`"}`))
	req.Header.Set("Content-Type", "application/json")
	c.sb.ServeHTTP(rec, req)
	if !bytes.Contains(rec.Body.Bytes(), []byte(`"response"`)) {
		return fmt.Errorf("sandbox trade.get %s: %s", tid, rec.Body.String())
	}
	c.mu.Lock()
	c.bodies[tid] = rec.Body.Bytes()
	c.mu.Unlock()
	return nil
}

// jsonString finds "key": "value" in a small flat JSON text without decoding
// it; good enough for the sandbox's and yzpay's own requests, which carry no
// escapes in these values.
func jsonString(b []byte, key string) []byte {
	k := []byte(`"` + key + `"`)
	i := bytes.Index(b, k)
	if i < 0 {
		return nil
	}
	b = bytes.TrimLeft(b[i+len(k):], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return nil
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '"' {
		return nil
	}
	b = b[1:]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return nil
	}
	return b[:j]
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func readInto(rd io.Reader, bp *[]byte) ([]byte, error) {
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			if len(b) > merchant.MaxBodyBytes {
				return nil, merchant.ErrMalformed
			}
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*bp = b
			return b, nil
		}
		if err != nil {
			*bp = b
			return nil, err
		}
	}
}

// slot is one order's ledger line at the merchant.
type slot struct {
	first atomic.Int64 // unix nanos of the first TRADE_SUCCESS; 0 = none yet
	count atomic.Int32 // TRADE_SUCCESS notifications received
	mu    sync.Mutex
	event string // event id of the first one
	// otherEvents counts TRADE_SUCCESS notifications under an event id other
	// than the first: the same payment announced twice, which the ledger
	// does not allow (a retry of the same event is allowed).
	otherEvents int
}

// benchMerchant checks every sign and records, per order, when it was first
// notified and under which event ids.
type benchMerchant struct {
	full     bool // -rig full: the merchant package's allocating path
	mu       sync.RWMutex
	slots    map[string]*slot
	badSigns atomic.Int64
}

func newMerchant(full bool) *benchMerchant {
	return &benchMerchant{full: full, slots: map[string]*slot{}}
}

// expect registers orders before their pushes go out.
func (m *benchMerchant) expect(ids []string) {
	m.mu.Lock()
	for _, id := range ids {
		if m.slots[id] == nil {
			m.slots[id] = &slot{}
		}
	}
	m.mu.Unlock()
}

func (m *benchMerchant) slot(id []byte) *slot {
	m.mu.RLock()
	s := m.slots[string(id)]
	m.mu.RUnlock()
	return s
}

func (m *benchMerchant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	var orderID, status []byte
	ok := false
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	if m.full || strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		p, err := merchant.FromRequest(r)
		ok = err == nil && p.Verify(secret)
		orderID, status = []byte(p.OrderID), []byte(p.Status)
	} else if body, err := readInto(r.Body, bp); err == nil {
		orderID, status, ok = checkForm(body)
	}
	if !ok {
		m.badSigns.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if string(status) == "TRADE_SUCCESS" {
		if s := m.slot(orderID); s != nil {
			s.first.CompareAndSwap(0, now)
			s.count.Add(1)
			ev := r.Header.Get("X-Yzpay-Event-Id")
			s.mu.Lock()
			if s.event == "" {
				s.event = ev
			} else if s.event != ev {
				s.otherEvents++
			}
			s.mu.Unlock()
		}
	}
	w.WriteHeader(http.StatusOK)
}

// checkForm verifies a form-encoded push's sign on the stack: the MD5 of
// time|tradeNo|orderId|payment|status|secret, as merchant.Sign. Values with
// escapes go through url.QueryUnescape (not the case for the bench's ids).
func checkForm(body []byte) (orderID, status []byte, ok bool) {
	var tm, tradeNo, payment, sign []byte
	for len(body) > 0 {
		var kv []byte
		if i := bytes.IndexByte(body, '&'); i >= 0 {
			kv, body = body[:i], body[i+1:]
		} else {
			kv, body = body, nil
		}
		eq := bytes.IndexByte(kv, '=')
		if eq < 0 {
			continue
		}
		v := kv[eq+1:]
		if bytes.ContainsAny(v, "%+") {
			s, err := url.QueryUnescape(string(v))
			if err != nil {
				return nil, nil, false
			}
			v = []byte(s)
		}
		switch string(kv[:eq]) {
		case "time":
			tm = v
		case "tradeNo":
			tradeNo = v
		case "orderId":
			orderID = v
		case "payment":
			payment = v
		case "status":
			status = v
		case "sign":
			sign = v
		}
	}
	pay, err := strconv.ParseInt(string(payment), 10, 64)
	if err != nil || len(sign) != 32 {
		return nil, nil, false
	}
	var buf [512]byte
	b := buf[:0]
	b = append(b, tm...)
	b = append(b, '|')
	b = append(b, tradeNo...)
	b = append(b, '|')
	b = append(b, orderID...)
	b = append(b, '|')
	b = strconv.AppendInt(b, pay, 10)
	b = append(b, '|')
	b = append(b, status...)
	b = append(b, '|')
	b = append(b, secret...)
	sum := md5.Sum(b)
	var want [32]byte
	hex.Encode(want[:], sum[:])
	var got [32]byte
	copy(got[:], sign)
	for i, c := range got {
		if 'A' <= c && c <= 'F' {
			got[i] = c + 'a' - 'A'
		}
	}
	return orderID, status, subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// pinning is how the bench splits the cores between yzpay and the rig.
type pinning struct {
	on        bool
	yzpay     string // taskset CPU list for the yzpay processes
	rig       string // and for this process
	yzCores   int
	rigCores  int
	why       string // why pinning is off
	savedProc int
}

// planPinning gives yzpay the first half of the cores (at least one) and
// the rig the rest, when taskset exists and there are two cores or more.
func planPinning(mode string) pinning {
	n := runtime.NumCPU()
	p := pinning{yzCores: n, rigCores: n}
	switch {
	case mode == "off":
		p.why = "unpinned (-pin off)"
		return p
	case n < 2:
		p.why = "unpinned: one core"
		return p
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		p.why = "unpinned: taskset not found"
		return p
	}
	k := n / 2
	p.on, p.yzCores, p.rigCores = true, k, n-k
	p.yzpay, p.rig = cpuList(0, k-1), cpuList(k, n-1)
	return p
}

func cpuList(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

// pinSelf moves every thread of this process onto the rig's cores.
func (p *pinning) pinSelf() error {
	if !p.on {
		return nil
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", p.rig, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %v: %s", err, out)
	}
	p.savedProc = runtime.GOMAXPROCS(p.rigCores)
	return nil
}

// command wraps bin so that it runs on yzpay's cores.
func (p *pinning) command(bin string, args []string) (string, []string) {
	if !p.on {
		return bin, args
	}
	return "taskset", append([]string{"-c", p.yzpay, bin}, args...)
}

func (p *pinning) String() string {
	if !p.on {
		return p.why
	}
	return fmt.Sprintf("pinned: yzpay on CPU %s, rig on CPU %s", p.yzpay, p.rig)
}

// gitDescribe names the code a result belongs to.
func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return "dev"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, strings.TrimSpace(string(out)))
}
