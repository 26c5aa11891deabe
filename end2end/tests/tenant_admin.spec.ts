import { expect, newWorld, ready, receiver, signIn, test } from "./support";

test("an owner creates a key, sees it once, revokes it with a reason, and tests a webhook", async ({ page }, testInfo) => {
  // A tenant of this test alone: no other test's payments reach this endpoint.
  const world = await newWorld(testInfo);
  await signIn(page, testInfo, world.owner);
  await expect(page).toHaveURL(/\/tenant$/);

  await page.getByRole("link", { name: "API keys" }).click();
  await expect(page.getByRole("heading", { name: "API keys" })).toBeVisible();
  // A new tenant's empty states say what to do first.
  await expect(page.getByTestId("no-keys")).toContainText("Create a test key");
  await ready(page, testInfo);
  await page.getByLabel("Mode").selectOption("test");
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = (await page.getByTestId("new-secret").first().textContent())!.trim();
  expect(secret).toMatch(/^rmt_test_\w{12}_\w{32}$/);

  // The key works against the API, and is never shown again.
  const whoami = await page.request.get("/api/v1/tenant", { headers: { Authorization: `Bearer ${secret}` } });
  expect(whoami.status()).toBe(200);
  await page.reload();
  await expect(page.getByTestId("new-secret")).toHaveCount(0);
  await expect(page.locator("body")).not.toContainText(secret);
  const masked = page.getByTestId("masked-key").first();
  await expect(masked).toContainText(secret.slice(-4));

  await ready(page, testInfo);
  const row = page.getByRole("row").filter({ has: page.getByTestId("masked-key") }).first();
  await row.getByLabel("Reason").fill("Rotating after the demo");
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(page.getByTestId("api-keys")).toContainText("Rotating after the demo");
  const refused = await page.request.get("/api/v1/tenant", { headers: { Authorization: `Bearer ${secret}` } });
  expect(refused.status()).toBe(401);

  let signingSecret = "";
  const endpoint = await receiver(() => signingSecret);
  try {
    await page.getByRole("link", { name: "Webhooks" }).click();
    await expect(page.getByTestId("no-endpoint")).toContainText("signing secret once");
    await ready(page, testInfo);
    await page.getByLabel("HTTPS URL").fill(endpoint.url);
    await page.getByLabel("Mode").selectOption("test");
    await page.getByRole("button", { name: "Add endpoint" }).click();
    signingSecret = (await page.getByTestId("webhook-secret").textContent())!.trim();
    expect(signingSecret).toMatch(/^whsec_/);
    await expect(page.getByTestId("endpoint-url")).toHaveText(endpoint.url);
    await ready(page, testInfo);
    await page.getByRole("button", { name: "Send test event" }).click();
    await expect(page.getByTestId("test-result")).toContainText(/Test delivered: HTTP 200, \d+ ms/);
    // Remit follows a test that was taken with a copy signed with a wrong secret, which this
    // receiver refuses: the page says the endpoint checks signatures.
    await expect(page.getByTestId("test-result")).toContainText("it checks signatures");
    expect(endpoint.received).toEqual([
      { type: "remit.test", verified: true },
      { type: "remit.test", verified: false },
    ]);
  } finally {
    endpoint.close();
  }

  await page.getByRole("link", { name: "Audit log" }).click();
  await expect(page.getByTestId("audit-log")).toContainText("Rotating after the demo");
});

test("an owner deactivates a consultant, who is signed out and refused", async ({ page, browser }, testInfo) => {
  const world = await newWorld(testInfo);
  const consultant = await browser.newPage();
  await signIn(consultant, testInfo, world.consultant);
  await expect(consultant).toHaveURL(/\/dashboard$/);

  await signIn(page, testInfo, world.owner);
  await page.getByRole("link", { name: "People" }).click();
  await ready(page, testInfo);
  const row = page.getByTestId("people").getByRole("row").filter({ hasText: world.consultant.email });
  await row.getByRole("button", { name: "Deactivate" }).click();
  await expect(row).toContainText("Deactivated");
  const refused = await consultant.goto("/dashboard");
  expect(refused?.status()).toBe(401);
  await signIn(consultant, testInfo, world.consultant);
  await expect(consultant.getByRole("alert")).toContainText("deactivated");
  await consultant.close();

  await ready(page, testInfo);
  await row.getByRole("button", { name: "Reactivate" }).click();
  await expect(row).toContainText("Active");
  await page.getByRole("link", { name: "Audit log" }).click();
  await expect(page.getByTestId("audit-log")).toContainText("user.deactivated");
});
