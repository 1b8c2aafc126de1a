package qrimage

import (
	"math/rand/v2"
	"testing"

	qrcode "github.com/yeqown/go-qrcode/v2"
	"rsc.io/qr/coding"
)

// symbolContents covers every version up to 13 (qr_urls up to 300 bytes)
// at every length, then a sample of the longer ones.
func symbolContents() []string {
	rng := rand.New(rand.NewPCG(16, 1))
	var cs []string
	for n := 1; n <= 300; n++ {
		cs = append(cs, randomURL(rng, max(n, 20))[:n])
	}
	for n := 301; n <= maxBytes; n += 97 {
		cs = append(cs, randomURL(rng, n))
	}
	return append(cs, randomURL(rng, maxBytes))
}

// The layout shortcut must give the symbol rsc.io/qr's own Plan.Encode
// gives for the same version, level and mask.
func TestSymbolMatchesPlanEncode(t *testing.T) {
	plans := map[int]*coding.Plan{}
	var r renderer
	for _, content := range symbolContents() {
		n, err := r.symbol(content)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(content), err)
		}
		p := plans[n]
		if p == nil {
			if p, err = coding.NewPlan(coding.Version((n-17)/4), level, mask); err != nil {
				t.Fatal(err)
			}
			plans[n] = p
		}
		code, err := p.Encode(coding.String(content))
		if err != nil {
			t.Fatalf("%d bytes: %v", len(content), err)
		}
		for y := range n {
			for x := range n {
				if got := r.mods[y*n+x] == 1; got != code.Black(x, y) {
					t.Fatalf("%d bytes: module (%d,%d) dark=%v, Plan.Encode says %v", len(content), x, y, got, !got)
				}
			}
		}
	}
}

// An independent encoder, go-qrcode (which yzpay used before), must agree
// on everything but the mask: the version, every function pattern and,
// once each symbol's mask is taken off, every data and check module. Only
// the format information, which names the mask, may differ.
func TestSymbolMatchesGoQRCode(t *testing.T) {
	plans := map[int]*coding.Plan{}
	var r renderer
	masks := map[int]int{}
	for _, content := range symbolContents() {
		n, err := r.symbol(content)
		if err != nil {
			t.Fatal(err)
		}
		qrc, err := qrcode.NewWith(content,
			qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium),
			qrcode.WithEncodingMode(qrcode.EncModeByte))
		if err != nil {
			t.Fatalf("%d bytes: go-qrcode: %v", len(content), err)
		}
		var c bitmapCapture
		if err := qrc.Save(&c); err != nil {
			t.Fatal(err)
		}
		theirs := c.bits
		if len(theirs) != n {
			t.Fatalf("%d bytes: %d modules a side, go-qrcode has %d", len(content), n, len(theirs))
		}
		p := plans[n]
		if p == nil {
			if p, err = coding.NewPlan(coding.Version((n-17)/4), level, mask); err != nil {
				t.Fatal(err)
			}
			plans[n] = p
		}

		// Function patterns agree as they are.
		for y, row := range p.Pixel {
			for x, pix := range row {
				switch pix.Role() {
				case coding.Data, coding.Check, coding.Extra, coding.Format:
					continue
				}
				if ours := r.mods[y*n+x] == 1; ours != theirs[y][x] {
					t.Fatalf("%d bytes: %v module (%d,%d) dark=%v, go-qrcode has %v", len(content), pix.Role(), x, y, ours, theirs[y][x])
				}
			}
		}
		// Data, check and remainder modules agree under exactly one of
		// go-qrcode's masks.
		theirMask := -1
		for k := range coding.Mask(8) {
			same := true
			for y, row := range p.Pixel {
				for x, pix := range row {
					switch pix.Role() {
					case coding.Data, coding.Check, coding.Extra:
					default:
						continue
					}
					ours := r.mods[y*n+x] == 1 != mask.Invert(y, x)
					if ours != (theirs[y][x] != k.Invert(y, x)) {
						same = false
					}
				}
			}
			if same {
				if theirMask >= 0 {
					t.Fatalf("%d bytes: data agrees under masks %d and %d", len(content), theirMask, k)
				}
				theirMask = int(k)
			}
		}
		if theirMask < 0 {
			t.Fatalf("%d bytes: data and check modules differ from go-qrcode's under every mask", len(content))
		}
		masks[theirMask]++
	}
	t.Logf("masks go-qrcode chose: %v", masks)
}

// bitmapCapture is a go-qrcode writer keeping the symbol as bits[y][x].
type bitmapCapture struct{ bits [][]bool }

func (c *bitmapCapture) Write(mat qrcode.Matrix) error { c.bits = mat.Bitmap(); return nil }
func (*bitmapCapture) Close() error                    { return nil }
