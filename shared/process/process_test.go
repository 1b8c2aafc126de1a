package process

import (
	"errors"
	"fmt"
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

func TestExitCode(t *testing.T) {
	if _, err := config.LoadNotifier(config.FromMap(nil)); ExitCode(err) != 2 {
		t.Errorf("missing settings: exit %d, want 2", ExitCode(err))
	}
	if _, err := config.LoadNotifier(config.FromMap(map[string]string{"PUSH_FORMAT": "xml"})); ExitCode(fmt.Errorf("wrapped: %w", err)) != 2 {
		t.Errorf("invalid setting: exit %d, want 2", ExitCode(err))
	}
	if c := ExitCode(errors.New("listen: address already in use")); c != 1 {
		t.Errorf("runtime failure: exit %d, want 1", c)
	}
}
