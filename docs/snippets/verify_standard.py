import base64
import binascii
import hashlib
import hmac
import time


def verify_standard_webhook(body, headers, secret):
    """True if a yzpay push signed the Standard Webhooks way is authentic and fresh.

    body: the raw request body as bytes (Flask request.get_data()), not
    re-serialised JSON; headers: the request headers (Flask request.headers,
    or a dict with lower-case names); secret: the endpoint's whsec_ secret.
    """
    try:
        msg_id = headers["webhook-id"]
        ts = headers["webhook-timestamp"]
        sigs = headers["webhook-signature"].split()
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        if not msg_id or not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            return False
    except (KeyError, ValueError, binascii.Error):
        return False
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode("utf-8") + body, hashlib.sha256)
    want = ("v1," + base64.b64encode(mac.digest()).decode("ascii")).encode("ascii")
    # During a secret rotation the header carries several signatures.
    return any(hmac.compare_digest(want, s.encode("utf-8")) for s in sigs)

# --- harness for cmd/yzpay/snippets_test.go (not part of the snippet) ---
if __name__ == "__main__":
    import sys

    names = ["webhook-id", "webhook-timestamp", "webhook-signature"]
    hdrs = {n: v for n, v in zip(names, sys.argv[2:5]) if v != ""}
    print("true" if verify_standard_webhook(sys.stdin.buffer.read(), hdrs, sys.argv[1]) else "false")
