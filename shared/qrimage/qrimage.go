// Package qrimage renders the payment QR codes yzpay returns to merchants
// (the qr_code field of POST /api/payment/qrcode) as PNG data URIs, drawn by
// us from Youzan's qr_url so that the merchant page can show the image
// without fetching anything from Youzan. The symbol comes from rsc.io/qr's
// coding package, the PNG from a writer of ours.
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

	"rsc.io/qr/coding"
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

// Error correction is level M (15% of the symbol recoverable): the code is
// shown on a screen or a clean print and carries no logo, so the extra
// redundancy of Q or H would only make the symbol denser and its modules
// smaller for the same image size, which hurts phone cameras more than it
// helps.
const level = coding.M

// mask is fixed rather than chosen per content. ISO/IEC 18004 suggests
// scoring all eight masks and keeping the one with the fewest finder-like
// runs and blocks, but that scoring was most of the cost of an image
// (1–6 ms CPU with go-qrcode), every mask gives a valid symbol, and on
// rotated, blurred, noisy copies of our images zbar read this mask as often
// as go-qrcode's scored choice (docs/performance.md, issue 16).
const mask coding.Mask = 0

// ErrEmpty is returned for empty content: a QR code of nothing would be a
// payment link to nowhere.
var ErrEmpty = errors.New("qrimage: empty content")

// PNGDataURI renders content as a QR code and returns it as
// "data:image/png;base64,...". The same content always yields the same bytes.
func PNGDataURI(content string) (string, error) {
	r := renderers.Get().(*renderer)
	defer renderers.Put(r)
	b, err := r.render(content)
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
	r := renderers.Get().(*renderer)
	defer renderers.Put(r)
	b, err := r.render(content)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
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

// layout is what an image needs of a version's coding.Plan: the symbol
// with every codeword bit zero (function patterns, format and version
// information and the mask already in place) and the module that carries
// each codeword bit. An image then costs a copy and one flip per set bit,
// where coding.Plan.Encode walks the whole grid.
type layout struct {
	size  int      // modules per side
	base  []byte   // size*size modules, row by row; 1 is dark
	place []uint16 // place[i] is the index in base of codeword bit i
}

// layouts are built once per version, when first needed: a plan allocates
// and walks the whole grid. Images only read them afterwards.
var layouts [coding.MaxVersion + 1]struct {
	once sync.Once
	l    *layout
	err  error
}

func layoutFor(v coding.Version) (*layout, error) {
	e := &layouts[v]
	e.once.Do(func() {
		p, err := coding.NewPlan(v, level, mask)
		if err != nil {
			e.err = fmt.Errorf("qrimage: planning version %d: %w", v, err)
			return
		}
		n := len(p.Pixel)
		l := &layout{
			size:  n,
			base:  make([]byte, n*n),
			place: make([]uint16, 8*(p.DataBytes+p.CheckBytes)),
		}
		for y, row := range p.Pixel {
			for x, pix := range row {
				if pix&coding.Black != 0 {
					l.base[y*n+x] = 1
				}
				if r := pix.Role(); r == coding.Data || r == coding.Check {
					l.place[pix.Offset()] = uint16(y*n + x)
				}
			}
		}
		e.l = l
	})
	return e.l, e.err
}

// symbol encodes content in byte mode at the smallest version that holds it
// and returns its modules (see layout.base) in r.mods.
func (r *renderer) symbol(content string) (size int, err error) {
	if content == "" {
		return 0, ErrEmpty
	}
	enc := coding.String(content)
	v := coding.Version(coding.MinVersion)
	for enc.Bits(v) > v.DataBytes(level)*8 {
		if v++; v > coding.MaxVersion {
			return 0, fmt.Errorf("qrimage: %d bytes of content exceed the capacity of a QR code", len(content))
		}
	}
	l, err := layoutFor(v)
	if err != nil {
		return 0, err
	}
	r.bits.Reset()
	enc.Encode(&r.bits, v)
	r.bits.AddCheckBytes(v, level)
	cw := r.bits.Bytes()
	r.mods = append(r.mods[:0], l.base...)
	for i, at := range l.place {
		r.mods[at] ^= cw[i/8] >> (7 - i%8) & 1
	}
	return l.size, nil
}

// renderer holds the buffers of one image; they are pooled because an
// image's raw pixels (7–12 KB) and the compressor's state would otherwise
// be garbage on every QR creation.
type renderer struct {
	bits coding.Bits
	mods []byte
	raw  []byte
	z    bytes.Buffer
	zw   *zlib.Writer
	png  []byte
}

var renderers = sync.Pool{New: func() any {
	zw, _ := zlib.NewWriterLevel(nil, zlibLevel) // valid level: cannot fail
	return &renderer{zw: zw}
}}

// zlibLevel: paint leaves mostly zero bytes, which the fastest level packs
// into at most about 1.5 times the best level's output (a few hundred bytes
// more per image) for a third to a twelfth of its CPU.
const zlibLevel = zlib.BestSpeed

// render returns a black-on-white 1-bit grayscale PNG of content with the
// quiet zone around the symbol, in r's buffer. It writes the PNG chunks
// itself: image/png would walk the image pixel by pixel through an
// interface, which was most of the cost of an image before.
func (r *renderer) render(content string) ([]byte, error) {
	size, err := r.symbol(content)
	if err != nil {
		return nil, err
	}
	side := r.paint(size, ModuleSize(size))

	r.z.Reset()
	r.zw.Reset(&r.z)
	if _, err := r.zw.Write(r.raw); err != nil {
		return nil, fmt.Errorf("qrimage: compressing: %w", err)
	}
	if err := r.zw.Close(); err != nil {
		return nil, fmt.Errorf("qrimage: compressing: %w", err)
	}

	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(side))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(side))
	ihdr[8] = 1 // bit depth; colour type 0 (grayscale), deflate, filter set 0, no interlace
	b := append(r.png[:0], "\x89PNG\r\n\x1a\n"...)
	b = appendChunk(b, "IHDR", ihdr[:])
	b = appendChunk(b, "IDAT", r.z.Bytes())
	b = appendChunk(b, "IEND", nil)
	r.png = b
	return b, nil
}

