// Package qrimage renders the payment QR codes yzpay returns to merchants
// (the qr_code field of POST /api/payment/qrcode) as PNG data URIs, drawn by
// us from Youzan's qr_url with go-qrcode so that the merchant page can show
// the image without fetching anything from Youzan.
package qrimage

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	qrcode "github.com/yeqown/go-qrcode/v2"
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

// PNG renders content as a QR code PNG (see PNGDataURI). go-qrcode encodes
// the symbol; a writer of ours paints its modules straight into a 1-bit
// image, because the library's standard writer draws through a vector
// canvas at some 10 ms and 1.7 MB per image, which would cap QR creation
// far below what the rest of the gateway sustains.
func PNG(content string) ([]byte, error) {
	if content == "" {
		return nil, ErrEmpty
	}
	qrc, err := qrcode.NewWith(content, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return nil, fmt.Errorf("qrimage: encoding content: %w", err)
	}
	w := &bitmapWriter{module: ModuleSize(qrc.Dimension())}
	if err := qrc.Save(w); err != nil {
		return nil, fmt.Errorf("qrimage: drawing: %w", err)
	}
	return w.buf.Bytes(), nil
}

// ModuleSize returns the pixel size of one module for a symbol of dimension
// modules, so that symbol plus quiet zone come close to TargetSize.
func ModuleSize(dimension int) int {
	m := TargetSize / (dimension + 2*QuietZone)
	if m < minModule {
		m = minModule
	}
	return m
}

// bitmapWriter is a qrcode.Writer producing a black-on-white 1-bit
// grayscale PNG with the quiet zone around the symbol. It writes the PNG
// chunks itself: image/png would walk the image pixel by pixel through an
// interface, which was most of the cost of an image.
type bitmapWriter struct {
	module int
	buf    bytes.Buffer
}

func (w *bitmapWriter) Write(mat qrcode.Matrix) error {
	bits := mat.Bitmap()
	side := (len(bits) + 2*QuietZone) * w.module
	stride := 1 + (side+7)/8 // filter byte + packed pixels
	raw := make([]byte, stride*side)
	off := QuietZone * w.module
	for y := 0; y < side; y++ {
		row := raw[y*stride+1 : (y+1)*stride]
		for i := range row {
			row[i] = 0xff // white; 1 bits are white in 1-bit grayscale
		}
		sy := y - off
		if sy < 0 || sy >= len(bits)*w.module {
			continue
		}
		for x, set := range bits[sy/w.module] {
			if !set {
				continue
			}
			for px := off + x*w.module; px < off+(x+1)*w.module; px++ {
				row[px/8] &^= 0x80 >> (px % 8)
			}
		}
	}
	var z bytes.Buffer
	zw := zlibPool.Get().(*zlib.Writer)
	defer zlibPool.Put(zw)
	zw.Reset(&z)
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(side))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(side))
	ihdr[8] = 1 // bit depth; colour type 0 (grayscale), deflate, no filter set, no interlace
	w.buf.WriteString("\x89PNG\r\n\x1a\n")
	writeChunk(&w.buf, "IHDR", ihdr[:])
	writeChunk(&w.buf, "IDAT", z.Bytes())
	writeChunk(&w.buf, "IEND", nil)
	return nil
}

// zlibPool reuses compressors: each holds some 600 KB of tables.
var zlibPool = sync.Pool{New: func() any {
	zw, _ := zlib.NewWriterLevel(nil, zlib.BestCompression) // valid level: cannot fail
	return zw
}}

func writeChunk(b *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	b.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	b.Write(n[:])
}

func (w *bitmapWriter) Close() error { return nil }
