import hashlib
import hmac


def verify_yzpay_push(form, self_secret):
    """True if a yzpay push carries a valid sign.

    form: the posted fields (Flask request.form, Django request.POST, or the
    decoded JSON object when PUSH_FORMAT=json); self_secret: SELF_SECRET.
    """
    try:
        fields = [form["time"], form["tradeNo"], form["orderId"], form["payment"], form["status"]]
        sign = str(form["sign"])
    except KeyError:
        return False
    raw = "|".join(str(v) for v in fields + [self_secret])
    want = hashlib.md5(raw.encode("utf-8")).hexdigest()
    return hmac.compare_digest(want.encode("ascii"), sign.encode("utf-8"))

# --- harness for cmd/yzpay/snippets_test.go (not part of the snippet) ---
if __name__ == "__main__":
    import sys
    import urllib.parse

    body = sys.stdin.read()
    form = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
    print("true" if verify_yzpay_push(form, sys.argv[1]) else "false")
