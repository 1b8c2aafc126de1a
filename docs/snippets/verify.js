const crypto = require('crypto');

// verifyYzpayPush returns true if a yzpay push carries a valid sign.
// form: the posted fields (req.body with express.urlencoded(), or the parsed
// JSON when PUSH_FORMAT=json); selfSecret: SELF_SECRET.
function verifyYzpayPush(form, selfSecret) {
  const keys = ['time', 'tradeNo', 'orderId', 'payment', 'status'];
  if (keys.some((k) => form[k] === undefined || form[k] === null) || typeof form.sign !== 'string') {
    return false;
  }
  const raw = keys.map((k) => String(form[k])).concat(selfSecret).join('|');
  const want = Buffer.from(crypto.createHash('md5').update(raw, 'utf8').digest('hex'));
  const got = Buffer.from(form.sign, 'utf8');
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

// --- harness for cmd/yzpay/snippets_test.go (not part of the snippet) ---
if (require.main === module) {
  let body = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (c) => { body += c; });
  process.stdin.on('end', () => {
    const form = Object.fromEntries(new URLSearchParams(body));
    console.log(verifyYzpayPush(form, process.argv[2]) ? 'true' : 'false');
  });
}
