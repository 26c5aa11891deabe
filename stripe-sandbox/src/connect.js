// The Stripe sandbox's Connect.js. It offers the part of Stripe's Connect.js API that Remit uses:
//
//   const instance = window.StripeConnect.init({ publishableKey, fetchClientSecret });
//   instance.create("account-onboarding" | "account-management" | "payouts" | "payments" | "notification-banner")
//
// Each component renders the sandbox's page for it in an iframe, authorised only by the account
// session's client secret. One instance asks fetchClientSecret once and shares the secret among
// its components, as Stripe's does; when the session is no longer valid it asks for one new
// secret, however many of its components found out.
(function () {
  "use strict";
  const base = "__SANDBOX_BASE__";
  const connect = (window.StripeConnect = window.StripeConnect || {});
  const COMPONENTS = {
    "account-onboarding": { path: "/connect/embedded", title: "Account onboarding", height: 760 },
    "account-management": { path: "/connect/embedded", query: "&manage=1", title: "Account management", height: 760 },
    payouts: { path: "/connect/embedded/payouts", title: "Payouts", height: 320 },
    payments: { path: "/connect/embedded/payments", title: "Payments", height: 240 },
    "notification-banner": { path: "/connect/embedded/notification-banner", title: "Notifications", height: 0 },
  };

  function component(instance, tag) {
    const spec = COMPONENTS[tag];
    const element = document.createElement("stripe-connect-" + tag);
    element.style.display = "block";
    let onExit = () => {};
    let onLoadError = () => {};
    let onLoaderStart = () => {};
    let refreshed = false;
    let used = null;
    const frame = document.createElement("iframe");
    frame.title = spec.title;
    frame.style.cssText = "width:100%;border:0;height:" + spec.height + "px";
    element.appendChild(frame);

    async function load(stale) {
      try {
        const secret = await instance.secret(stale);
        used = secret;
        onLoaderStart({ elementTagName: element.tagName.toLowerCase() });
        frame.src = base + spec.path + (spec.path.indexOf("?") < 0 ? "?" : "&") +
          "client_secret=" + encodeURIComponent(secret) + (spec.query || "");
      } catch (error) {
        onLoadError({ error: { type: "api_error", message: String(error) }, elementTagName: element.tagName.toLowerCase() });
      }
    }

    window.addEventListener("message", (event) => {
      if (event.source !== frame.contentWindow || !event.data || event.data.source !== "stripe-sandbox") return;
      if (event.data.type === "resize" && typeof event.data.height === "number") {
        frame.style.height = event.data.height + "px";
      }
      if (event.data.type === "exit" || event.data.type === "complete") onExit();
      if (event.data.type === "session_invalid") {
        // An expired session is replaced once; a second failure is reported.
        if (!refreshed) {
          refreshed = true;
          load(used);
        } else {
          onLoadError({ error: { type: "authentication_error", message: "The account session is not valid." }, elementTagName: element.tagName.toLowerCase() });
        }
      }
    });

    element.setOnExit = (callback) => { onExit = callback; };
    element.setOnLoadError = (callback) => { onLoadError = callback; };
    element.setOnLoaderStart = (callback) => { onLoaderStart = callback; };
    element.setCollectionOptions = () => {};
    load(null);
    return element;
  }

  connect.init = function ({ publishableKey, fetchClientSecret }) {
    if (!publishableKey) throw new Error("StripeConnect.init needs a publishableKey");
    if (typeof fetchClientSecret !== "function") throw new Error("StripeConnect.init needs fetchClientSecret");
    let current = null;
    let currentValue = null;
    const instance = {
      // One secret for all of the instance's components. A component that found `stale` no
      // longer valid gets a new one; the others that report the same stale secret share it.
      secret(stale) {
        if (!current || (stale !== null && stale === currentValue)) {
          currentValue = undefined;
          current = Promise.resolve()
            .then(fetchClientSecret)
            .then((value) => {
              currentValue = value;
              return value;
            });
        }
        return current;
      },
    };
    return {
      create(tag) {
        if (!COMPONENTS[tag]) throw new Error("The sandbox does not offer the " + tag + " component");
        return component(instance, tag);
      },
      update() {},
      logout: async () => {},
    };
  };
  if (typeof connect.onLoad === "function") connect.onLoad();
})();
