import { expect, test } from "@playwright/test";
import { hydrated, ready, signIn } from "./support";

test("a consultant subscribes, a client onboards through a link, and embedded onboarding enables payouts", async ({ page }, testInfo) => {
  // The demo consultant can hold one subscription per run; the no-JavaScript form posts of the
  // same flow are covered by the integration tests (server/tests/api/billing.rs).
  test.skip(!hydrated(testInfo), "one subscription per demo consultant and run");

  await signIn(page, testInfo, "Platform admin");
  await page.getByRole("link", { name: "Plans" }).click();
  await expect(page.getByRole("heading", { name: "Plans" })).toBeVisible();
  await ready(page, testInfo);
  await page.getByLabel("Name").fill("Pro");
  await page.getByLabel("Price (e.g. 49.00)").fill("49.5");
  await page.getByRole("button", { name: "Create plan" }).click();
  await expect(page.getByTestId("plan-list")).toContainText("$49.50 / month");
  await page.getByRole("button", { name: "Sign out" }).click();

  await signIn(page, testInfo, "Consultant");
  await page.getByRole("link", { name: "Billing" }).click();
  await expect(page.getByRole("heading", { name: "Billing" })).toBeVisible();
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Subscribe to Pro" }).click();

  // Stripe's hosted Checkout (the sandbox's stand-in) knows the customer, so asks only for the card.
  await expect(page.getByRole("button", { name: "Subscribe" })).toBeVisible();
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByLabel("Name on card").fill("Casey Consultant");
  await page.getByRole("button", { name: "Subscribe" }).click();

  await expect(page).toHaveURL(/\/billing\?checkout=cs_/);
  await expect(page.getByTestId("subscription-status")).toHaveText("Active");
  await expect(page.getByTestId("subscription")).toContainText("$49.50 / month");
  await expect(page.getByTestId("next-invoice")).toContainText("$49.50");
  await expect(page.getByTestId("invoices")).toContainText("paid");

  // Payout setup: the consultant starts it, then sends a one-time link (seed 001).
  await page.getByRole("link", { name: "Payment setup" }).click();
  await expect(page.getByTestId("payout-guidance")).toBeVisible();
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Start payout setup" }).click();
  await expect(page.getByTestId("payout-state")).toContainText("Payouts not enabled yet");
  await page.getByLabel("Send to").fill("books@example.com");
  await page.getByRole("button", { name: "Send link" }).click();
  await expect(page.getByText("An onboarding link was sent to books@example.com")).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();

  // The client opens the link from the email (read here in the admin's outbox).
  await signIn(page, testInfo, "Platform admin");
  await expect(page).toHaveURL(/\/admin$/);
  await page.goto("/admin/outbox");
  await page.getByRole("link", { name: "Set up payouts with Stripe" }).first().click();
  const body = (await page.getByTestId("email-body").textContent())!;
  const link = body.match(/https?:\/\/\S+onboard-client\?token=\S+/)![0];
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto(link);
  await expect(page.getByRole("heading", { name: "Set up payouts" })).toBeVisible();
  await page.getByLabel("First name").fill("Casey");
  await page.getByLabel("Last name").fill("Consultant");
  // Without a bank account: Stripe sends them back with that still to do.
  await page.getByLabel("Routing number").fill("");
  await page.getByLabel("Account number").fill("");
  await page.getByRole("button", { name: "Submit" }).click();
  await expect(page.getByRole("heading", { name: "Almost done" })).toBeVisible();
  await expect(page.getByRole("status")).toContainText("Add a bank account for payouts");

  // The consultant finishes in the embedded onboarding (FG-004) and sees payouts enabled.
  await signIn(page, testInfo, "Consultant");
  await expect(page).toHaveURL(/\/dashboard$/);
  await page.goto("/payment-setup");
  await expect(page.getByTestId("payout-tasks")).toContainText("Add a bank account for payouts");
  const onboarding = page.frameLocator('iframe[title="Account onboarding"]');
  await onboarding.getByLabel("First name").fill("Casey");
  await onboarding.getByLabel("Last name").fill("Consultant");
  await onboarding.getByRole("button", { name: "Submit" }).click();
  await expect(page).toHaveURL(/\/payment-setup\/complete$/);
  await expect(page.getByTestId("payout-state")).toContainText("Payouts enabled");
  await expect(page.getByTestId("payout-complete")).toContainText("You're all set");
});
