import { expect, test } from "@playwright/test";
import { demoAccount, hydrated, ready, signIn } from "./support";

test("a consultant signs in, sees the dashboard and signs out", async ({ page }, testInfo) => {
  await signIn(page, testInfo, "Consultant");
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole("heading", { name: "Welcome, Casey Consultant" })).toBeVisible();
  await expect(page.getByTestId("tenant-name")).toHaveText("Northwind Auctions");
  await expect(page.getByTestId("signed-in-as")).toContainText("Consultant");
  await expect(page.getByRole("cell", { name: "Frankie Family" })).toBeVisible();
  await ready(page, testInfo);

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/sign-in\?signed_out=1$/);
  await expect(page.getByText("You are signed out.")).toBeVisible();
  const response = await page.goto("/dashboard");
  expect(response?.status()).toBe(401);
  await expect(page.getByRole("heading", { name: "Sign in required" })).toBeVisible();
});

test("a wrong password shows an error and keeps the visitor signed out", async ({ page }, testInfo) => {
  await signIn(page, testInfo, "Consultant", "not the password");
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
  await signIn(page, testInfo, "Family member");
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole("heading", { name: "Casey Consultant's household" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Send invitation" })).toHaveCount(0);

  // Even posting the consultant's form directly is refused.
  const refused = await page.request.post("/rpc/invite_family_member", {
    form: { email: "cousin@example.com", display_name: "Cousin" },
    headers: { Origin: new URL(page.url()).origin, Accept: "application/json" },
  });
  expect(refused.status()).toBe(403);
  expect((await refused.json()).message).toBe("You do not have access to this.");

  const settings = await page.goto("/settings");
  expect(settings?.status()).toBe(403);
  await expect(page.getByRole("heading", { name: "No access" })).toBeVisible();
});

test("the page hydrates only when JavaScript runs", async ({ page }, testInfo) => {
  await page.goto("/sign-in");
  if (hydrated(testInfo)) {
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  } else {
    await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
  }
  expect(demoAccount("Consultant").email).toBe("consultant@northwind.example");
});
