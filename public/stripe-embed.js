// Mounts Stripe's embedded Connect components wherever a page renders a root
// (`[data-stripe-embed]`: the publishable key, the Connect.js URL, the endpoint that makes an
// Account Session, and where "exit" goes) with component slots inside it
// (`[data-stripe-component="payouts"]`), on a full page load or after the app renders it in the
// browser. Connect.js comes from the URL the server names (Stripe's, or the sandbox's stand-in).
(function () {
  "use strict";

  function showError(root) {
    const error = root.querySelector("[data-stripe-error]");
    if (error) error.hidden = false;
    root.dataset.state = "error";
  }

  async function fetchClientSecret(root) {
    // A fresh Account Session every time: Connect.js calls this again when a session expires.
    const response = await fetch(root.dataset.sessionEndpoint, { method: "POST", headers: { Accept: "application/json" } });
    if (!response.ok) {
      showError(root);
      throw new Error("Unable to load Stripe's components.");
    }
    return response.json();
  }

  function loadConnectJs(src) {
    if (window.StripeConnect && window.StripeConnect.init) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function mount(root) {
    const error = root.querySelector("[data-stripe-error]");
    if (error) error.hidden = true;
    root.dataset.state = "loading";
    const slots = Array.from(root.querySelectorAll("[data-stripe-component]"));
    slots.forEach(function (slot) { slot.replaceChildren(); });
    loadConnectJs(root.dataset.connectJs).then(
      function () {
        try {
          // One instance per page: its components share one Account Session.
          const instance = window.StripeConnect.init({
            publishableKey: root.dataset.publishableKey,
            fetchClientSecret: function () {
              return fetchClientSecret(root);
            },
          });
          slots.forEach(function (slot) {
            const component = instance.create(slot.dataset.stripeComponent);
            if (component.setOnExit && root.dataset.returnUrl) {
              component.setOnExit(function () {
                window.location.assign(root.dataset.returnUrl);
              });
            }
            component.setOnLoadError(function () {
              showError(root);
            });
            slot.appendChild(component);
          });
          root.dataset.state = "mounted";
        } catch (e) {
          showError(root);
        }
      },
      function () {
        showError(root);
      }
    );
  }

  function scan() {
    document.querySelectorAll("[data-stripe-embed]").forEach(function (root) {
      if (!root.dataset.state) mount(root);
    });
  }

  document.addEventListener("click", function (event) {
    const retry = event.target.closest && event.target.closest("[data-stripe-retry]");
    if (!retry) return;
    event.preventDefault();
    const root = retry.closest("[data-stripe-embed]");
    if (root) mount(root);
  });
  new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
