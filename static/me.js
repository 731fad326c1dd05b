// /me: copy and share the link, install the service worker, note when the page is an offline copy.
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

  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/me" }).catch(function () { /* offline copy unavailable */ });
  }
})();
