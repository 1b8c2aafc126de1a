package merchant_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/merchant"
)

type standardVectors struct {
	Sign []struct {
		Name, Secret, ID, Payload, Signature string
		Timestamp                            int64
	}
	Verify []struct {
		Name, Secret, ID, Timestamp, Payload, Signature string
		Now                                             int64
		Valid                                           bool
	}
}

func loadStandardVectors(t *testing.T) standardVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/standard-webhooks-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v standardVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Sign) == 0 || len(v.Verify) == 0 {
		t.Fatal("no vectors read")
	}
	return v
}

// The specification's published vectors: our signer makes the reference
// libraries' signatures byte for byte, so any of their verifiers accepts us.
func TestStandardSignGolden(t *testing.T) {
	for _, v := range loadStandardVectors(t).Sign {
		key, err := merchant.ParseSecret(v.Secret)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if got := merchant.SignStandard(key, v.ID, v.Timestamp, []byte(v.Payload)); got != v.Signature {
			t.Errorf("%s: signature %s, want %s", v.Name, got, v.Signature)
		}
	}
}

func TestStandardVerifyGolden(t *testing.T) {
	for _, v := range loadStandardVectors(t).Verify {
		key, err := merchant.ParseSecret(v.Secret)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		err = merchant.VerifyStandard([][]byte{key}, v.ID, v.Timestamp, v.Signature, []byte(v.Payload),
			time.Unix(v.Now, 0), merchant.DefaultTolerance)
		if (err == nil) != v.Valid {
			t.Errorf("%s: VerifyStandard = %v, want valid=%v", v.Name, err, v.Valid)
		}
	}
}

// During a rotation the header carries one signature per secret; a receiver
// holding either the old or the new secret accepts it, a stranger does not.
func TestStandardRotation(t *testing.T) {
	oldKey, _ := merchant.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	newKey, _ := merchant.ParseSecret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
	other, _ := merchant.ParseSecret("whsec_" + strings.Repeat("A", 32))
	now := time.Unix(1700000000, 0)
	body := []byte(`{"orderId":"o-1"}`)
	h := merchant.SignatureHeader([][]byte{newKey, oldKey}, "E1:TRADE_SUCCESS", now.Unix(), body)
	if sigs := strings.Fields(h); len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("header %q: want two space-separated v1 signatures", h)
	}
	for name, k := range map[string][]byte{"old": oldKey, "new": newKey} {
		if err := merchant.VerifyStandard([][]byte{k}, "E1:TRADE_SUCCESS", "1700000000", h, body, now, merchant.DefaultTolerance); err != nil {
			t.Errorf("receiver with the %s secret rejects: %v", name, err)
		}
	}
	if err := merchant.VerifyStandard([][]byte{other}, "E1:TRADE_SUCCESS", "1700000000", h, body, now, merchant.DefaultTolerance); !errors.Is(err, merchant.ErrNoMatch) {
		t.Errorf("a stranger's secret: %v, want ErrNoMatch", err)
	}
	if err := merchant.VerifyStandard([][]byte{newKey}, "E1:TRADE_SUCCESS", "1700000000", h, []byte(`{"orderId":"o-2"}`), now, merchant.DefaultTolerance); !errors.Is(err, merchant.ErrNoMatch) {
		t.Errorf("tampered body: %v, want ErrNoMatch", err)
	}
}

func TestParseSecretRejectsGarbageWithoutEchoingIt(t *testing.T) {
	for _, s := range []string{"", "whsec_", "whsec_not base64!!"} {
		_, err := merchant.ParseSecret(s)
		if err == nil {
			t.Errorf("ParseSecret(%q) accepted", s)
		} else if strings.Contains(err.Error(), "base64!!") {
			t.Errorf("error %q echoes the secret", err)
		}
	}
}
