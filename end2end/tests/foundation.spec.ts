import { demoAccount, expect, hydrated, newWorld, openCountingCode, ready, signIn, test } from "./support";

test("a consultant signs in, sees the dashboard and signs out", async ({ page }, testInfo) => {
  const world = await newWorld(testInfo);
  await signIn(page, testInfo, world.consultant);
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole("heading", { name: `Welcome, ${world.consultant.name}` })).toBeVisible();
  await expect(page.getByTestId("tenant-name")).toHaveText(world.tenant);
  await expect(page.getByTestId("signed-in-as")).toContainText("Consultant");
  await expect(page.getByRole("cell", { name: world.family.name })).toBeVisible();
  await ready(page, testInfo);

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/sign-in\?signed_out=1$/);
  await expect(page.getByText("You are signed out.")).toBeVisible();
  const response = await page.goto("/dashboard");
  expect(response?.status()).toBe(401);
  await expect(page.getByRole("heading", { name: "Sign in required" })).toBeVisible();
});

test("a wrong password shows an error and keeps the visitor signed out", async ({ page }, testInfo) => {
  const world = await newWorld(testInfo);
  await signIn(page, testInfo, world.consultant, "not the password");
  await expect(page.getByRole("alert")).toHaveText("The email or password is incorrect.");
  await expect(page).toHaveURL(/\/sign-in/);
  const response = await page.goto("/dashboard");
  expect(response?.status()).toBe(401);
});

test("empty fields are named in the error", async ({ page }, testInfo) => {
  await page.goto("/sign-in");
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("Enter your email address.");
});

test("a family member may look but is refused a consultant-only action", async ({ page }, testInfo) => {
  const world = await newWorld(testInfo);
  await signIn(page, testInfo, world.family);
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole("heading", { name: `${world.consultant.name}'s household` })).toBeVisible();
  await expect(page.getByRole("button", { name: "Send invitation" })).toHaveCount(0);

  // Even posting the consultant's form directly is refused.
  const refused = await page.request.post("/rpc/invite_family_member", {
    form: { email: `cousin-${world.id}@e2e.example`, display_name: "Cousin" },
    headers: { Origin: new URL(page.url()).origin, Accept: "application/json" },
  });
  expect(refused.status()).toBe(403);
  expect((await refused.json()).message).toBe("You do not have access to this.");

  const settings = await page.goto("/settings");
  expect(settings?.status()).toBe(403);
  await expect(page.getByRole("heading", { name: "No access" })).toBeVisible();
});

test("a person changes their password and signs out their other sessions", async ({ page, browser }, testInfo) => {
  const world = await newWorld(testInfo);
  // A second device.
  const other = await browser.newPage();
  await signIn(other, testInfo, world.admin);
  await expect(other).toHaveURL(/\/tenant$/);

  await signIn(page, testInfo, world.admin);
  await expect(page).toHaveURL(/\/tenant$/);
  await page.getByRole("link", { name: world.admin.name }).click();
  await expect(page.getByRole("heading", { name: "Your account" })).toBeVisible();
  await expect(page.getByTestId("sessions").getByRole("row")).toHaveCount(3);
  await ready(page, testInfo);
  await page.getByLabel("Current password").fill(world.admin.password);
  await page.getByLabel("New password", { exact: true }).fill("password1234");
  await page.getByLabel("New password again").fill("password1234");
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByRole("alert").first()).toContainText("too easy to guess");
  const fresh = `${world.admin.password}-renewed`;
  await ready(page, testInfo);
  await page.getByLabel("Current password").fill(world.admin.password);
  await page.getByLabel("New password", { exact: true }).fill(fresh);
  await page.getByLabel("New password again").fill(fresh);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByRole("status")).toContainText("Your password is changed");
  await expect(page.getByTestId("sessions").getByRole("row")).toHaveCount(2);
  const signedOut = await other.goto("/tenant");
  expect(signedOut?.status()).toBe(401);
  await other.close();
});

test("the app hydrates only when JavaScript runs", async ({ page }, testInfo) => {
  await page.goto("/forgot-password");
  if (hydrated(testInfo)) {
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  } else {
    await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
  }
  expect(demoAccount("Platform admin").email).toBe("admin@remit.localhost");
});

test("sign-in comes without the wasm app and still signs in", async ({ page }, testInfo) => {
  test.skip(!hydrated(testInfo), "counts what a browser with JavaScript downloads");
  const world = await newWorld(testInfo);
  const code = await openCountingCode(page, "/sign-in");
  expect(code.files, "sign-in's code").toEqual(["/plain.js"]);
  expect(code.bytes).toBeLessThanOrEqual(250_000);
  await expect(page.locator("body")).toHaveAttribute("data-enhanced", "true");
  await page.getByLabel("Email").fill(world.consultant.email);
  await page.getByLabel("Password").fill(world.consultant.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  // The signed-in app hydrates from here on.
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
});
