package app

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// Clean-up after a failed start must not turn the one line saying why into
// a stack trace: a closer that panics is logged, and the others still run.
func TestStartupCleanupSurvivesPanickingCloser(t *testing.T) {
	var logs bytes.Buffer
	a := &App{log: slog.New(slog.NewTextHandler(&logs, nil))}
	var closed []int
	a.closers = []func(){
		func() { closed = append(closed, 0) },
		func() { panic("boom") },
		func() { closed = append(closed, 2) },
	}
	a.closeAll()
	a.closeAll() // once only
	if !slices.Equal(closed, []int{2, 0}) {
		t.Errorf("closers run: %v, want [2 0]", closed)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("the panic is not logged: %q", logs.String())
	}
}
