const crypto = require('crypto');

// verifyStandardWebhook returns true if a yzpay push signed the Standard
// Webhooks way (signing standard or both) is authentic and fresh.
// body: the raw body as a Buffer (express.raw({ type: '*/*' })), not
// re-serialised JSON; headers: req.headers; secret: the endpoint's whsec_ secret.
function verifyStandardWebhook(body, headers, secret) {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  if (!id || !/^[0-9]+$/.test(ts || '') || Math.abs(Date.now() / 1000 - Number(ts)) > 300) {
    return false;
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = crypto.createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest('base64');
  const want = Buffer.from(`v1,${mac}`);
  // During a secret rotation the header carries several signatures.
  return String(headers['webhook-signature'] || '').split(' ').some((s) => {
    const got = Buffer.from(s);
    return got.length === want.length && crypto.timingSafeEqual(got, want);
  });
}

// --- harness for cmd/yzpay/snippets_test.go (not part of the snippet) ---
if (require.main === module) {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const [secret, id, ts, sig] = process.argv.slice(2);
    const headers = {};
    if (id) headers['webhook-id'] = id;
    if (ts) headers['webhook-timestamp'] = ts;
    if (sig) headers['webhook-signature'] = sig;
    console.log(verifyStandardWebhook(Buffer.concat(chunks), headers, secret) ? 'true' : 'false');
  });
}
