package qrimage

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestZbarDecodes has zbarimg, a decoder that shares no code with us, read
// back every image: the other tests only show that we draw the symbol we
// meant to, not that a scanner accepts it.
func TestZbarDecodes(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zbarimg not found: CI must install Debian's zbar-tools")
		}
		t.Skip("zbarimg not installed (Debian package zbar-tools): decoding not checked")
	}

	contents := []string{
		"https://open.youzanyun.com/wxpay/confirmQr?qr_id=8286058&kdt_id=42221747",
		"https://open.youzanyun.com/wxpay/confirmQr?qr_id=9007199254740993&kdt_id=43886321&from=yzpay",
		sampleURL,
	}
	rng := rand.New(rand.NewPCG(16, 2))
	for n := 20; n <= 300; n++ {
		contents = append(contents, randomURL(rng, n))
	}
	for _, n := range []int{500, 1000, 2000, maxBytes} {
		contents = append(contents, randomURL(rng, n))
	}

	dir := t.TempDir()
	files := make([]string, len(contents))
	for i, c := range contents {
		b, err := PNG(c)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(c), err)
		}
		files[i] = filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		if err := os.WriteFile(files[i], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// One run for all images: zbarimg takes longer to start than to read one.
	cmd := exec.Command(zbar, append([]string{"--xml", "-q"}, files...)...)
	out, err := cmd.Output()
	if exit := (*exec.ExitError)(nil); err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 4) { // 4: some image had no symbol
		t.Fatalf("zbarimg: %v", err)
	}
	decoded, err := parseZbarXML(out)
	if err != nil {
		t.Fatalf("zbarimg output: %v\n%.500s", err, out)
	}

	failed := 0
	for i, c := range contents {
		got := decoded[files[i]]
		if len(got) != 1 || got[0] != c {
			failed++
			t.Errorf("%d bytes: zbarimg read %q, want %q", len(c), got, c)
		}
	}
	t.Logf("zbarimg %s decoded %d of %d images (contents of 20..300 bytes, and up to %d)",
		zbarVersion(zbar), len(contents)-failed, len(contents), maxBytes)
}

// parseZbarXML maps each image file to the QR codes zbarimg read from it.
func parseZbarXML(out []byte) (map[string][]string, error) {
	var doc struct {
		Sources []struct {
			Href    string `xml:"href,attr"`
			Symbols []struct {
				Type string `xml:"type,attr"`
				Data struct {
					Format string `xml:"format,attr"`
					Text   string `xml:",chardata"`
				} `xml:"data"`
			} `xml:"index>symbol"`
		} `xml:"source"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, s := range doc.Sources {
		for _, sym := range s.Symbols {
			if sym.Type != "QR-Code" {
				continue
			}
			data := sym.Data.Text
			if sym.Data.Format == "base64" { // zbar's choice for data that is not text
				b, err := base64.StdEncoding.DecodeString(data)
				if err != nil {
					return nil, err
				}
				data = string(b)
			}
			m[s.Href] = append(m[s.Href], data)
		}
	}
	return m, nil
}

func zbarVersion(zbar string) string {
	v, err := exec.Command(zbar, "--version").Output()
	if err != nil {
		return "(unknown version)"
	}
	return string(bytes.TrimSpace(v))
}
