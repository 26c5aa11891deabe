import { readFileSync } from "node:fs";
import { expect, type Page, type TestInfo } from "@playwright/test";

export type Role = "Platform admin" | "Tenant owner" | "Tenant admin" | "Consultant" | "Family member";

/** The demo accounts the server printed at start (development mode). */
export function demoAccount(role: Role): { email: string; password: string } {
  const log = readFileSync(process.env.REMIT_SERVER_LOG!, "utf8");
  const line = log.split("\n").find((l) => l.trimStart().startsWith(role + " "));
  if (!line) throw new Error(`the server log has no demo account for ${role}`);
  const [email, password] = line.trim().slice(role.length).trim().split(/\s+/);
  return { email, password };
}

export function hydrated(testInfo: TestInfo): boolean {
  return testInfo.project.name === "hydrated";
}

/** With JavaScript, waits until the page is hydrated, so clicks go through Leptos. */
export async function ready(page: Page, testInfo: TestInfo) {
  if (hydrated(testInfo)) {
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  }
}

export async function signIn(page: Page, testInfo: TestInfo, role: Role, password?: string) {
  const account = demoAccount(role);
  await page.goto("/sign-in");
  await ready(page, testInfo);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(password ?? account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
}
