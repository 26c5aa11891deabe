import { expect, hydrated, linkInMail, newWorld, ready, signIn, test } from "./support";

test("a consultant bills a family member, who pays with 4242 and downloads the receipt; the consultant's Payouts page shows the balance and the payment", async ({ page }, testInfo) => {
  const world = await newWorld(testInfo);
  const plan = `Pro ${world.id}`;

  // A plan to subscribe to.
  await signIn(page, testInfo, "Platform admin");
  await expect(page).toHaveURL(/\/admin$/);
  await page.goto("/admin/plans");
  await ready(page, testInfo);
  await page.getByLabel("Name").fill(plan);
  await page.getByLabel("Price (e.g. 49.00)").fill("29");
  await page.getByRole("button", { name: "Create plan" }).click();
  await expect(page.getByTestId("plan-list")).toContainText(plan);
  await page.getByRole("button", { name: "Sign out" }).click();

  // The consultant subscribes and sets up payouts through a one-time link sent to themselves:
  // billing clients needs both.
  await signIn(page, testInfo, world.consultant);
  await expect(page).toHaveURL(/\/dashboard$/);
  await page.goto("/billing");
  await ready(page, testInfo);
  await page.getByRole("button", { name: `Subscribe to ${plan}` }).click();
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByLabel("Name on card").fill(world.consultant.name);
  await page.getByRole("button", { name: "Subscribe" }).click();
  await expect(page.getByTestId("subscription-status")).toHaveText("Active");
  await page.goto("/payment-setup");
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Start payout setup" }).click();
  await expect(page.getByTestId("payout-state")).toContainText("Payouts not enabled yet");
  await ready(page, testInfo);
  await page.getByLabel("Send to").fill(world.consultant.email);
  await page.getByRole("button", { name: "Send link" }).click();
  await expect(page.getByText(`An onboarding link was sent to ${world.consultant.email}`)).toBeVisible();
  await page.goto(await linkInMail(world.consultant.email, /https?:\/\/\S+onboard-client\?token=/));
  await expect(page.getByRole("heading", { name: "Set up payouts" })).toBeVisible();
  await page.getByLabel("First name").fill("Casey");
  await page.getByLabel("Last name").fill(world.id);
  await page.getByRole("button", { name: "Submit" }).click();
  await expect(page.getByRole("heading", { name: "Payouts enabled" })).toBeVisible();

  // The fee request, to the family member of the household.
  await page.goto("/fees");
  await ready(page, testInfo);
  await page.getByLabel("Client", { exact: true }).selectOption({ label: `${world.family.name} <${world.family.email}>` });
  await page.getByLabel("For", { exact: true }).fill("Tax return 2026");
  await page.getByLabel("Amount", { exact: true }).fill("120.00");
  await page.getByRole("button", { name: "Send fee request" }).click();
  await expect(page.getByTestId("fees")).toContainText("Tax return 2026");
  await expect(page.getByTestId("fee")).toContainText("open");
  await page.getByRole("button", { name: "Sign out" }).click();

  // The family member sees what they owe and pays it on Stripe's page.
  await signIn(page, testInfo, world.family);
  await expect(page).toHaveURL(/\/dashboard$/);
  await page.getByRole("link", { name: "Fees" }).click();
  await expect(page.getByTestId("outstanding")).toHaveText("$120.00");
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Pay $120.00" }).click();
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByLabel("Name on card").fill(world.family.name);
  await page.getByRole("button", { name: "Pay $120.00" }).click();
  await expect(page).toHaveURL(/\/fees\?paid=cs_/);
  // The payment's events may land a moment after the page: reload until Stripe has told Remit.
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId("fee")).toContainText("paid", { timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await expect(page.getByTestId("outstanding")).toHaveText("Nothing: you are all paid up.");

  // The receipt: a PDF, checked against its SHA-256 as it is served.
  const receipt = page.getByRole("link", { name: "Receipt (PDF)" });
  const download = await page.request.get((await receipt.getAttribute("href"))!);
  expect(download.status()).toBe(200);
  expect(download.headers()["content-type"]).toBe("application/pdf");
  expect(download.headers()["repr-digest"]).toMatch(/^sha-256=:/);
  expect((await download.body()).subarray(0, 5).toString()).toBe("%PDF-");

  // The consultant's Payouts page: the balance the payment made (less the platform's 5 %),
  // pending until Stripe releases it; with JavaScript, Stripe's components show it and the payment.
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, testInfo, world.consultant);
  await expect(page).toHaveURL(/\/dashboard$/);
  await page.getByRole("link", { name: "Payouts", exact: true }).click();
  await expect(page.getByTestId("balance-pending")).toHaveText("$114.00");
  await expect(page.getByTestId("payout-summary")).toContainText("No payouts yet");
  if (hydrated(testInfo)) {
    const payouts = page.frameLocator('iframe[title="Payouts"]');
    await expect(payouts.getByTestId("pending")).toHaveText("$114.00");
    const payments = page.frameLocator('iframe[title="Payments"]');
    await expect(payments.getByTestId("payment-list")).toContainText("$120.00");
    await expect(payments.getByTestId("payment-list")).toContainText("Succeeded");
  }
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Open your Stripe Express dashboard" }).click();
  await expect(page.getByRole("heading", { name: "Express dashboard" })).toBeVisible();
});
