// The Stripe sandbox's hosted pages, driven in Chromium. run.sh starts a standalone sandbox
// and passes its URL and secret key.
import { type Page } from "@playwright/test";
import { expect, test } from "./support";

const base = process.env.REMIT_SANDBOX_URL!;
const key = process.env.REMIT_SANDBOX_KEY!;

test.beforeEach(({}, testInfo) => {
  test.skip(testInfo.project.name !== "hydrated", "the sandbox's pages are the same with or without JavaScript");
});

async function stripe(method: string, path: string, form: Record<string, string> = {}) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: method === "GET" ? undefined : new URLSearchParams(form),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${JSON.stringify(body)}`);
  return body;
}

async function checkout(extra: Record<string, string> = {}) {
  return stripe("POST", "/v1/checkout/sessions", {
    mode: "payment",
    success_url: "https://remit.example/paid?session={CHECKOUT_SESSION_ID}",
    cancel_url: "https://remit.example/cancelled",
    "line_items[0][quantity]": "1",
    "line_items[0][price_data][currency]": "usd",
    "line_items[0][price_data][unit_amount]": "12500",
    "line_items[0][price_data][product_data][name]": "Lot 42 — Victorian clock",
    ...extra,
  });
}

async function fillCard(page: Page, number: string) {
  await page.getByLabel("Email").fill("buyer@example.com");
  await page.getByLabel("Card number").fill(number);
  await page.getByLabel("Expiry").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByLabel("Name on card").fill("Ada Buyer");
}

/** Stops at the merchant's success URL instead of leaving for the internet. */
async function catchSuccess(page: Page) {
  await page.route("https://remit.example/**", (route) => route.fulfill({ status: 200, contentType: "text/html", body: "<h1>Back at the merchant</h1>" }));
}

test("Checkout: a declined card shows the reason, a good card pays", async ({ page }) => {
  const session = await checkout();
  await catchSuccess(page);
  await page.goto(session.url);
  await expect(page.getByText("Lot 42 — Victorian clock × 1")).toBeVisible();
  await expect(page.getByTestId("amount")).toHaveText("$125.00");
  await fillCard(page, "4000 0000 0000 0002");
  await page.getByRole("button", { name: "Pay $125.00" }).click();
  await expect(page.getByRole("alert")).toHaveText("Your card was declined.");
  await fillCard(page, "4000 0000 0000 9995");
  await page.getByRole("button", { name: "Pay $125.00" }).click();
  await expect(page.getByRole("alert")).toHaveText("Your card has insufficient funds.");
  await fillCard(page, "4242 4242 4242 4242");
  await page.getByRole("button", { name: "Pay $125.00" }).click();
  await expect(page).toHaveURL(`https://remit.example/paid?session=${session.id}`);
  const paid = await stripe("GET", `/v1/checkout/sessions/${session.id}`);
  expect(paid.payment_status).toBe("paid");
});

test("Checkout: 3D Secure can be failed and then completed", async ({ page }) => {
  const session = await checkout();
  await catchSuccess(page);
  await page.goto(session.url);
  await fillCard(page, "4000 0027 6000 3184");
  await page.getByRole("button", { name: "Pay $125.00" }).click();
  await expect(page.getByRole("heading", { name: "3D Secure authentication" })).toBeVisible();
  await page.getByRole("button", { name: "Fail authentication" }).click();
  await expect(page.getByRole("alert")).toContainText("unable to authenticate");
  await fillCard(page, "4000 0027 6000 3184");
  await page.getByRole("button", { name: "Pay $125.00" }).click();
  await page.getByRole("button", { name: "Complete authentication" }).click();
  await expect(page).toHaveURL(`https://remit.example/paid?session=${session.id}`);
});

test("Checkout: an expired session says so", async ({ page }) => {
  const session = await checkout();
  await stripe("POST", `/v1/checkout/sessions/${session.id}/expire`);
  const response = await page.goto(session.url);
  expect(response?.status()).toBe(410);
  await expect(page.getByRole("heading", { name: "This checkout session has expired" })).toBeVisible();
});

async function expressAccount() {
  return stripe("POST", "/v1/accounts", { type: "express", country: "US", email: "casey@example.com" });
}

