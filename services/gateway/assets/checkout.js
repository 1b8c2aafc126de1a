// yzpay checkout page: countdown, live status (Server-Sent Events, polling
// when EventSource is missing or failing), redirect to the merchant after
// payment, and the sandbox's simulate-payment buttons. No inline script:
// the page's Content-Security-Policy allows only this file.
(function () {
  'use strict';
  var body = document.body;
  var d = body.dataset;
  var expires = parseInt(d.expires, 10);
  var state = d.state;
  var es = null, pollTimer = null, redirecting = false;
  var final = { paid: true };

  function setState(s) {
    if (!s || !s.state) return;
    // Only forward: a late paid wins over expired, nothing wins over paid.
    if (state === 'paid' && s.state !== 'paid') return;
    state = s.state;
    body.className = 'state-' + state;
    d.state = state;
    if (s.return_url) d.returnUrl = s.return_url;
    if (state === 'paid') {
      stopLive();
      goBack();
    }
  }

  function goBack() {
    if (redirecting || !d.returnUrl) return;
    redirecting = true;
    document.getElementById('returning').hidden = false;
    setTimeout(function () { window.location.assign(d.returnUrl); }, 1500);
  }

  function stopLive() {
    if (es) { es.close(); es = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function poll() {
    d.transport = 'poll';
    fetch(d.statusUrl, { cache: 'no-store', credentials: 'omit' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) setState(s); })
      .catch(function () {})
      .then(function () {
        if (!final[state]) pollTimer = setTimeout(poll, 2000);
      });
  }

  function live() {
    if (final[state]) return;
    if (!window.EventSource) { poll(); return; }
    var failures = 0;
    es = new EventSource(d.eventsUrl);
    d.transport = 'sse';
    es.addEventListener('status', function (e) {
      failures = 0;
      try { setState(JSON.parse(e.data)); } catch (err) { /* ignore a bad frame */ }
    });
    es.onerror = function () {
      if (final[state]) { stopLive(); return; }
      // Some proxies buffer or cut event streams: after repeated
      // failures, fall back to polling for good.
      failures++;
      if (failures >= 2 || es.readyState === EventSource.CLOSED) {
        es.close(); es = null;
        poll();
      }
    };
  }

  var cd = document.getElementById('countdown');
  var bar = document.getElementById('bar');
  var span = Math.max(expires - Date.now(), 1);
  function tick() {
    var left = Math.max(0, expires - Date.now());
    var m = Math.floor(left / 60000), s = Math.floor(left / 1000) % 60;
    if (cd) cd.textContent = (m < 10 ? '0' : '') + m + ':' + (s < 10 ? '0' : '') + s;
    if (bar) bar.style.width = (100 * left / span).toFixed(1) + '%';
    if (left === 0 && state === 'pending') setState({ state: 'expired' });
    if (left > 0 && state === 'pending') setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  }
  tick();

  var sim = d.sandboxPay;
  if (sim) {
    var err = document.getElementById('sim-error');
    Array.prototype.forEach.call(document.querySelectorAll('[data-pay-type]'), function (b) {
      b.addEventListener('click', function () {
        err.hidden = true;
        b.disabled = true;
        fetch(sim, { method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ pay_type: b.dataset.payType }) })
          .then(function (r) { if (!r.ok) throw new Error(r.status); })
          .catch(function () { err.hidden = false; })
          .then(function () { b.disabled = false; });
      });
    });
  }

  if (state === 'paid') goBack(); else live();
})();
