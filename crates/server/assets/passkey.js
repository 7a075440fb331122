// Gatehouse passkeys: the only script of the sign-in and account pages. A form
// marked data-passkey="register|signin|second-factor" gets a challenge from
// /passkey/challenge (same CSRF token as the form), asks the browser for a
// credential, puts the result (JSON, base64url fields) in the form's hidden
// `credential` field and posts the form. Without WebAuthn the buttons stay hidden.
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

  function start(form) {
    var purpose = form.getAttribute("data-passkey");
    if (purpose === "register" && !form.reportValidity()) return;
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    body.set("purpose", purpose);
    say(form, "");
    fetch("/passkey/challenge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (j) {
          if (!res.ok) throw new Error(j.error || "The passkey request failed: reload the page and try again.");
          return j;
        });
      })
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
      .then(function (json) {
        form.elements.credential.value = JSON.stringify(json);
        form.submit();
      })
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
})();
