// Headless Chromium for tests/browser.rs: one browser with a fresh profile,
// driven by one JSON command per line on stdin, answering one JSON line on
// stdout per command. The test asserts; this script only observes.
//
//   node load-site.mjs CHROMIUM USER_DATA_DIR [HOST_RESOLVER_RULES]
//   {"visit": URL, "screenshot": PATH|null}  -> what the page loaded and shows
//   {"quit": true}                            -> {"quit": true}, then exit
//
// End of input (the test process is gone) closes the browser and removes
// the profile, so nothing outlives the test.

import { rmSync } from "node:fs";
import readline from "node:readline";
import { chromium } from "playwright-core";

const [executablePath, userDataDir, hostRules] = process.argv.slice(2);
if (!executablePath || !userDataDir) {
  console.error("usage: node load-site.mjs CHROMIUM USER_DATA_DIR [HOST_RESOLVER_RULES]");
  process.exit(2);
}

// A clock far from the real one: the page's script stamps the year into the
// footer, which shows that it ran.
const FIXED_NOW = new Date("2031-06-15T12:00:00Z");

const args = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
  "--no-proxy-server",
  "--font-render-hinting=none",
];
if (hostRules) {
  args.push(`--host-resolver-rules=${hostRules}`);
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args,
  viewport: { width: 1280, height: 900 },
  deviceScaleFactor: 1,
  locale: "en-US",
  timezoneId: "UTC",
  serviceWorkers: "block",
});

let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  try {
    await context.close();
  } catch {}
  try {
    rmSync(userDataDir, { recursive: true, force: true });
  } catch {}
  process.exit(code);
}

async function visit(url, screenshot) {
  const page = await context.newPage();
  await page.clock.setFixedTime(FIXED_NOW);
  const responses = [];
  const failed = [];
  const consoleErrors = [];
  const pageErrors = [];
  page.on("response", (r) => {
    responses.push({
      url: r.url(),
      status: r.status(),
      resourceType: r.request().resourceType(),
      headers: r.headers(),
    });
  });
  page.on("requestfailed", (r) => {
    failed.push({ url: r.url(), error: r.failure()?.errorText ?? "unknown" });
  });
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => pageErrors.push(String(e)));

  const main = await page.goto(url, { waitUntil: "networkidle", timeout: 30000 });
  // What the page itself loaded, before the checks below fetch anything.
  const pageResponses = responses.slice();
  const pageFailed = failed.slice();

  const facts = await page.evaluate(async () => {
    await document.fonts.ready;
    const images = [...document.images].map((i) => ({
      src: i.currentSrc || i.src,
      complete: i.complete,
      naturalWidth: i.naturalWidth,
    }));
    // Every image a stylesheet puts in a background, pseudo-elements too.
    const backgrounds = new Set();
    for (const el of document.querySelectorAll("*")) {
      for (const pseudo of [null, "::before", "::after"]) {
        const bg = getComputedStyle(el, pseudo).backgroundImage;
        for (const m of bg.matchAll(/url\("([^"]*)"\)/g)) backgrounds.add(m[1]);
      }
    }
    const sheets = [];
    const walk = (sheet) => {
      let rules = -1;
      try {
        rules = sheet.cssRules.length;
      } catch {}
      sheets.push({ href: sheet.href, rules });
      for (const rule of rules > 0 ? sheet.cssRules : []) {
        if (rule.styleSheet) walk(rule.styleSheet);
      }
    };
    for (const sheet of document.styleSheets) walk(sheet);

    const fetchStatus = async (u) => {
      try {
        const r = await fetch(u, { cache: "no-store" });
        return { url: u, status: r.status, contentType: r.headers.get("content-type") };
      } catch (e) {
        return { url: u, status: 0, error: String(e) };
      }
    };
    // The source map of each script, fetched as developer tools would.
    const scripts = [...document.scripts].map((s) => s.src).filter(Boolean);
    const maps = [];
    for (const src of scripts) {
      const text = await (await fetch(src)).text();
      const m = text.match(/\/\/# sourceMappingURL=(\S+)\s*$/);
      if (!m) {
        maps.push({ script: src, map: null });
        continue;
      }
      const mapUrl = new URL(m[1], src).href;
      const r = await fetch(mapUrl);
      let version = null;
      let file = null;
      try {
        ({ version, file } = await r.json());
      } catch {}
      maps.push({ script: src, map: mapUrl, status: r.status, version, file });
    }
    // Every same-site URL a visitor or the browser can follow from here,
    // and the icons of the web app manifest.
    const here = new URL(location.href);
    const urls = new Set();
    for (const el of document.querySelectorAll("[href], [src], [srcset]")) {
      const values = [el.getAttribute("href"), el.getAttribute("src")];
      for (const c of (el.getAttribute("srcset") ?? "").split(",")) {
        values.push(c.trim().split(/\s+/)[0]);
      }
      for (const v of values) {
        if (!v) continue;
        const u = new URL(v, document.baseURI);
        if (u.origin !== here.origin) continue;
        u.hash = "";
        urls.add(u.href);
      }
    }
    const links = await Promise.all([...urls].sort().map(fetchStatus));
    const manifestIcons = [];
    const manifestLink = document.querySelector('link[rel="manifest"]');
    if (manifestLink) {
      const r = await fetch(manifestLink.href);
      const m = await r.json();
      for (const icon of m.icons ?? []) {
        manifestIcons.push(await fetchStatus(new URL(icon.src, manifestLink.href).href));
      }
    }
    return {
      title: document.title,
      h1: document.querySelector("h1")?.textContent.trim() ?? null,
      year: document.querySelector("[data-year]")?.textContent ?? null,
      images,
      backgrounds: [...backgrounds].sort(),
      fontsStatus: document.fonts.status,
      fonts: [...document.fonts].map((f) => ({ family: f.family, status: f.status })),
      interRenders: document.fonts.check('16px "Inter"'),
      sheets,
      maps,
      links,
      manifestIcons,
    };
  });
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  await page.close();
  return {
    url,
    finalUrl: main?.url() ?? null,
    status: main?.status() ?? null,
    responses: pageResponses,
    failed: pageFailed,
    consoleErrors,
    pageErrors,
    facts,
  };
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("close", () => shutdown(0));
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const cmd = JSON.parse(line);
    if (cmd.quit) {
      process.stdout.write(JSON.stringify({ quit: true }) + "\n");
      await shutdown(0);
    }
    answer = await visit(cmd.visit, cmd.screenshot ?? null);
  } catch (e) {
    answer = { error: String(e?.stack ?? e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
