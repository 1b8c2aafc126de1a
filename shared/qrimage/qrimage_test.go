package qrimage

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/cputime"
)

// A qr_url of the length Youzan returns.
const sampleURL = "https://qr.youzan.com/pay/PzXkU7Ef2x?qr_id=8286057"

// maxBytes is the byte-mode capacity of a version 40 symbol at level M.
const maxBytes = 2331

func decode(t *testing.T, uri string) image.Image {
	t.Helper()
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(uri, prefix) {
		t.Fatalf("not a PNG data URI: %.40q", uri)
	}
	raw, err := base64.StdEncoding.DecodeString(uri[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The module size and quiet zone are read off the picture, not taken from
// ModuleSize: the finder pattern in the top left corner starts right after
// the quiet zone and its top edge is 7 modules of dark.
func TestSizeAndQuietZone(t *testing.T) {
	for _, content := range []string{
		"E1",
		sampleURL,
		"https://open.youzanyun.com/pay/qrcode?qr_id=9007199254740993&kdt_id=43886321&from=yzpay&sig=0123456789abcdef",
		urlOfLen(300),
		urlOfLen(1000),     // version 22: 300 px would give modules under 2 px
		urlOfLen(maxBytes), // version 40
	} {
		uri, err := PNGDataURI(content)
		if err != nil {
			t.Fatal(err)
		}
		img := decode(t, uri)
		b := img.Bounds()
		name := fmt.Sprintf("%d bytes", len(content))
		if b.Dx() != b.Dy() {
			t.Fatalf("%s: image is %dx%d, want a square", name, b.Dx(), b.Dy())
		}
		if len(content) <= 200 && (b.Dx() < 250 || b.Dx() > 330) {
			t.Errorf("%s: image is %d px wide, want 250..330 for URL-length content", name, b.Dx())
		}

		q := 0
		for q < b.Dx() && !isDark(img.At(q, q)) {
			q++
		}
		run := 0
		for q+run < b.Dx() && isDark(img.At(q+run, q)) {
			run++
		}
		m := run / 7
		if run%7 != 0 || m < 2 {
			t.Fatalf("%s: finder pattern edge is %d px, want 7 modules of at least 2 px", name, run)
		}
		if q != QuietZone*m {
			t.Errorf("%s: quiet zone is %d px, want %d modules of %d px", name, q, QuietZone, m)
		}
		if dim := b.Dx()/m - 2*QuietZone; b.Dx()%m != 0 || (dim-17)%4 != 0 {
			t.Errorf("%s: %d px is no QR symbol of %d px modules plus quiet zone", name, b.Dx(), m)
		}
		// The quiet zone is white all round.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				inside := x >= q && x < b.Dx()-q && y >= q && y < b.Dy()-q
				if !inside && isDark(img.At(x, y)) {
					t.Fatalf("%s: dark pixel at (%d,%d) in the quiet zone", name, x, y)
				}
			}
		}
	}
}

// The picture must carry exactly the symbol: every pixel of a module has
// the module's colour.
func TestImageMatchesSymbol(t *testing.T) {
	for _, n := range []int{20, len(sampleURL), 200, 300, 1000} {
		content := urlOfLen(n)
		uri, err := PNGDataURI(content)
		if err != nil {
			t.Fatal(err)
		}
		img := decode(t, uri)
		mat := matrix(t, content)
		m := ModuleSize(len(mat))
		for px := QuietZone * m; px < (QuietZone+len(mat))*m; px++ {
			for py := QuietZone * m; py < (QuietZone+len(mat))*m; py++ {
				x, y := px/m-QuietZone, py/m-QuietZone
				if isDark(img.At(px, py)) != mat[x][y] {
					t.Fatalf("%d bytes: pixel (%d,%d) is dark=%v, module (%d,%d) dark=%v", n, px, py, !mat[x][y], x, y, mat[x][y])
				}
			}
		}
	}
}

// Images come from pooled buffers, so rendering other content in between,
// or at the same time, must not change a byte.
func TestDeterministic(t *testing.T) {
	a, err := PNGDataURI(sampleURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PNGDataURI(urlOfLen(300)); err != nil {
		t.Fatal(err)
	}
	b, err := PNGDataURI(sampleURL)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("same content rendered to different bytes")
	}
	c, err := PNGDataURI(sampleURL + "0")
	if err != nil {
		t.Fatal(err)
	}
	if a == c {
		t.Error("different content rendered to the same bytes")
	}
	p, err := PNG(sampleURL)
	if err != nil {
		t.Fatal(err)
	}
	if want := "data:image/png;base64," + base64.StdEncoding.EncodeToString(p); want != a {
		t.Error("PNG and PNGDataURI disagree")
	}

	contents := make([]string, 40)
	want := make([]string, len(contents))
	for i := range contents {
		contents[i] = urlOfLen(20 + 7*i)
		if want[i], err = PNGDataURI(contents[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 3 * len(contents) {
				i := (k*7 + g) % len(contents)
				got, err := PNGDataURI(contents[i])
				if err != nil {
					t.Error(err)
					return
				}
				if got != want[i] {
					t.Errorf("%d bytes: concurrent rendering changed the image", len(contents[i]))
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEmptyContent(t *testing.T) {
	if _, err := PNGDataURI(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("err = %v, want ErrEmpty", err)
	}
	if _, err := PNG(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("PNG: err = %v, want ErrEmpty", err)
	}
}

func TestTooLongContent(t *testing.T) {
	if _, err := PNGDataURI(strings.Repeat("x", maxBytes)); err != nil {
		t.Errorf("content at QR capacity: %v", err)
	}
	for _, n := range []int{maxBytes + 1, 5000} {
		if _, err := PNGDataURI(strings.Repeat("x", n)); err == nil {
			t.Errorf("%d bytes, beyond QR capacity, rendered without error", n)
		}
	}
}

func isDark(c color.Color) bool {
	return color.GrayModel.Convert(c).(color.Gray).Y < 128
}

// matrix returns the symbol (without quiet zone) as matrix[x][y] = dark.
func matrix(t *testing.T, content string) [][]bool {
	t.Helper()
	var r renderer
	n, err := r.symbol(content)
	if err != nil {
		t.Fatal(err)
	}
	m := make([][]bool, n)
	for x := range m {
		m[x] = make([]bool, n)
		for y := range m[x] {
			m[x][y] = r.mods[y*n+x] == 1
		}
	}
	return m
}

// BenchmarkPNGDataURI reports cpu-ns/op beside ns/op: the budget of issue
// 16 is CPU per image on two shared cores, which wall time hides.
func BenchmarkPNGDataURI(b *testing.B) {
	for _, n := range []int{20, len(sampleURL), 80, 200, 300} {
		content := urlOfLen(n)
		if n == len(sampleURL) {
			content = sampleURL
		}
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			cpu0, ok := cputime.Self()
			for b.Loop() {
				if _, err := PNGDataURI(content); err != nil {
					b.Fatal(err)
				}
			}
			if cpu1, _ := cputime.Self(); ok {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkPNGDataURIParallel is QR creation on all cores (GOMAXPROCS),
// the figure issue 16 sets a floor for: 3,000 images/s on two.
func BenchmarkPNGDataURIParallel(b *testing.B) {
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := PNGDataURI(sampleURL); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "QR/s")
}

// urlOfLen returns a qr_url-like string of exactly n bytes.
func urlOfLen(n int) string {
	u := "https://open.youzanyun.com/wxpay/confirmQr?qr_id=8286058&kdt_id=42221747"
	for i := 0; len(u) < n; i++ {
		u += fmt.Sprintf("&p%d=Zx%07d", i, i*7919)
	}
	return u[:n]
}

// randomURL returns a URL-like string of exactly n bytes (n >= 20) with
// the characters a qr_url can carry, percent escapes included.
func randomURL(rng *rand.Rand, n int) string {
	hosts := []string{"open.youzanyun.com", "qr.youzan.com", "cashier.youzan.com", "h5.youzan.com"}
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
	var b strings.Builder
	b.WriteString("https://" + hosts[rng.IntN(len(hosts))] + "/")
	for b.Len() < n {
		switch k := rng.IntN(10); {
		case k == 0:
			b.WriteString("/")
		case k == 1:
			fmt.Fprintf(&b, "?qr_id=%d", rng.IntN(1e8))
		case k == 2:
			fmt.Fprintf(&b, "&kdt_id=%d&", rng.IntN(1e8))
		case k == 3:
			fmt.Fprintf(&b, "%%%02X", rng.IntN(256))
		default:
			b.WriteByte(chars[rng.IntN(len(chars))])
		}
	}
	return b.String()[:n]
}