test("Connect: hosted onboarding through a single-use account link", async ({ page }) => {
  const account = await expressAccount();
  const link = await stripe("POST", "/v1/account_links", {
    account: account.id,
    type: "account_onboarding",
    refresh_url: "https://remit.example/refresh",
    return_url: "https://remit.example/return",
  });
  await page.route("https://remit.example/**", (route) => route.fulfill({ status: 200, body: "back" }));
  await page.goto(link.url);
  await page.getByLabel("First name").fill("Casey");
  await page.getByLabel("Last name").fill("Consultant");
  await page.getByRole("button", { name: "Submit" }).click();
  await expect(page).toHaveURL("https://remit.example/return");
  const updated = await stripe("GET", `/v1/accounts/${account.id}`);
  expect([updated.details_submitted, updated.charges_enabled, updated.payouts_enabled]).toEqual([true, true, true]);
  // A used link sends the person to the platform's refresh URL.
  const reused = await page.request.get(link.url, { maxRedirects: 0 });
  expect(reused.status()).toBe(303);
  expect(reused.headers()["location"]).toBe("https://remit.example/refresh");
});

test("Connect: embedded onboarding through Connect.js and a client secret", async ({ page }) => {
  const account = await expressAccount();
  const session = await stripe("POST", "/v1/account_sessions", {
    account: account.id,
    "components[account_onboarding][enabled]": "true",
    "components[account_onboarding][features][external_account_collection]": "true",
  });
  await page.goto(`${base}/connect.js`);
  await page.setContent(`<!DOCTYPE html><html><body><div id="onboarding"></div><p id="status">waiting</p>
    <script>
      window.StripeConnect = { onLoad() {
        const connect = StripeConnect.init({ publishableKey: "pk_test_sandbox", fetchClientSecret: async () => ${JSON.stringify(session.client_secret)} });
        const onboarding = connect.create("account-onboarding");
        onboarding.setOnExit(() => { document.getElementById("status").textContent = "exited"; });
        document.getElementById("onboarding").appendChild(onboarding);
      } };
    </script><script src="${base}/connect.js"></script></body></html>`);
  const frame = page.frameLocator("iframe[title='Account onboarding']");
  await frame.getByLabel("First name").fill("Casey");
  await frame.getByLabel("Last name").fill("Consultant");
  await frame.getByRole("button", { name: "Submit" }).click();
  await expect(page.locator("#status")).toHaveText("exited");
  const updated = await stripe("GET", `/v1/accounts/${account.id}`);
  expect(updated.payouts_enabled).toBe(true);
});

test("Connect: OAuth authorise page returns a code and the state", async ({ page }) => {
  await page.route("https://remit.example/**", (route) => route.fulfill({ status: 200, body: "callback" }));
  await page.goto(`${base}/oauth/authorize?response_type=code&client_id=ca_sandbox&scope=read_write&state=xyz&redirect_uri=${encodeURIComponent("https://remit.example/callback")}`);
  await page.getByRole("button", { name: "Connect my Stripe account" }).click();
  await expect(page).toHaveURL(/https:\/\/remit\.example\/callback\?code=ac_\w+&scope=read_write&state=xyz/);
  await page.goto(`${base}/oauth/authorize?response_type=code&client_id=ca_sandbox&scope=read_write&state=abc&redirect_uri=${encodeURIComponent("https://remit.example/callback")}`);
  await page.getByRole("button", { name: "Deny access" }).click();
  await expect(page).toHaveURL(/error=access_denied.*state=abc/);
});

test("Billing: the hosted invoice page and its PDF", async ({ page }) => {
  const price = await stripe("POST", "/v1/prices", { currency: "usd", unit_amount: "2900", "recurring[interval]": "month", "product_data[name]": "Consultant Pro" });
  const session = await stripe("POST", "/v1/checkout/sessions", {
    mode: "subscription",
    customer_email: "casey@example.com",
    success_url: "https://remit.example/subscribed",
    "line_items[0][price]": price.id,
    "line_items[0][quantity]": "1",
  });
  await catchSuccess(page);
  await page.goto(session.url);
  await fillCard(page, "4242 4242 4242 4242");
  await page.getByRole("button", { name: "Subscribe" }).click();
  await expect(page).toHaveURL("https://remit.example/subscribed");
  const done = await stripe("GET", `/v1/checkout/sessions/${session.id}`);
  const invoice = await stripe("GET", `/v1/invoices/${done.invoice}`);
  await page.goto(invoice.hosted_invoice_url);
  await expect(page.getByText("Status: paid")).toBeVisible();
  const pdf = await page.request.get(invoice.invoice_pdf);
  expect(pdf.headers()["content-type"]).toBe("application/pdf");
});
