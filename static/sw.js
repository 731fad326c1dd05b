// Service worker for /me (scope /me): the employee's QR stays on screen with no network.
// /me is network-first: each successful load replaces the cached page; the response header X-Card-QR names
// the current QR image, which is cached, and every other cached QR (rotated or revoked) is deleted.
// When /me says there is no live card (empty X-Card-QR), no QR remains in the cache. Signing out is seen
// by me.js (which deletes the cache before posting /logout, a URL outside this scope) and by the browser
// (the sign-out answer's Clear-Site-Data); a /me that redirects to /login also empties it here.
"use strict";
var CACHE = "contactcard-me-v1";
var PAGE = "/me";

function isQr(url) { return url.pathname.indexOf("/me/qr/") === 0; }
function isAsset(url) { return url.pathname.indexOf("/static/") === 0 || url.pathname.indexOf("/icons/") === 0 ||
  url.pathname === "/favicon.ico" || url.pathname === "/manifest.webmanifest"; }

async function remember(response) {
  var cache = await caches.open(CACHE);
  var qr = response.headers.get("X-Card-QR") || "";
  await cache.put(PAGE, response.clone());
  var keys = await cache.keys();
  await Promise.all(keys.map(function (req) {
    var url = new URL(req.url);
    return isQr(url) && url.pathname !== qr ? cache.delete(req) : Promise.resolve(false);
  }));
  if (qr && !(await cache.match(qr))) {
    try { await cache.add(new Request(qr, { credentials: "same-origin" })); } catch (e) { /* next load */ }
  }
  // The stylesheets, script and icons the page names, so the offline copy looks the same.
  var html = await response.clone().text();
  var assets = html.match(/(?:href|src)="(\/(?:static|icons)\/[^"]+|\/favicon\.ico)"/g) || [];
  await Promise.all(assets.map(async function (attr) {
    var path = attr.slice(attr.indexOf('"') + 1, -1).replace(/&amp;/g, "&");
    if (!(await cache.match(path))) {
      try { await cache.add(path); } catch (e) { /* next load */ }
    }
  }));
}

async function forget() {
  await caches.delete(CACHE);
}

async function refresh() {
  try {
    var response = await fetch(PAGE, { credentials: "same-origin", redirect: "manual" });
    if (response.ok && response.headers.has("X-Card-State")) { await remember(response); }
  } catch (e) { /* offline: keep what we have */ }
}

self.addEventListener("install", function (event) {
  self.skipWaiting();
  event.waitUntil(refresh());
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE && n.indexOf("contactcard-me-") === 0; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

async function page(request) {
  try {
    var response = await fetch(request);
    if (response.ok && response.headers.has("X-Card-State") && new URL(response.url).pathname === PAGE) {
      await remember(response.clone());
    } else if (response.type === "opaqueredirect" || (response.redirected && new URL(response.url).pathname === "/login")) {
      await forget();  // signed out or the session ended: nothing of this account stays on the phone
    }
    return response;
  } catch (e) {
    var cached = await caches.match(PAGE);
    if (!cached) { throw e; }
    // Say on the page that this is the saved copy (the note is in the page, hidden, for this).
    var html = (await cached.text()).replace('id="offline-note" hidden', 'id="offline-note"');
    return new Response(html, { status: 200, headers: cached.headers });
  }
}

async function cacheFirst(request) {
  var cached = await caches.match(request);
  if (cached) { return cached; }
  var response = await fetch(request);
  if (response.ok && isAsset(new URL(request.url))) {
    var cache = await caches.open(CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.method !== "GET") { return; }
  if (url.pathname === PAGE) { event.respondWith(page(request)); }
  else if (isQr(url)) { event.respondWith(caches.match(request).then(function (hit) { return hit || fetch(request); })); }
  else if (isAsset(url)) { event.respondWith(cacheFirst(request)); }
});
