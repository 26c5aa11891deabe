import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { test as base, expect, request as playwrightRequest, type APIRequestContext, type Page, type TestInfo } from "@playwright/test";

export { expect };

export type Role = "Platform admin" | "Tenant owner" | "Tenant admin" | "Consultant" | "Family member";

/** The demo accounts the server printed at start (development mode). Only the platform admin is
 * used by the tests: everything else each test makes for itself. */
export function demoAccount(role: Role): { email: string; password: string } {
  const log = readFileSync(process.env.REMIT_SERVER_LOG!, "utf8");
  const line = log.split("\n").find((l) => l.trimStart().startsWith(role + " "));
  if (!line) throw new Error(`the server log has no demo account for ${role}`);
  const [email, password] = line.trim().slice(role.length).trim().split(/\s+/);
  return { email, password };
}

/** Every page fails its test on a Content-Security-Policy violation (or an uncaught error), so
 * hydration and Stripe's Connect.js are proven to work under the policy. */
export const test = base.extend<{ cspViolations: string[] }>({
  cspViolations: [
    async ({ page }, use) => {
      const violations: string[] = [];
      page.on("console", (message) => {
        const text = message.text();
        if (message.type() === "error" && /Content Security Policy|Refused to (execute|load|apply|frame|connect)/i.test(text)) {
          violations.push(text);
        }
      });
      page.on("pageerror", (error) => {
        if (/Content Security Policy/i.test(error.message)) violations.push(error.message);
      });
      await use(violations);
      expect(violations, "Content-Security-Policy violations in Chromium's console").toEqual([]);
    },
    { auto: true },
  ],
});

export function hydrated(testInfo: TestInfo): boolean {
  return testInfo.project.name === "hydrated";
}

/** With JavaScript, waits until the page's code has run, so clicks go through it: the wasm app's
 * hydration, or on the pages the server sends without the app (the buyer's and sign-in), their
 * small script. */
export async function ready(page: Page, testInfo: TestInfo) {
  if (hydrated(testInfo)) {
    await expect(page.locator('body[data-hydrated="true"], body[data-enhanced="true"]')).toHaveCount(1);
  }
}

/** Opens `url` and adds up the code the browser downloaded for the page until the network is
 * quiet, from the page's own resource timings: every script and wasm module, in bytes as
 * decoded (uncompressed, so no less than their brotli size). */
export async function openCountingCode(page: Page, url: string): Promise<{ bytes: number; files: string[] }> {
  await page.goto(url);
  await page.waitForLoadState("networkidle");
  const files = await page.evaluate(() =>
    (performance.getEntriesByType("resource") as PerformanceResourceTiming[])
      .map((entry) => ({ path: new URL(entry.name).pathname, bytes: entry.decodedBodySize }))
      .filter((entry) => entry.path.endsWith(".js") || entry.path.endsWith(".wasm")),
  );
  return { bytes: files.reduce((sum, f) => sum + f.bytes, 0), files: files.map((f) => f.path) };
}

export interface Account {
  email: string;
  password: string;
  name: string;
}

