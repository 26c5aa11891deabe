import { defineConfig } from "@playwright/test";

// The server is started by run.sh, which sets REMIT_BASE_URL and REMIT_SERVER_LOG.
const baseURL = process.env.REMIT_BASE_URL;
if (!baseURL) {
  throw new Error("REMIT_BASE_URL is not set: run the end-to-end tests with `make e2e` (end2end/run.sh)");
}

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "off",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
      ],
    },
  },
  projects: [
    { name: "hydrated", use: { javaScriptEnabled: true } },
    { name: "no-javascript", use: { javaScriptEnabled: false } },
  ],
});
