import { connectAndRegisterWin, expect, linkInMail, newWorld, ready, receiver, signIn, test } from "./support";

test("an owner refunds half a paid lot: the buyer's credit note is emailed and verifies, and the timeline shows it all", async ({ page }, testInfo) => {
  const world = await newWorld(testInfo);
  const reference = `E2E-RF-${world.id}`;
  const buyer = `refund-buyer-${world.id}@e2e.example`;

  // The auction house listens for its events, connects Stripe and registers a win.
  let signingSecret = "";
  const endpoint = await receiver(() => signingSecret);
  try {
    await signIn(page, testInfo, world.owner);
    await expect(page).toHaveURL(/\/tenant$/);
    await page.goto("/settings/webhooks");
    await ready(page, testInfo);
    await page.getByLabel("HTTPS URL").fill(endpoint.url);
    await page.getByLabel("Mode").selectOption("test");
    await page.getByRole("button", { name: "Add endpoint" }).click();
    signingSecret = (await page.getByTestId("webhook-secret").textContent())!.trim();
    await connectAndRegisterWin(page, testInfo, { reference, lot: "42", buyer });

    // The buyer pays with 4242 on Stripe's hosted page.
    const link = await linkInMail(buyer, /https?:\/\/\S+\/pay\//);
    const buyerPage = await page.context().browser()!.newPage();
    await buyerPage.goto(link);
    await buyerPage.getByRole("button", { name: "Pay $125.00" }).click();
    await buyerPage.getByLabel("Card number").fill("4242 4242 4242 4242");
    await buyerPage.getByLabel("Expiry").fill("12 / 34");
    await buyerPage.getByLabel("CVC").fill("123");
    await buyerPage.getByLabel("Name on card").fill("Ada Buyer");
    await buyerPage.getByRole("button", { name: "Pay $125.00" }).click();
    await expect(buyerPage).toHaveURL(/\/pay\/complete\?session=cs_/);
    await buyerPage.close();

    // The owner opens the winning from the list once the payment is in.
    await page.goto("/winnings");
    await ready(page, testInfo);
    await page.getByRole("link", { name: reference }).click();
    await expect(page).toHaveURL(/\/winnings\/[0-9a-f-]{36}$/);
    await expect(async () => {
      await page.reload();
      await expect(page.getByTestId("refundable")).toContainText("Up to $125.00", { timeout: 1000 });
    }).toPass({ timeout: 20_000 });
    await ready(page, testInfo);
    await page.getByLabel("Amount (empty for all that is left)").fill("62.50");
    await page.getByLabel("Reason (printed on the credit note)").fill("Frame damaged in transit");
    await page.getByRole("button", { name: "Refund", exact: true }).click();
    await expect(page.getByTestId("refunds")).toContainText("$62.50");
    await expect(page.getByTestId("refundable")).toContainText("Up to $62.50");

    // Stripe's events make the refund succeed and its credit note is issued.
    await expect(async () => {
      await page.reload();
      await expect(page.getByTestId("refunds")).toContainText("CN-", { timeout: 1000 });
    }).toPass({ timeout: 20_000 });
    await expect(page.getByTestId("refunds")).toContainText("succeeded");

    // One timeline: payment, receipt, refund, credit note, and the webhook deliveries.
    await expect(async () => {
      await page.reload();
      const timeline = page.getByTestId("timeline");
      await expect(timeline).toContainText("Paid", { timeout: 1000 });
      await expect(timeline).toContainText("Receipt issued");
      await expect(timeline).toContainText("Receipt emailed");
      await expect(timeline).toContainText("Frame damaged in transit");
      await expect(timeline).toContainText("Credit note emailed");
      await expect(timeline).toContainText(`payment.succeeded to ${endpoint.url}: succeeded`);
      await expect(timeline).toContainText(`refund.created to ${endpoint.url}: succeeded`);
    }).toPass({ timeout: 20_000 });
    expect(endpoint.received.filter((r) => r.type === "refund.created")).toEqual([{ type: "refund.created", verified: true }]);
  } finally {
    endpoint.close();
  }

  // The tenant's report adds it up: $125.00 paid, $62.50 refunded, by day and then by month.
  await page.goto("/reports");
  await ready(page, testInfo);
  const report = page.getByTestId("report");
  await expect(report).toContainText("$125.00");
  await expect(report).toContainText("$62.50");
  await expect(page.getByTestId("report-chart")).toBeVisible();
  await page.getByLabel("By").selectOption("month");
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page).toHaveURL(/period=month/);
  await expect(page.getByTestId("report").getByRole("row").filter({ hasText: "Total" })).toContainText("$62.50");

  // The buyer's credit note is in the outbox, as a PDF, and anyone holding it can check it.
  await signIn(page, testInfo, "Platform admin");
  const row = page.getByRole("row").filter({ hasText: buyer }).filter({ hasText: "Refund for lot 42" });
  await expect(async () => {
    await page.goto(`/admin/outbox?to=${encodeURIComponent(buyer)}`);
    await expect(row).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await row.getByRole("link").first().click();
  const body = (await page.getByTestId("email-body").textContent())!;
  expect(body).toContain("has refunded $62.50");
  const attachment = page.getByRole("link", { name: /^credit-note-CN-.+\.pdf$/ });
  const pdf = await page.request.get((await attachment.getAttribute("href"))!);
  expect(pdf.headers()["content-type"]).toBe("application/pdf");
  expect((await pdf.body()).subarray(0, 5).toString("latin1")).toBe("%PDF-");
  const code = body.match(/Verification code: (\S+)/)![1];
  await page.goto(`/receipts/verify?code=${code}`);
  await expect(page.getByRole("status")).toContainText("Genuine: credit note");
  await expect(page.getByTestId("verified-amount")).toHaveText("$62.50");

  // The platform admin reconciles today with Stripe from the reconciliation page.
  const today = new Date().toISOString().slice(0, 10);
  await page.goto("/admin/reconciliation");
  await ready(page, testInfo);
  await page.getByLabel("Day (UTC)").fill(today);
  await page.getByRole("button", { name: "Reconcile" }).click();
  await expect(async () => {
    await page.goto("/admin/reconciliation");
    await expect(page.getByTestId("reconciliation").filter({ hasText: `${today} · test` })).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 20_000 });
});
