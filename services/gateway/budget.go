package gateway

import (
	"errors"
	"io"
	"sync/atomic"
)

// errOverBudget: the gateway holds as many push bytes as it may.
var errOverBudget = errors.New("gateway: push bytes in flight over budget")

// byteBudget bounds the push body bytes held at once, so that many
// concurrent bodies cannot outgrow the process's memory limit whatever their
// number; a slow sender holds only the bytes it has sent.
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

func (b *byteBudget) take(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *byteBudget) give(n int64) { b.used.Add(-n) }

// budgetReader charges what it reads to a byteBudget.
type budgetReader struct {
	r     io.Reader
	b     *byteBudget
	taken int64
}

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 {
		if !br.b.take(int64(n)) {
			return 0, errOverBudget
		}
		br.taken += int64(n)
	}
	return n, err
}

// release gives back everything read; the body must not be used after.
func (br *budgetReader) release() {
	br.b.give(br.taken)
	br.taken = 0
}
