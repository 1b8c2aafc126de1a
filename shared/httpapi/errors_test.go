package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
)

func apiErrors(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "yzpay_api_errors_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "code" {
					out[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func TestError(t *testing.T) {
	const secret = "postgres://yzpay:hunter2@db/yzpay"
	for _, c := range []struct {
		name    string
		err     error
		status  int
		code    string
		message string
		logged  bool
	}{
		{"domain error", domain.Errorf(domain.CodeOrderConflict, "order %s differs", "o-1"),
			409, "order_conflict", "order o-1 differs", false},
		{"wrapped domain error", fmt.Errorf("create: %w", domain.Wrap(errors.New(secret), domain.CodeUnavailable, "retry")),
			503, "unavailable", "retry", false},
		{"store sentinel", fmt.Errorf("sqlite store: order with id x: %w", domain.ErrNotFound),
			404, "order_not_found", "no such order", false},
		{"plain error", fmt.Errorf("query: %s", secret),
			500, "internal", "internal error", true},
		{"code missing from the table", &domain.Error{Code: "made_up", Message: secret},
			500, "internal", "internal error", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := metrics.New()
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			h := Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				Error(w, r, m, log, c.err)
			}), m, log, func(*http.Request) string { return "/x" })
			req := httptest.NewRequest("GET", "/x", nil)
			req.Header.Set(RequestIDHeader, "rid-7")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != c.status {
				t.Errorf("status %d, want %d", rec.Code, c.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			want := `{"error":{"code":"` + c.code + `","message":"` + c.message + `"}}` + "\n"
			if rec.Body.String() != want {
				t.Errorf("body %s, want %s", rec.Body, want)
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Errorf("the answer leaks the error's text: %s", rec.Body)
			}
			if got := apiErrors(t, m); len(got) != 1 || got[c.code] != 1 {
				t.Errorf("yzpay_api_errors_total = %v, want {%s: 1}", got, c.code)
			}
			if c.logged != strings.Contains(logs.String(), "hunter2") {
				t.Errorf("logged the real error: %v, want %v; log: %s", !c.logged, c.logged, logs.String())
			}
			if c.logged && !strings.Contains(logs.String(), "request_id=rid-7") {
				t.Errorf("the log lacks the request id: %s", logs.String())
			}
		})
	}
}

// A panic is logged once by Instrument and answered like any internal error.
func TestInstrumentPanicIsInternal(t *testing.T) {
	m := metrics.New()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := Instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }),
		m, log, func(*http.Request) string { return "/x" })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 500 || rec.Body.String() != `{"error":{"code":"internal","message":"internal error"}}`+"\n" {
		t.Errorf("answer %d %s", rec.Code, rec.Body)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d error log lines, want 1: %s", n, logs.String())
	}
	if got := apiErrors(t, m); got["internal"] != 1 {
		t.Errorf("yzpay_api_errors_total = %v", got)
	}
}

// Every Code the domain declares has a status, and the table holds nothing
// else: a code added to one but not the other would answer 500 at run time.
func TestStatusesCoverDomainCodes(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../domain/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[domain.Code]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("a Code constant is not a string literal: %#v", v)
				}
				s, _ := strconv.Unquote(lit.Value)
				declared[domain.Code(s)] = true
			}
		}
	}
	if len(declared) < 20 {
		t.Fatalf("found only %d Code constants in domain/errors.go; the scan is broken", len(declared))
	}
	table := Statuses()
	for c := range declared {
		if st, ok := table[c]; !ok || st < 400 || st > 599 {
			t.Errorf("domain.Code %q has status %d in the table", c, st)
		}
	}
	for c := range table {
		if !declared[c] {
			t.Errorf("the table maps %q, which domain does not declare", c)
		}
	}
	table[domain.CodeBusy] = 200
	if Statuses()[domain.CodeBusy] != http.StatusServiceUnavailable {
		t.Error("Statuses hands out the table itself")
	}
}
