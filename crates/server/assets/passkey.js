// Gatehouse passkeys: the only script of the sign-in and account pages. A form
// marked data-passkey="register|signin|second-factor" gets a challenge from
// /passkey/challenge (same CSRF token as the form), asks the browser for a
// credential, puts the result (JSON, base64url fields) in the form's hidden
// `credential` field and posts the form. Without WebAuthn the buttons stay hidden.
// On a sign-in page whose e-mail field says autocomplete="username webauthn",
// the browser is also asked at once with mediation "conditional", so it can offer
// the person's passkeys in the field's autofill; pressing the button aborts that
// request first (a browser allows one at a time).
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function b64urlToBuf(s) {
    var b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(pk) {
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return pk;
  }

  function requestOptions(pk) {
    pk.challenge = b64urlToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return pk;
  }

  function registration(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: bufToB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: bufToB64url(r.attestationObject),
        clientDataJSON: bufToB64url(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function assertion(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: bufToB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: bufToB64url(r.authenticatorData),
        clientDataJSON: bufToB64url(r.clientDataJSON),
        signature: bufToB64url(r.signature),
        userHandle: r.userHandle ? bufToB64url(r.userHandle) : null
      },
      extensions: {}
    };
  }

  function say(form, text) {
    var p = form.querySelector("[data-passkey-error]");
    if (!p) return;
    p.textContent = text;
    p.hidden = !text;
  }

  // The conditional request, while one is running: its abort controller and
  // the whole request (settled only once the browser let go of it, and after
  // its challenge's cookie was set, so a new challenge cannot race either).
  var conditional = null;
  // A button was pressed: no conditional request starts after that.
  var pressed = false;

  function challenge(form, purpose) {
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    body.set("purpose", purpose);
    return fetch("/passkey/challenge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (!res.ok) throw new Error(j.error || "The passkey request failed: reload the page and try again.");
        return j;
      });
    });
  }

  function post(form, json) {
    form.elements.credential.value = JSON.stringify(json);
    form.submit();
  }

  function startConditional(form) {
    var controller = new AbortController();
    var done = challenge(form, "signin")
      .then(function (opts) {
        return navigator.credentials.get({
          publicKey: requestOptions(opts.publicKey),
          mediation: "conditional",
          signal: controller.signal
        });
      })
      .then(function (cred) { if (cred) post(form, assertion(cred)); })
      .catch(function () { /* aborted or refused: the button still works */ });
    conditional = { controller: controller, done: done };
  }

  function start(form) {
    var purpose = form.getAttribute("data-passkey");
    if (purpose === "register" && !form.reportValidity()) return;
    say(form, "");
    pressed = true;
    var before = Promise.resolve();
    if (conditional) {
      conditional.controller.abort();
      before = conditional.done;
      conditional = null;
    }
    before
      .then(function () { return challenge(form, purpose); })
      .then(function (opts) {
        if (purpose === "register") {
          return navigator.credentials
            .create({ publicKey: creationOptions(opts.publicKey) })
            .then(registration);
        }
        return navigator.credentials
          .get({ publicKey: requestOptions(opts.publicKey) })
          .then(assertion);
      })
      .then(function (json) { post(form, json); })
      .catch(function (e) {
        var msg = e && e.name === "NotAllowedError"
          ? "The passkey was not used (cancelled or timed out). Try again."
          : (e && e.message) || "The passkey did not work. Try again.";
        say(form, msg);
      });
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    var button = form.querySelector("button[type=submit]");
    if (button) button.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      start(form);
    });
  });

  // Not on a page answering a refused sign-in: a passkey the server just
  // refused would only be offered (and, by an automatic authenticator, sent)
  // again; the button stays.
  var signin = document.querySelector('form[data-passkey="signin"]');
  var field = document.querySelector('input[autocomplete~="webauthn"]');
  var refused = document.querySelector("p.error[role=alert]:not([data-passkey-error])");
  if (signin && field && !refused && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable()
      .then(function (ok) { if (ok && !conditional && !pressed) startConditional(signin); })
      .catch(function () {});
  }
})();
