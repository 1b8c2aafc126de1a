// Package browser holds the checkout page's tests in a real headless
// Chromium (Debian's chromium package), driven with chromedp against a
// whole `yzpay serve --sandbox` app. Without Chromium they skip with one
// line, unless CI=true, where they must run. Screenshots are written to
// artifacts/ (gitignored); docs/img holds the ones the README shows.
package browser
