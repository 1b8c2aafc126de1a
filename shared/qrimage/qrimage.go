// Package qrimage renders the payment QR codes yzpay returns to merchants
// (the qr_code field of POST /api/payment/qrcode) as PNG data URIs, drawn by
// us from Youzan's qr_url with go-qrcode so that the merchant page can show
// the image without fetching anything from Youzan.
package qrimage

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"

	qrcode "github.com/yeqown/go-qrcode/v2"
	"github.com/yeqown/go-qrcode/writer/standard"
)

const (
	// TargetSize is the edge length in pixels the module size is chosen for:
	// close to Youzan's own 236×236 image while leaving room for the quiet
	// zone. The result is within about ±15% of it for URL-length content.
	TargetSize = 300
	// QuietZone is the white margin in modules that ISO/IEC 18004 requires
	// around the symbol; scanners fail more often without it.
	QuietZone = 4
	// minModule keeps very long content scannable: below 2 px a module
	// blurs when the page scales the image.
	minModule = 2
)

// ErrEmpty is returned for empty content: a QR code of nothing would be a
// payment link to nowhere.
var ErrEmpty = errors.New("qrimage: empty content")

// PNGDataURI renders content as a QR code and returns it as
// "data:image/png;base64,...". The same content always yields the same bytes.
//
// Error correction is level M (15% of the symbol recoverable): the code is
// shown on a screen or a clean print and carries no logo, so the extra
// redundancy of Q or H would only make the symbol denser and its modules
// smaller for the same image size, which hurts phone cameras more than it
// helps.
func PNGDataURI(content string) (string, error) {
	b, err := PNG(content)
	if err != nil {
		return "", err
	}
	const prefix = "data:image/png;base64,"
	out := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(len(b)))
	copy(out, prefix)
	base64.StdEncoding.Encode(out[len(prefix):], b)
	return string(out), nil
}

// PNG renders content as a QR code PNG (see PNGDataURI).
func PNG(content string) ([]byte, error) {
	if content == "" {
		return nil, ErrEmpty
	}
	qrc, err := qrcode.NewWith(content, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return nil, fmt.Errorf("qrimage: encoding content: %w", err)
	}
	module := ModuleSize(qrc.Dimension())
	var buf bytes.Buffer
	w := standard.NewWithWriter(nopCloser{&buf},
		standard.WithQRWidth(uint8(module)),
		standard.WithBorderWidth(QuietZone*module),
		standard.WithBgColor(color.White),
		standard.WithFgColor(color.Black),
		standard.WithCustomImageEncoder(bilevelPNG{}),
	)
	if err := qrc.Save(w); err != nil {
		return nil, fmt.Errorf("qrimage: drawing: %w", err)
	}
	return buf.Bytes(), nil
}

// ModuleSize returns the pixel size of one module for a symbol of dimension
// modules, so that symbol plus quiet zone come close to TargetSize.
func ModuleSize(dimension int) int {
	m := TargetSize / (dimension + 2*QuietZone)
	if m < minModule {
		m = minModule
	}
	if m > 255 { // the writer takes a uint8
		m = 255
	}
	return m
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// bilevelPNG writes a 1-bit paletted PNG: the writer draws on RGBA, and a
// black-and-white image needs neither colour nor 8 bits per pixel. It keeps
// data URIs several times smaller.
type bilevelPNG struct{}

var bilevel = color.Palette{color.White, color.Black}

func (bilevelPNG) Encode(w io.Writer, img image.Image) error {
	b := img.Bounds()
	p := image.NewPaletted(b, bilevel)
	if rgba, ok := img.(*image.RGBA); ok {
		// Fast path for what the writer draws on: reading Pix directly avoids
		// an interface allocation per pixel.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := rgba.Pix[rgba.PixOffset(b.Min.X, y):]
			out := p.Pix[p.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				r, g, bl := int(row[4*x]), int(row[4*x+1]), int(row[4*x+2])
				if (299*r+587*g+114*bl)/1000 < 128 {
					out[x] = 1
				}
			}
		}
	} else {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if g := color.GrayModel.Convert(img.At(x, y)).(color.Gray); g.Y < 128 {
					p.SetColorIndex(x, y, 1)
				}
			}
		}
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	return enc.Encode(w, p)
}
