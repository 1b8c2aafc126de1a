package gateway

import "testing"

// A stored English detail reads back in Chinese on a Chinese page, and an
// unknown one stays as it is.
func TestConsoleTextsTranslateStoredDetails(t *testing.T) {
	for in, want := range map[string]string{
		"1 delivery(ies) reopened":                         "已重新开启 1 条投递",
		"refused: already_paid":                            "已拒绝：already_paid",
		"2 replayed, 0 refused":                            "已重新投递 2 条，0 条被拒绝",
		"trade E123 read from Youzan, from WAIT_BUYER_PAY": "已从有赞读取交易 E123，原状态 WAIT_BUYER_PAY",
		"trade E123 read from Youzan":                      "已从有赞读取交易 E123",
		"something the console never wrote":                "something the console never wrote",
	} {
		if got := auditDetail("zh", in); got != want {
			t.Errorf("auditDetail(zh, %q) = %q, want %q", in, got, want)
		}
		if got := auditDetail("en", in); got != in {
			t.Errorf("auditDetail(en, %q) = %q", in, got)
		}
	}
	for k := range consoleTexts["zh"] {
		if _, ok := consoleTexts["en"][k]; !ok && k[:2] != "e_" {
			t.Errorf("text %q has no English", k)
		}
	}
}
