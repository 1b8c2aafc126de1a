package qrimage

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// A qr_url of the length Youzan returns.
const sampleURL = "https://qr.youzan.com/pay/PzXkU7Ef2x?qr_id=8286057"

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

func TestSizeAndQuietZone(t *testing.T) {
	for _, content := range []string{
		"E1",
		sampleURL,
		"https://open.youzanyun.com/pay/qrcode?qr_id=9007199254740993&kdt_id=43886321&from=yzpay&sig=0123456789abcdef",
	} {
		uri, err := PNGDataURI(content)
		if err != nil {
			t.Fatal(err)
		}
		img := decode(t, uri)
		b := img.Bounds()
		if b.Dx() != b.Dy() || b.Dx() < 250 || b.Dx() > 330 {
			t.Errorf("%q: image is %dx%d, want square 250..330 px", content, b.Dx(), b.Dy())
		}
		mat := matrix(t, content)
		m := ModuleSize(len(mat))
		if got := (len(mat) + 2*QuietZone) * m; got != b.Dx() {
			t.Errorf("%q: width %d, want %d modules of %d px", content, b.Dx(), len(mat)+2*QuietZone, m)
		}
		// The quiet zone is white all round.
		q := QuietZone * m
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				inside := x >= q && x < b.Dx()-q && y >= q && y < b.Dy()-q
				if !inside && isDark(img.At(x, y)) {
					t.Fatalf("%q: dark pixel at (%d,%d) in the quiet zone", content, x, y)
				}
			}
		}
	}
}

// The picture must carry exactly the symbol go-qrcode computed: every module
// centre is dark where the matrix is set and light elsewhere.
func TestImageMatchesSymbol(t *testing.T) {
	uri, err := PNGDataURI(sampleURL)
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, uri)
	mat := matrix(t, sampleURL)
	m := ModuleSize(len(mat))
	for x := range mat {
		for y := range mat[x] {
			px, py := (QuietZone+x)*m+m/2, (QuietZone+y)*m+m/2
			if isDark(img.At(px, py)) != mat[x][y] {
				t.Fatalf("module (%d,%d) is dark=%v in the image, set=%v in the symbol", x, y, !mat[x][y], mat[x][y])
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, err := PNGDataURI(sampleURL)
	if err != nil {
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
}

func TestEmptyContent(t *testing.T) {
	if _, err := PNGDataURI(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("err = %v, want ErrEmpty", err)
	}
}

func TestTooLongContent(t *testing.T) {
	if _, err := PNGDataURI(strings.Repeat("x", 5000)); err == nil {
		t.Error("content beyond QR capacity rendered without error")
	}
}

func isDark(c color.Color) bool {
	return color.GrayModel.Convert(c).(color.Gray).Y < 128
}

// matrix returns the symbol (without quiet zone) as matrix[x][y] = dark.
func matrix(t *testing.T, content string) [][]bool {
	t.Helper()
	qrc, err := qrcode.NewWith(content, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		t.Fatal(err)
	}
	var c capture
	if err := qrc.Save(&c); err != nil {
		t.Fatal(err)
	}
	return c.bits
}

type capture struct{ bits [][]bool }

func (c *capture) Write(mat qrcode.Matrix) error {
	n := mat.Width()
	c.bits = make([][]bool, n)
	for i := range c.bits {
		c.bits[i] = make([]bool, n)
	}
	mat.Iterate(qrcode.IterDirection_ROW, func(x, y int, v qrcode.QRValue) { c.bits[x][y] = v.IsSet() })
	return nil
}

func (*capture) Close() error { return nil }

func BenchmarkPNGDataURI(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PNGDataURI(sampleURL); err != nil {
			b.Fatal(err)
		}
	}
}
