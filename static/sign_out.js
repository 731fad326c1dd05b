// Signing out at the identity provider (templates/auth/sign_out.html): post the page's form at once. The form
// carries the ID token in its body, never in a URL; without this file its button does the same.
(function () {
  "use strict";
  var form = document.getElementById("provider-sign-out");
  if (form) { form.submit(); }
}());
