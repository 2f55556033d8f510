// Walk a landscape site (`reconciler site`) in headless Chromium (playwright-core driving the system's
// chromium) as a person would, and measure what it draws.
// Usage: NODE_PATH=<node_modules holding playwright-core> node site.cjs SITE SHOTS QUERY OBJECT PAGE...
//   SITE: the site's folder; SHOTS: a folder for screenshots; QUERY: typed into the search box on the
//   index, the first hit opened with the keyboard; OBJECT: its page opened, and the first edge of its
//   picture that leaves it followed by a click; PAGE...: pages (relative to SITE) whose pictures are
//   measured and whose headings are listed.
// Prints JSON: {"errors", "search", "followed", "pages": {page: {"title", "loaded_ms", "headings", "pictures",
//   "column_rows", "said"}},
//   "keyboard"}; each picture: {"boxes", "edges", "overlaps", "loose", "outside", "through", "cut",
//   "drawn": {"ids", "labels", "pairs"}}.
const { chromium } = require("playwright-core");
const path = require("path");

// In the page: every picture's boxes and edges, and what is wrong with them.
function measure() {
  const near = (a, b) => Math.abs(a - b) <= 1.5;
  const inside = (p, r, margin) => p.x > r.x + margin && p.x < r.x + r.width - margin &&
    p.y > r.y + margin && p.y < r.y + r.height - margin;
  const onBorder = (p, r) => (p.x >= r.x - 1.5 && p.x <= r.x + r.width + 1.5 && p.y >= r.y - 1.5 &&
    p.y <= r.y + r.height + 1.5) && (near(p.x, r.x) || near(p.x, r.x + r.width) || near(p.y, r.y) ||
    near(p.y, r.y + r.height));
  return Array.from(document.querySelectorAll("svg")).filter((svg) => svg.querySelector("g.node")).map((svg) => {
    const view = svg.viewBox.baseVal;
    const boxes = Object.create(null);   // a box may be named __proto__
    const cut = [];
    svg.querySelectorAll("g.node").forEach((node) => {
      const rect = node.querySelector("rect");
      boxes[node.dataset.id] = { x: rect.x.baseVal.value, y: rect.y.baseVal.value, width: rect.width.baseVal.value,
        height: rect.height.baseVal.value };
      const text = node.querySelector("text");
      const drawn = text.getBBox();
      if (text.textContent.endsWith("…") ||
          drawn.x + drawn.width > boxes[node.dataset.id].x + boxes[node.dataset.id].width) cut.push(node.dataset.id);
    });
    const ids = Object.keys(boxes);
    const overlaps = [];
    for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) {
      const a = boxes[ids[i]], b = boxes[ids[j]];
      if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height)
        overlaps.push([ids[i], ids[j]]);
    }
    const loose = [], outside = [], through = [];
    const edges = Array.from(svg.querySelectorAll("path.edge"));
    edges.forEach((edge) => {
      const from = boxes[edge.dataset.from], to = boxes[edge.dataset.to];
      const length = edge.getTotalLength();
      const points = [];
      for (let at = 0; at <= length; at += 4) points.push(edge.getPointAtLength(at));
      points.push(edge.getPointAtLength(length));
      const label = edge.dataset.from + " -> " + edge.dataset.to;
      if (!from || !to || !onBorder(points[0], from) || !onBorder(points[points.length - 1], to)) loose.push(label);
      if (points.some((p) => p.x < view.x || p.y < view.y || p.x > view.x + view.width || p.y > view.y + view.height))
        outside.push(label);
      if (points.some((p) => ids.some((id) => inside(p, boxes[id], 2)))) through.push(label);
    });
    return { boxes: ids.length, edges: edges.length, overlaps, loose, outside, through, cut,
      drawn: { ids, labels: ids.map((id) => svg.querySelector(`g.node[data-id="${CSS.escape(id)}"] text`).textContent),
        pairs: edges.map((edge) => [edge.dataset.from, edge.dataset.to]) } };
  });
}

(async () => {
  const [site, shots, query, object, ...pages] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("requestfailed", (request) => errors.push(`request failed: ${request.url()}`));
  page.on("dialog", (dialog) => { errors.push(`a script ran: ${dialog.message()}`); dialog.dismiss(); });
  const open = (relative) => page.goto("file://" + path.join(site, relative), { waitUntil: "load" });
  const result = { errors, pages: {} };

  // search: type, walk down to the first hit with the keyboard, open it (QUERY "" skips this and the next two)
  if (query) {
    await open("index.html");
    await page.locator("#search").focus();
    await page.keyboard.type(query);
    await page.locator("#hits a").first().waitFor();   // the index loads when the box first has focus
    const hits = await page.locator("#hits a").allTextContents();
    await page.keyboard.press("ArrowDown");
    const focused = await page.evaluate(() => document.activeElement.textContent);
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    const target = decodeURIComponent(new URL(page.url()).hash.slice(1));
    result.search = { hits, focused, opened: path.basename(new URL(page.url()).pathname), title: await page.title(),
      target: await page.locator(`[id="${target}"]`).count() ? target : null };
    await page.screenshot({ path: path.join(shots, "search-hit.png"), fullPage: false });

    // an object's picture: follow the first edge leaving it to the next object
    await open(`objects/${encodeURIComponent(object)}.html`);
    const next = await page.evaluate((id) => {
      const edge = Array.from(document.querySelectorAll("#lineage path.edge")).find((e) => e.dataset.from === id);
      return edge ? edge.dataset.to : null;
    }, object);
    if (next) {
      const box = page.locator(`#lineage g.node[data-id="${next}"]`);
      await Promise.all([page.waitForNavigation(), box.click()]);
      result.followed = { edge: [object, next], h1: await page.locator("h1").textContent() };
    } else result.followed = { edge: null };

    // keyboard: the first Tab reaches the skip link, which moves focus to the main content
    await open("index.html");
    await page.keyboard.press("Tab");
    const first = await page.evaluate(() => document.activeElement.textContent);
    await page.keyboard.press("Enter");
    result.keyboard = { first, hash: new URL(page.url()).hash };
  }

  for (const relative of pages) {
    await open(relative);
    result.pages[relative] = {
      title: await page.title(),
      loaded_ms: await page.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd),
      headings: await page.evaluate(() => Array.from(document.querySelectorAll("h1, h2, h3, h4"))
        .map((h) => Number(h.tagName[1]))),
      pictures: await page.evaluate(measure),
      column_rows: await page.evaluate(() => document.querySelectorAll("#columns tbody tr").length),
      said: await page.evaluate(() => (document.getElementById("around") || {}).textContent || null),
    };
    await page.screenshot({ path: path.join(shots, relative.replace(/[\/%?&=]/g, "_") + ".png"), fullPage: true });
  }
  console.log(JSON.stringify(result));
  await browser.close();
})().catch((error) => { console.error(error); process.exit(2); });
