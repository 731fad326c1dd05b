// /me: copy and share the link, install the service worker, note when the page is an offline copy, and
// forget the offline copy on sign-out.
// The page works without this file; buttons that need it stay hidden.
(function () {
  "use strict";
  var status = document.getElementById("status");
  function say(text) { if (status) { status.textContent = text; } }

  var copy = document.getElementById("copy");
  if (copy && (navigator.clipboard || document.queryCommandSupported)) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var url = copy.getAttribute("data-url");
      var done = function () { say(copy.getAttribute("data-done") || "✓ " + url); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(url).then(done, function () { say(url); });
      } else {
        var field = document.createElement("textarea");
        field.value = url; document.body.appendChild(field); field.select();
        try { document.execCommand("copy"); done(); } catch (e) { say(url); }
        document.body.removeChild(field);
      }
    });
  }

  var share = document.getElementById("share");
  if (share && navigator.share) {
    share.hidden = false;
    share.addEventListener("click", function () {
      navigator.share({ title: share.getAttribute("data-title"), url: share.getAttribute("data-url") })
        .catch(function () { /* the user closed the sheet */ });
    });
  }

  var offline = document.getElementById("offline-note");
  window.addEventListener("offline", function () { if (offline) { offline.hidden = false; } });
  if (offline && !navigator.onLine) { offline.hidden = false; }

  // Signing out first deletes the offline copy (the page and its QR) on this phone: the form posts to /logout,
  // outside the service worker's scope, so the worker never sees it. The answer also carries Clear-Site-Data.
  var signOut = document.querySelector("form[action='/logout']");
  if (signOut && window.caches) {
    signOut.addEventListener("submit", function (event) {
      event.preventDefault();
      var send = function () { signOut.submit(); };  // submit() fires no second submit event
      caches.keys().then(function (names) {
        return Promise.all(names.filter(function (n) { return n.indexOf("contactcard-me-") === 0; })
          .map(function (n) { return caches.delete(n); }));
      }).then(send, send);
    });
  }

  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/me" }).catch(function () { /* offline copy unavailable */ });
  }
})();
