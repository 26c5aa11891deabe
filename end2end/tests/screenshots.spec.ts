import type { Locator, Page, TestInfo } from "@playwright/test";
import { connectAndRegisterWin, expect, linkInMail, newWorld, ready, signIn, test, type Account, type Role, type World } from "./support";

/** Everything that changes from run to run is made the same before a picture is taken: this
 * test's id, digits (amounts, dates, counts) and month and day names. What remains is layout and
 * styling, which is what the pictures guard. */
async function steady(page: Page, world: World) {
  await page.evaluate((id) => {
    const months =
      /\b(January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b/g;
    const days = /\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b/g;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      node.nodeValue = node
        .nodeValue!.split(id)
        .join("xxxxxxxx")
        .replace(/[0-9]/g, "0")
        .replace(months, "Mon")
        .replace(days, "Day");
    }
  }, world.id);
}

/** A picture of the page as it is first seen, against the stored reference (a small tolerance
 * for anti-aliasing): a page that loses its styling differs in far more than 1 % of its pixels. */
async function looksRight(
  page: Page,
  testInfo: TestInfo,
  world: World,
  name: string,
  options: { mask?: Locator[]; upTo?: Locator } = {},
) {
  await ready(page, testInfo);
  // The page's lazily loaded code and data have arrived, fonts are in.
  await page.waitForLoadState("networkidle");
  await page.evaluate(() => document.fonts.ready);
  await steady(page, world);
  const end = options.upTo && (await options.upTo.boundingBox());
  const clip = end ? { x: 0, y: 0, width: 1280, height: Math.ceil(end.y + end.height) } : undefined;
  await expect(page).toHaveScreenshot(`${name}.png`, {
    mask: options.mask ?? [],
    clip,
    animations: "disabled",
    maxDiffPixelRatio: 0.01,
  });
}

async function home(page: Page, testInfo: TestInfo, who: Account | Role, url: RegExp) {
  await page.context().clearCookies();
  await signIn(page, testInfo, who);
  await expect(page).toHaveURL(url);
}

test("each role's home page and the buyer's payment page look as they should", async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  const world = await newWorld(testInfo);

  await home(page, testInfo, world.owner, /\/tenant$/);
  await looksRight(page, testInfo, world, "tenant-owner");
  await home(page, testInfo, world.admin, /\/tenant$/);
  await looksRight(page, testInfo, world, "tenant-admin");
  await home(page, testInfo, world.consultant, /\/dashboard$/);
  await looksRight(page, testInfo, world, "consultant");
  await home(page, testInfo, world.family, /\/dashboard$/);
  await looksRight(page, testInfo, world, "family-member");
  // The platform's figures include every other test's tenants: the picture ends with the head
  // of the tenants' table.
  await home(page, testInfo, "Platform admin", /\/admin$/);
  await looksRight(page, testInfo, world, "platform-admin", { upTo: page.getByTestId("tenant-health").locator("thead") });

  // The buyer's page, from a win this test registers.
  await home(page, testInfo, world.owner, /\/tenant$/);
  const buyer = `buyer-${world.id}@e2e.example`;
  await connectAndRegisterWin(page, testInfo, { reference: `LOOK-${world.id}`, lot: "7", buyer });
  await page.context().clearCookies();
  await page.goto(await linkInMail(buyer, /https?:\/\/\S+\/pay\//));
  await expect(page.getByTestId("amount")).toHaveText("$125.00");
  await looksRight(page, testInfo, world, "buyer-payment", { mask: [page.getByTestId("countdown")] });
});
