package store

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/yzpay/yzpay/shared/domain"
)

// MaxErrorLen bounds domain.Delivery.LastError: enough to diagnose, too short to
// carry a merchant's whole error page.
const MaxErrorLen = 500

// TruncateError returns s as valid UTF-8 without NUL bytes (Postgres text
// refuses both) and at most MaxErrorLen bytes, cut on a rune boundary.
func TruncateError(s string) string { return truncate(s, MaxErrorLen) }

// TruncateExcerpt is TruncateError for an attempt's response excerpt,
// bounded by domain.MaxExcerptLen.
func TruncateExcerpt(s string) string { return truncate(s, domain.MaxExcerptLen) }

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// ClampLimit applies the listing default (100) and maximum (1000).
func ClampLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// NewClaimToken identifies one QR-creation claim in the database, for
// operators tracing which attempt held it.
func NewClaimToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
