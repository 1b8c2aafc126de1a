package domain

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestErrorCode(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	for _, c := range []struct {
		err  error
		want Code
	}{
		{nil, ""},
		{errors.New("boom"), CodeInternal},
		{Errorf(CodeInvalidPrice, "price %d", 0), CodeInvalidPrice},
		{fmt.Errorf("outer: %w", Wrap(cause, CodeUnavailable, "retry")), CodeUnavailable},
		{fmt.Errorf("order %q: %w", "o", ErrConflict), CodeOrderConflict},
		{fmt.Errorf("store: %w", ErrNotFound), CodeOrderNotFound},
		// A domain error outside a sentinel decides: it is the more specific.
		{Wrap(ErrNotFound, CodeDeliveryNotFound, "no delivery"), CodeDeliveryNotFound},
	} {
		if got := ErrorCode(c.err); got != c.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestErrorKeepsItsCause(t *testing.T) {
	err := fmt.Errorf("create: %w", Wrap(context.DeadlineExceeded, CodeTimeout, "timed out"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("errors.Is does not reach the cause")
	}
	e, ok := AsError(err)
	if !ok || e.Message != "timed out" {
		t.Fatalf("AsError = %+v, %v", e, ok)
	}
	if got, want := err.Error(), "create: timeout: timed out: context deadline exceeded"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
