package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/yzpay/yzpay/shared/config"
)

func TestLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain",
		// pgx lists each connection attempt, often the same one twice.
		"connect: failed to connect to `user=u database=x`:\n\t127.0.0.1:1 (127.0.0.1): refused\n\t127.0.0.1:1 (127.0.0.1): refused": "connect: failed to connect to `user=u database=x`: 127.0.0.1:1 (127.0.0.1): refused",
		"first\nsecond\n": "first; second",
	} {
		if got := Line(errors.New(in)); got != want {
			t.Errorf("Line(%q) = %q, want %q", in, got, want)
		}
	}
}

// Scripts written for the first release test for exit status 1 whatever
// stopped the start: a missing setting, an invalid one or a runtime failure.
func TestExecExitStatus(t *testing.T) {
	_, missing := config.LoadNotifier(config.FromMap(nil))
	_, invalid := config.LoadNotifier(config.FromMap(map[string]string{"PUSH_FORMAT": "xml"}))
	for _, err := range []error{missing, fmt.Errorf("wrapped: %w", invalid), errors.New("listen: address already in use")} {
		var stderr strings.Builder
		run := func(context.Context, config.Env, io.Writer) error { return err }
		if c := Exec("svc", run, &stderr); c != 1 {
			t.Errorf("%v: exit %d, want 1", err, c)
		}
		if got := stderr.String(); !strings.HasPrefix(got, "svc: ") || strings.Count(got, "\n") != 1 {
			t.Errorf("%v: stderr %q, want one line naming the service", err, got)
		}
	}
}
