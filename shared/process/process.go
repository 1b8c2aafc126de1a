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
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env, stderr); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
