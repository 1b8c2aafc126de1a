<?php
// verify_yzpay_push returns true if a yzpay push carries a valid sign.
// $form: $_POST (or json_decode(file_get_contents('php://input'), true) when
// PUSH_FORMAT=json); $selfSecret: SELF_SECRET.
function verify_yzpay_push(array $form, string $selfSecret): bool
{
    $parts = [];
    foreach (['time', 'tradeNo', 'orderId', 'payment', 'status'] as $k) {
        if (!isset($form[$k]) || !is_scalar($form[$k])) {
            return false;
        }
        $parts[] = (string) $form[$k];
    }
    if (!isset($form['sign']) || !is_string($form['sign'])) {
        return false;
    }
    $parts[] = $selfSecret;
    return hash_equals(md5(implode('|', $parts)), $form['sign']);
}

// --- harness for cmd/yzpay/snippets_test.go (not part of the snippet) ---
if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    parse_str(stream_get_contents(STDIN), $form);
    echo verify_yzpay_push($form, $argv[1]) ? "true\n" : "false\n";
}
