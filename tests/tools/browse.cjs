// Open a local HTML file in headless Chromium (playwright-core driving the system's chromium),
// report console errors, page errors and which CSS selectors are present, and take a screenshot.
// Usage: NODE_PATH=<node_modules holding playwright-core> node browse.cjs PAGE SCREENSHOT SELECTOR...
// Prints JSON: {"errors": [...], "present": {selector: count}, "title": "..."}.
const { chromium } = require("playwright-core");

(async () => {
  const [page_path, screenshot, ...selectors] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("requestfailed", (request) => errors.push(`request failed: ${request.url()}`));
  await page.goto("file://" + page_path, { waitUntil: "load" });
  const present = {};
  for (const selector of selectors) present[selector] = await page.locator(selector).count();
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ errors, present, title: await page.title() }));
  await browser.close();
})().catch((error) => { console.error(error); process.exit(2); });
