<?php
// verify_standard_webhook returns true if a yzpay push signed the Standard
// Webhooks way (signing standard or both) is authentic and fresh.
// $body: file_get_contents('php://input'), not re-encoded JSON; $headers:
// header names in lower case (array_change_key_case(getallheaders()));
// $secret: the endpoint's whsec_ secret.
function verify_standard_webhook(string $body, array $headers, string $secret): bool
{
    $id = $headers['webhook-id'] ?? '';
    $ts = $headers['webhook-timestamp'] ?? '';
    if (!is_string($id) || $id === '' || !is_string($ts) || !ctype_digit($ts) || abs(time() - (int) $ts) > 300) {
        return false;
    }
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
    if ($key === false || $key === '') {
        return false;
    }
    $want = 'v1,' . base64_encode(hash_hmac('sha256', "$id.$ts.$body", $key, true));
    // During a secret rotation the header carries several signatures.
    foreach (explode(' ', (string) ($headers['webhook-signature'] ?? '')) as $sig) {
        if (hash_equals($want, $sig)) {
            return true;
        }
    }
    return false;
}

// --- harness for cmd/yzpay/snippets_test.go (not part of the snippet) ---
if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    $headers = [];
    foreach (['webhook-id', 'webhook-timestamp', 'webhook-signature'] as $i => $name) {
        if (($argv[$i + 2] ?? '') !== '') {
            $headers[$name] = $argv[$i + 2];
        }
    }
    echo verify_standard_webhook(stream_get_contents(STDIN), $headers, $argv[1]) ? "true\n" : "false\n";
}