// paint fills r.raw with the filtered PNG scanlines of r.mods at module px
// per module and returns the image's edge length in pixels. The first
// scanline of each module row is stored as is and the other module-1 use
// filter Up, which makes them all zero bytes: deflate then only has long
// zero runs and one short row per module row to encode.
func (r *renderer) paint(size, module int) int {
	side := (size + 2*QuietZone) * module
	stride := 1 + (side+7)/8 // filter byte + packed pixels
	if cap(r.raw) < stride*side {
		r.raw = make([]byte, stride*side)
	}
	raw := r.raw[:stride*side]
	clear(raw)
	r.raw = raw
	for my := -QuietZone; my < size+QuietZone; my++ {
		y := (my + QuietZone) * module
		row := raw[y*stride : (y+1)*stride]
		row[0] = 0 // filter None
		px := row[1:]
		for i := range px {
			px[i] = 0xff // white: in 1-bit grayscale a 1 bit is white
		}
		if my >= 0 && my < size {
			mods := r.mods[my*size : (my+1)*size]
			for mx := 0; mx < size; {
				if mods[mx] == 0 {
					mx++
					continue
				}
				start := mx
				for mx < size && mods[mx] != 0 {
					mx++
				}
				darken(px, uint((start+QuietZone)*module), uint((mx+QuietZone)*module))
			}
		}
		for dy := 1; dy < module; dy++ {
			raw[(y+dy)*stride] = 2 // filter Up: same pixels as the row above
		}
	}
	return side
}

// darken paints pixels [from, to) of a packed scanline black, a whole
// byte at a time where it can: runs of dark modules are several bytes wide.
func darken(px []byte, from, to uint) {
	for ; from < to && from%8 != 0; from++ {
		px[from/8] &^= 0x80 >> (from % 8)
	}
	for ; from+8 <= to; from += 8 {
		px[from/8] = 0
	}
	for ; from < to; from++ {
		px[from/8] &^= 0x80 >> (from % 8)
	}
}

func appendChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}
