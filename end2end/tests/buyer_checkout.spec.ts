import { connectAndRegisterWin, expect, hydrated, linkInMail, newWorld, openCountingCode, ready, signIn, test } from "./support";

test("staff register a win, the buyer opens the emailed link, pays on Checkout, lands on the success page and gets the PDF receipt", async ({ page }, testInfo) => {
  const world = await newWorld(testInfo);
  const reference = `E2E-${world.id}`;
  const buyer = `buyer-${world.id}@e2e.example`;

  // The auction house connects Stripe and registers a win.
  await signIn(page, testInfo, world.owner);
  await expect(page).toHaveURL(/\/tenant$/);
  await connectAndRegisterWin(page, testInfo, { reference, lot: "42", buyer });
  await page.getByRole("button", { name: "Sign out" }).click();

  // The buyer's email holds the payment link.
  const link = await linkInMail(buyer, /https?:\/\/\S+\/pay\//);

  if (hydrated(testInfo)) {
    // The payment page comes without the wasm app: a buyer on a phone downloads a few KB of script.
    const payCode = await openCountingCode(page, link);
    expect(payCode.files, "the payment page's code").toEqual(["/plain.js"]);
    expect(payCode.bytes).toBeLessThanOrEqual(250_000);
  } else {
    await page.goto(link);
  }
  await expect(page.getByTestId("amount")).toHaveText("$125.00");
  await expect(page.getByTestId("countdown")).toContainText("left to pay");
  if (hydrated(testInfo)) {
    // The countdown runs in the browser.
    const before = await page.getByTestId("countdown").textContent();
    await expect(page.getByTestId("countdown")).not.toHaveText(before!, { timeout: 3000 });
  }
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Pay $125.00" }).click();

  // Stripe's hosted Checkout (the sandbox's stand-in): a decline, then a good card.
  await page.getByLabel("Card number").fill("4000 0000 0000 0002");
  await page.getByLabel("Expiry").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByLabel("Name on card").fill("Ada Buyer");
  await page.getByRole("button", { name: "Pay $125.00" }).click();
  await expect(page.getByRole("alert")).toHaveText("Your card was declined.");
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByLabel("Name on card").fill("Ada Buyer");
  await page.getByRole("button", { name: "Pay $125.00" }).click();

  await expect(page).toHaveURL(/\/pay\/complete\?session=cs_/);
  await expect(page.getByTestId("payment-result")).toContainText("$125.00");
  // The payment's events may land a moment after the page: reload until Stripe has told Remit.
  await expect(async () => {
    await page.reload();
    await expect(page.getByRole("heading", { name: "Payment received" })).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15_000 });

  // The payment link now offers the receipt.
  await page.goto(link);
  const receiptLink = page.getByTestId("receipt-link");
  await expect(receiptLink).toBeVisible();
  const download = await page.request.get((await receiptLink.getAttribute("href"))!);
  expect(download.status()).toBe(200);
  expect(download.headers()["content-type"]).toBe("application/pdf");
  const pdf = await download.body();
  expect(pdf.subarray(0, 5).toString("latin1")).toBe("%PDF-");

  // And the receipt email, with the same PDF attached, reaches the outbox.
  await signIn(page, testInfo, "Platform admin");
  await expect(page).toHaveURL(/\/admin$/);
  const receiptRow = page.getByRole("row").filter({ hasText: buyer }).filter({ hasText: "Your receipt for lot 42" });
  await expect(async () => {
    await page.goto(`/admin/outbox?to=${encodeURIComponent(buyer)}`);
    await expect(receiptRow).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await receiptRow.getByRole("link").first().click();
  const receiptBody = (await page.getByTestId("email-body").textContent())!;
  expect(receiptBody).toContain("Amount paid: $125.00");
  const attachment = page.getByRole("link", { name: /^receipt-.+\.pdf$/ });
  const attached = await page.request.get((await attachment.getAttribute("href"))!);
  expect(attached.headers()["content-type"]).toBe("application/pdf");
  expect(Buffer.compare(await attached.body(), pdf)).toBe(0);

  // Whoever holds the receipt can check its code.
  const code = receiptBody.match(/Verification code: (\S+)/)![1];
  await page.goto(`/receipts/verify?code=${code}`);
  await expect(page.getByRole("status")).toContainText("Genuine");
  await expect(page.getByTestId("verified-amount")).toHaveText("$125.00");
});
