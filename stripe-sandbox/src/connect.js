// The Stripe sandbox's Connect.js. It offers the part of Stripe's Connect.js API that Remit uses:
//
//   window.StripeConnect.init({ publishableKey, fetchClientSecret }).create("account-onboarding")
//
// The component renders the sandbox's onboarding form in an iframe, authorised only by the
// account session's client secret, and asks fetchClientSecret for a new one when it expires.
(function () {
  const base = "__SANDBOX_BASE__";
  const connect = (window.StripeConnect = window.StripeConnect || {});

  function onboarding(instance) {
    const element = document.createElement("stripe-connect-account-onboarding");
    element.style.display = "block";
    let onExit = () => {};
    let onLoadError = () => {};
    let refreshed = false;
    const frame = document.createElement("iframe");
    frame.title = "Account onboarding";
    frame.style.cssText = "width:100%;min-height:760px;border:0";
    element.appendChild(frame);

    async function load() {
      try {
        const secret = await instance.fetchClientSecret();
        frame.src = base + "/connect/embedded?client_secret=" + encodeURIComponent(secret);
      } catch (error) {
        onLoadError({ error: { type: "api_error", message: String(error) }, elementTagName: "stripe-connect-account-onboarding" });
      }
    }

    window.addEventListener("message", (event) => {
      if (event.source !== frame.contentWindow || !event.data || event.data.source !== "stripe-sandbox") return;
      if (event.data.type === "exit" || event.data.type === "complete") onExit();
      if (event.data.type === "session_invalid") {
        // An expired session is replaced once; a second failure is reported.
        if (!refreshed) {
          refreshed = true;
          load();
        } else {
          onLoadError({ error: { type: "authentication_error", message: "The account session is not valid." }, elementTagName: "stripe-connect-account-onboarding" });
        }
      }
    });

    element.setOnExit = (callback) => { onExit = callback; };
    element.setOnLoadError = (callback) => { onLoadError = callback; };
    element.setCollectionOptions = () => {};
    load();
    return element;
  }

  connect.init = function ({ publishableKey, fetchClientSecret }) {
    if (!publishableKey) throw new Error("StripeConnect.init needs a publishableKey");
    if (typeof fetchClientSecret !== "function") throw new Error("StripeConnect.init needs fetchClientSecret");
    const instance = { fetchClientSecret };
    return {
      create(tag) {
        if (tag !== "account-onboarding") throw new Error("The sandbox offers only account-onboarding, not " + tag);
        return onboarding(instance);
      },
      update() {},
      logout: async () => {},
    };
  };
  if (typeof connect.onLoad === "function") connect.onLoad();
})();
