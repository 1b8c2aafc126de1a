// Package process is the life of a yzpay binary: load envrc and the
// environment, run until SIGINT or SIGTERM, and on failure print one line and
// exit non-zero — never a panic or a stack trace for a start-up mistake.
package process

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/yzpay/yzpay/shared/config"
)

// Run is a binary's body: ctx ends on SIGINT/SIGTERM; logs go to stderr.
type Run func(ctx context.Context, env config.Env, stderr io.Writer) error

// Main runs run and exits: 0 after a clean stop, 2 when envrc cannot be read,
// 1 for any other failure, a missing or invalid setting included (the exit
// statuses of the first release, which scripts may test).
func Main(name string, run Run) {
	os.Exit(Exec(name, run, os.Stderr))
}

// Exec is Main without the exit, for tests.
func Exec(name string, run Run, stderr io.Writer) int {
	env, err := config.Load("envrc")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, Line(err))
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env, stderr); err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, Line(err))
		return ExitFailure
	}
	return 0
}

// Exit statuses. ExitFailure covers every failure that stopped a run, a
// missing or invalid setting included, as the first release did (scripts
// may test for it); ExitUsage is an unreadable envrc or bad usage.
const (
	ExitFailure = 1
	ExitUsage   = 2
)

// Line is err's message on one line: some drivers' errors span several (pgx
// lists each connection attempt on a line of its own, often the same one
// twice), and a start-up failure must read as one line. Repeated lines are
// dropped; a line ending in ":" runs on into the next, others are joined
// with "; ".
func Line(err error) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
	}
	return b.String()
}
