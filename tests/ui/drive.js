// Drives the Prefect V2 UI: Deployments -> backfill -> Run -> Custom run -> fill start/end and
// retrain -> Submit. Prints {"flow_run_id": ...} on stdout; screenshots go to SHOT_DIR.
// usage: node drive.js <base url> <start yyyy-MM-dd> <end yyyy-MM-dd> <retrain> <shot dir>
const { chromium } = require("playwright-core");
const fs = require("fs");
const os = require("os");
const path = require("path");

const [base, start, end, retrain, shots] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "drpo-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, viewport: { width: 1440, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] || (await context.newPage());
  await page.route("**/*amplitude.com/**", (r) => r.abort());  // UI telemetry config, offline
  const shot = async (name) => page.screenshot({ path: path.join(shots, name), fullPage: true });
  try {
    await page.goto(base + "/", { waitUntil: "networkidle" });
    await page.getByRole("link", { name: "Deployments", exact: true }).click();
    const link = page.locator('a[href*="/deployments/deployment/"]', { hasText: "backfill" })
      .first();
    await link.waitFor({ timeout: 30000 });
    await page.waitForLoadState("networkidle");
    await shot("1-deployments.png");
    await link.click();
    await page.waitForLoadState("networkidle");
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.getByRole("menuitem", { name: "Custom run" }).click();
    await page.getByLabel("start", { exact: true }).waitFor({ timeout: 30000 });
    await page.locator('[data-slot="skeleton"]').first().waitFor({ state: "detached" })
      .catch(() => {});
    await shot("2-custom-run-form.png");
    for (const [label, value] of [["start", start], ["end", end]]) {
      await page.getByLabel(label, { exact: true }).click();
      const dialog = page.getByRole("dialog");
      await dialog.getByLabel("Date (yyyy-MM-dd)").fill(value);
      await dialog.getByLabel("Date (yyyy-MM-dd)").press("Enter");
      // Some UI builds keep the popover open after Enter (the value is already set): close it.
      await dialog.waitFor({ state: "hidden", timeout: 1500 }).catch(async () => {
        await page.keyboard.press("Escape");
        await dialog.waitFor({ state: "hidden" });
      });
    }
    await page.getByLabel("Select retrain").click();
    await page.getByRole("option", { name: retrain, exact: true }).click();
    await page.getByRole("listbox").waitFor({ state: "hidden" }).catch(() => {});
    await shot("3-filled-form.png");
    const created = page.waitForResponse(
      (r) => r.url().includes("/create_flow_run") && r.request().method() === "POST");
    await page.getByRole("button", { name: "Submit", exact: true }).click();
    const response = await created;
    const body = await response.json();
    await page.waitForLoadState("networkidle");
    await shot("4-submitted.png");
    process.stdout.write(JSON.stringify({ flow_run_id: body.id, status: response.status(),
                                          parameters: body.parameters }) + "\n");
    if (process.env.WAIT_RUN_PAGE) {
      await page.goto(`${base}/v2/runs/flow-run/${body.id}`, { waitUntil: "networkidle" });
      await shot("5-flow-run.png");
    }
  } catch (err) {
    await shot("error.png").catch(() => {});
    console.error(err);
    process.exitCode = 1;
  } finally {
    await context.close();
  }
})();
