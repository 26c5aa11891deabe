import { expect, test } from "@playwright/test";
import { hydrated, ready, signIn } from "./support";

test("an admin offers a plan and a consultant subscribes through Checkout and sees it active", async ({ page }, testInfo) => {
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
});
