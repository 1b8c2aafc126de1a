// yzpay operator console: the live strip and the order page's timeline
// follow /admin/events (Server-Sent Events); action forms are sent with
// fetch and the session's CSRF token, so the page is never reloaded. No
// inline script: the Content-Security-Policy allows only this file.
(function () {
  'use strict';
  var body = document.body, d = body.dataset;
  var live = document.getElementById('live');

  function show(msg, bad) {
    var flash = document.getElementById('flash');
    if (!flash) return;
    flash.textContent = msg;
    flash.className = bad ? 'flash bad' : 'flash';
    flash.hidden = false;
  }

  // redraw: a page without a live part (the deliveries tabs) is fetched
  // again and its main part swapped in, so the flash message stays.
  function redraw(msg, bad) {
    return fetch(window.location.href, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var main = new DOMParser().parseFromString(html, 'text/html').querySelector('main');
        var cur = document.querySelector('main');
        if (main && cur) { cur.innerHTML = main.innerHTML; d.refreshed = String(Date.now()); }
      })
      .catch(function () {})
      .then(function () { show(msg, bad); });
  }

  function refresh() {
    if (!live) return Promise.resolve();
    return fetch(live.dataset.liveUrl, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { live.innerHTML = html; d.refreshed = String(Date.now()); } })
      .catch(function () {});
  }

  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f.classList || !f.classList.contains('act') || !window.fetch) return;
    e.preventDefault();
    var btn = f.querySelector('button');
    if (btn) btn.disabled = true;
    fetch(f.action, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'X-CSRF-Token': d.csrf, 'Accept': 'application/json' },
      body: new URLSearchParams(new FormData(f))
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, j: j }; });
    }).then(function (res) {
      var msg = res.ok ? (res.j.message || d.done) : ((res.j.error && res.j.error.message) || d.failed);
      show(msg, !res.ok);
      if (!live) return redraw(msg, !res.ok);
      return refresh();
    }).catch(function () { show(d.failed, true); })
      .then(function () { if (btn) btn.disabled = false; });
  });

  if (!d.csrf || !window.EventSource) return;
  var url = '/admin/events' + (d.order ? '?order=' + encodeURIComponent(d.order) : '');
  var es = new EventSource(url);
  es.onopen = function () { d.transport = 'sse'; };
  es.onerror = function () { d.transport = 'reconnecting'; };
  es.addEventListener('summary', function (e) {
    d.transport = 'sse';
    var s;
    try { s = JSON.parse(e.data); } catch (err) { return; }
    var els = document.querySelectorAll('[data-k]');
    for (var i = 0; i < els.length; i++) {
      var k = els[i].dataset.k;
      if (s[k] !== undefined && s[k] !== '') els[i].textContent = s[k];
    }
  });
  es.addEventListener('order', function () { refresh(); });
})();
