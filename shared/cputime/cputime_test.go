package cputime_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/cputime"
)

// Of, read from /proc, agrees with Self, read from getrusage, about CPU
// this process burns, to within Of's 10 ms clock tick.
func TestOfAgreesWithSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Of reads /proc")
	}
	self0, ok := cputime.Self()
	if !ok {
		t.Fatal("Self: not available on linux")
	}
	of0, err := cputime.Of(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until Self has counted 300 ms, however busy the machine.
	x := 0
	self1 := self0
	for self1-self0 < 300*time.Millisecond {
		for range 100_000 {
			x++
		}
		self1, _ = cputime.Self()
	}
	runtime.KeepAlive(x)
	of1, err := cputime.Of(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	dSelf, dOf := self1-self0, of1-of0
	if diff := (dOf - dSelf).Abs(); diff > 40*time.Millisecond {
		t.Errorf("Of counted %v, Self %v: further apart than Of's 10 ms tick explains", dOf, dSelf)
	}
}

func TestOfNoSuchProcess(t *testing.T) {
	if _, err := cputime.Of(-1); err == nil {
		t.Fatal("Of(-1) gave no error")
	}
}
