// Mounts Stripe's embedded Connect onboarding wherever the payment setup page renders its
// container (#stripe-onboarding), on a full page load or after the app renders it in the browser.
// Connect.js comes from the URL the server names (Stripe's, or the Stripe sandbox's stand-in).
(function () {
  "use strict";

  function showError(root) {
    const error = document.getElementById("onboarding-error");
    if (error) error.hidden = false;
    root.dataset.state = "error";
  }

  async function fetchClientSecret(root) {
    // A fresh Account Session every time: Connect.js calls this again when a session expires.
    const response = await fetch("/rpc/account_session", { method: "POST", headers: { Accept: "application/json" } });
    if (!response.ok) {
      showError(root);
      throw new Error("Unable to access onboarding.");
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
    const error = document.getElementById("onboarding-error");
    if (error) error.hidden = true;
    root.dataset.state = "loading";
    root.replaceChildren();
    loadConnectJs(root.dataset.connectJs).then(
      function () {
        try {
          const instance = window.StripeConnect.init({
            publishableKey: root.dataset.publishableKey,
            fetchClientSecret: function () {
              return fetchClientSecret(root);
            },
          });
          const component = instance.create("account-onboarding");
          component.setOnExit(function () {
            window.location.assign(root.dataset.returnUrl);
          });
          component.setOnLoadError(function () {
            showError(root);
          });
          root.appendChild(component);
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
    const root = document.getElementById("stripe-onboarding");
    if (root && !root.dataset.state) mount(root);
  }

  document.addEventListener("click", function (event) {
    const retry = event.target.closest && event.target.closest("#onboarding-retry");
    if (!retry) return;
    event.preventDefault();
    const root = document.getElementById("stripe-onboarding");
    if (root) mount(root);
  });
  new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
