// The script of the pages the server sends without the wasm app (the buyer's payment pages and
// sign-in): their forms work as plain HTML, and this adds what only a browser can. The server
// enforces the payment window whatever the countdown shows.
(function () {
  "use strict";

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  // The same words as the page the server rendered (app/src/pages/pay.rs, `countdown`).
  function countdown(seconds) {
    if (seconds <= 0) return "The payment window has closed.";
    return pad(Math.floor(seconds / 3600)) + ":" + pad(Math.floor((seconds % 3600) / 60)) + ":" + pad(seconds % 60) + " left to pay";
  }

  function startCountdown(element) {
    const left = Number(element.dataset.secondsLeft);
    if (!Number.isFinite(left)) return;
    // Counted from the page's load, not by decrementing, so a throttled background tab still
    // shows the right time when it comes back.
    const start = performance.now();
    function tick() {
      const remaining = Math.max(0, left - Math.floor((performance.now() - start) / 1000));
      element.textContent = countdown(remaining);
      if (remaining > 0) setTimeout(tick, 1000 - ((performance.now() - start) % 1000));
    }
    tick();
  }

  // A second click while the first submission travels would only wait for the same answer.
  function guardSubmission(form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitting === "true") {
        event.preventDefault();
        return;
      }
      form.dataset.submitting = "true";
      form.setAttribute("aria-busy", "true");
    });
  }

  function enhance() {
    document.querySelectorAll("[data-seconds-left]").forEach(startCountdown);
    document.querySelectorAll("form").forEach(guardSubmission);
    document.body.dataset.enhanced = "true";
  }

  // Back from Stripe's page, the browser may show this page from its cache: forms can go again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form").forEach(function (form) {
      delete form.dataset.submitting;
      form.removeAttribute("aria-busy");
    });
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", enhance);
  else enhance();
})();
