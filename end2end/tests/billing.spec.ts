import { expect, hydrated, linkInMail, newWorld, ready, signIn, test } from "./support";

test("a consultant subscribes, a client onboards through a link, and embedded onboarding enables payouts", async ({ page }, testInfo) => {
  // Stripe's embedded onboarding needs JavaScript; the no-JavaScript form posts of the same flow
  // are covered by the integration tests (server/tests/api/billing.rs, payouts.rs).
  test.skip(!hydrated(testInfo), "embedded onboarding runs in the browser");
  const world = await newWorld(testInfo);
  const plan = `Pro ${world.id}`;
  const bookkeeper = `books-${world.id}@e2e.example`;

  // Sign-in ends in a navigation to the role's home: clicking before it lands lets that
  // navigation finish after the click and take the page back home.
  await signIn(page, testInfo, "Platform admin");
  await expect(page).toHaveURL(/\/admin$/);
  await page.getByRole("link", { name: "Plans" }).click();
  await expect(page.getByRole("heading", { name: "Plans" })).toBeVisible();
  await ready(page, testInfo);
  await page.getByLabel("Name").fill(plan);
  await page.getByLabel("Price (e.g. 49.00)").fill("49.5");
  await page.getByRole("button", { name: "Create plan" }).click();
  await expect(page.getByTestId("plan-list")).toContainText("$49.50 / month");
  await page.getByRole("button", { name: "Sign out" }).click();

  await signIn(page, testInfo, world.consultant);
  await expect(page).toHaveURL(/\/dashboard$/);
  await page.getByRole("link", { name: "Billing" }).click();
  await expect(page.getByRole("heading", { name: "Billing" })).toBeVisible();
  await ready(page, testInfo);
  await page.getByRole("button", { name: `Subscribe to ${plan}` }).click();

  // Stripe's hosted Checkout (the sandbox's stand-in) knows the customer, so asks only for the card.
  await expect(page.getByRole("button", { name: "Subscribe" })).toBeVisible();
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByLabel("Name on card").fill(world.consultant.name);
  await page.getByRole("button", { name: "Subscribe" }).click();

  await expect(page).toHaveURL(/\/billing\?checkout=cs_/);
  await expect(page.getByTestId("subscription-status")).toHaveText("Active");
  await expect(page.getByTestId("subscription")).toContainText("$49.50 / month");
  await expect(page.getByTestId("next-invoice")).toContainText("$49.50");
  await expect(page.getByTestId("invoices")).toContainText("paid");

  // Payout setup: the consultant starts it, approves their bookkeeper and sends them a one-time
  // link (seed 001).
  await page.getByRole("link", { name: "Payment setup" }).click();
  await expect(page.getByTestId("payout-guidance")).toBeVisible();
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Start payout setup" }).click();
  await expect(page.getByTestId("payout-state")).toContainText("Payouts not enabled yet");
  await page.getByLabel("Approved address (leave empty for none)").fill(bookkeeper);
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByText(`Payout links may now also go to ${bookkeeper}`)).toBeVisible();
  await ready(page, testInfo);
  await page.getByLabel("Send to").fill(bookkeeper);
  await page.getByRole("button", { name: "Send link" }).click();
  await expect(page.getByText(`An onboarding link was sent to ${bookkeeper}`)).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();

  // The bookkeeper opens the link from the email.
  const link = await linkInMail(bookkeeper, /https?:\/\/\S+onboard-client\?token=/);
  await page.goto(link);
  await expect(page.getByRole("heading", { name: "Set up payouts" })).toBeVisible();
  await page.getByLabel("First name").fill("Casey");
  await page.getByLabel("Last name").fill(world.id);
  // Without a bank account: Stripe sends them back with that still to do.
  await page.getByLabel("Routing number").fill("");
  await page.getByLabel("Account number").fill("");
  await page.getByRole("button", { name: "Submit" }).click();
  await expect(page.getByRole("heading", { name: "Almost done" })).toBeVisible();
  await expect(page.getByRole("status")).toContainText("Add a bank account for payouts");

  // The consultant finishes in the embedded onboarding (FG-004) and sees payouts enabled.
  await signIn(page, testInfo, world.consultant);
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