export async function signIn(page: Page, testInfo: TestInfo, who: Account | Role, password?: string) {
  const account = typeof who === "string" ? demoAccount(who) : who;
  await page.goto("/sign-in");
  await ready(page, testInfo);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(password ?? account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

const baseURL = () => process.env.REMIT_BASE_URL!;

/** An API client that calls server functions the way the hydrated app does, with its own cookies. */
async function client(): Promise<APIRequestContext> {
  return playwrightRequest.newContext({ baseURL: baseURL(), extraHTTPHeaders: { Origin: baseURL(), Accept: "application/json" } });
}

async function rpc(api: APIRequestContext, name: string, form: Record<string, string>) {
  const response = await api.post(`/rpc/${name}`, { form });
  if (!response.ok()) throw new Error(`${name}: ${response.status()} ${await response.text()}`);
  return response.text();
}

/** The platform admin's API client, signed in. */
export async function adminApi(): Promise<APIRequestContext> {
  const api = await client();
  const admin = demoAccount("Platform admin");
  await rpc(api, "sign_in", { email: admin.email, password: admin.password });
  return api;
}

/** The link starting with `prefix` in the newest email to `to`, read in the development outbox. */
export async function linkInMail(to: string, prefix: RegExp): Promise<string> {
  const api = await adminApi();
  try {
    for (let tries = 0; tries < 100; tries++) {
      const emails = JSON.parse(await rpc(api, "outbox", { to })) as { id: string }[];
      for (const email of emails) {
        const view = JSON.parse(await rpc(api, "outbox_email", { id: email.id })) as { body: string };
        const found = view.body.match(new RegExp(prefix.source + "\\S*"));
        if (found) return found[0];
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no link ${prefix} in mail to ${to}`);
  } finally {
    await api.dispose();
  }
}

/** Accepts the invitation emailed to `email` by choosing a password. */
async function acceptInvitation(email: string, name: string): Promise<Account> {
  const link = await linkInMail(email, /https?:\/\/\S+\/reset-password\?token=/);
  const token = new URL(link).searchParams.get("token")!;
  const password = `e2e-${randomUUID()}`;
  const api = await client();
  try {
    await rpc(api, "choose_password", { token, password, confirmation: password });
  } finally {
    await api.dispose();
  }
  return { email, password, name };
}

/** A tenant of this test alone, with its owner, an admin, a consultant and the consultant's
 * family member, each with a password: no test sees another's people, events or mail. */
export interface World {
  id: string;
  tenant: string;
  owner: Account;
  admin: Account;
  consultant: Account;
  family: Account;
}

export async function newWorld(testInfo: TestInfo): Promise<World> {
  const id = randomUUID().slice(0, 8);
  const tenant = `E2E ${testInfo.project.name} ${id}`;
  const at = (who: string) => `${who}-${id}@e2e.example`;
  const admin = await adminApi();
  try {
    await rpc(admin, "create_tenant", { name: tenant, owner_email: at("owner"), owner_name: `Olivia ${id}` });
  } finally {
    await admin.dispose();
  }
  const owner = await acceptInvitation(at("owner"), `Olivia ${id}`);
  const ownerApi = await client();
  await rpc(ownerApi, "sign_in", { email: owner.email, password: owner.password });
  await rpc(ownerApi, "invite_member", { email: at("admin"), display_name: `Adam ${id}`, role: "tenant_admin" });
  await rpc(ownerApi, "invite_member", { email: at("consultant"), display_name: `Casey ${id}`, role: "consultant" });
  await ownerApi.dispose();
  const tenantAdmin = await acceptInvitation(at("admin"), `Adam ${id}`);
  const consultant = await acceptInvitation(at("consultant"), `Casey ${id}`);
  const consultantApi = await client();
  await rpc(consultantApi, "sign_in", { email: consultant.email, password: consultant.password });
  await rpc(consultantApi, "invite_family_member", { email: at("family"), display_name: `Frankie ${id}` });
  await consultantApi.dispose();
  const family = await acceptInvitation(at("family"), `Frankie ${id}`);
  return { id, tenant, owner, admin: tenantAdmin, consultant, family };
}

/** As the tenant's owner (signed in): connects the tenant to Stripe through the sandbox's OAuth
 * page, then registers a $125.00 win for `buyer`, whom Remit emails a payment link. */
export async function connectAndRegisterWin(page: Page, testInfo: TestInfo, win: { reference: string; lot: string; buyer: string }) {
  await page.goto("/settings/stripe");
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Connect with Stripe" }).click();
  await page.getByRole("button", { name: "Connect my Stripe account" }).click();
  await expect(page.getByTestId("stripe-connection")).toBeVisible();
  await page.goto("/winnings");
  await ready(page, testInfo);
  await page.getByLabel("Your reference").fill(win.reference);
  await page.getByLabel("Auction").fill("Spring sale");
  await page.getByLabel("Lot", { exact: true }).fill(win.lot);
  await page.getByLabel("Buyer's email").fill(win.buyer);
  await page.getByLabel("Amount (e.g. 125.00)").fill("125.00");
  await page.getByRole("button", { name: "Register and email the buyer" }).click();
  await expect(page.getByTestId("winnings")).toContainText(win.reference);
}

/** A tenant's webhook endpoint: records each delivery and whether the official Standard Webhooks
 * library verified it with the secret Remit showed once, and refuses (401) what does not verify. */
export async function receiver(secret: () => string) {
  const received: { type: string; verified: boolean }[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      let verified = true;
      try {
        new Webhook(secret()).verify(body, req.headers as Record<string, string>);
      } catch {
        verified = false;
      }
      received.push({ type: JSON.parse(body).type, verified });
      res.writeHead(verified ? 200 : 401).end(verified ? "ok" : "bad signature");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks`, received, close: () => server.close() };
}
