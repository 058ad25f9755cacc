// roomflow dashboard in a real browser: headless Chromium (Debian's, /usr/bin/chromium or
// $CHROMIUM) driven by Playwright. Readings are generated here, their averages and deltas worked
// out here (independently of roomflow), replayed with `roomflow replay --changes`, and the page
// served by `roomflow dashboard --changes` must show exactly those; an appended change must show
// within a second without a reload, and after the dashboard restarts too; a room's page draws one
// point per window. Ends with a screenshot of the bundled sample's building.
//
// Run by scripts/browser-test.sh (which the README's test command calls); ROOMFLOW_BIN names the
// binary (default target/debug/roomflow).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const binary = process.env.ROOMFLOW_BIN ?? join(root, "target/debug/roomflow");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const screenshots = process.env.ROOMFLOW_SCREENSHOTS ?? join(root, "target/screenshots");
const WINDOW_MS = 60_000;
const START = 1_700_000_000_000;

// ---- the input, and what it must come to, worked out here -------------------------------------

/** Readings of three rooms, two sensors, over three one-minute windows, in event-time order. */
function readings() {
  const rooms = { a1: [21.0, 410], b2: [23.5, 520], c3: [19.25, 450] };
  const out = [];
  for (let i = 0; i < 18; i++) {
    const ts = START + i * 10_000 + 7; // six readings per window, per room and sensor
    for (const [room, [temperature, co2]] of Object.entries(rooms)) {
      // Values in hundredths, so the sums below are exact.
      const t = temperature * 100 + ((i * 37 + room.charCodeAt(0)) % 41) - 20;
      const c = co2 * 100 + ((i * 53 + room.charCodeAt(1)) % 900);
      out.push({ room, sensor: "temperature", ts: ts + room.charCodeAt(1), value: t / 100 });
      out.push({ room, sensor: "co2", ts: ts + room.charCodeAt(1), value: c / 100 });
    }
  }
  return out;
}

/** Per room and sensor: the all-time average, every window's average; per room: the last delta. */
function expected(input) {
  const sensors = new Map();
  const temperatures = new Map();
  for (const r of input) {
    const key = `${r.room}/${r.sensor}`;
    if (!sensors.has(key)) sensors.set(key, { room: r.room, sensor: r.sensor, count: 0, hundredths: 0, windows: new Map() });
    const s = sensors.get(key);
    const h = Math.round(r.value * 100);
    s.count += 1;
    s.hundredths += h;
    const start = Math.floor(r.ts / WINDOW_MS) * WINDOW_MS;
    const w = s.windows.get(start) ?? { count: 0, hundredths: 0 };
    w.count += 1;
    w.hundredths += h;
    s.windows.set(start, w);
    if (r.sensor === "temperature") {
      if (!temperatures.has(r.room)) temperatures.set(r.room, []);
      temperatures.get(r.room).push(r);
    }
  }
  const rooms = new Map();
  for (const s of sensors.values()) {
    if (!rooms.has(s.room)) rooms.set(s.room, { sensors: new Map() });
    const starts = [...s.windows.keys()].sort((a, b) => a - b);
    const latest = s.windows.get(starts[starts.length - 1]);
    rooms.get(s.room).sensors.set(s.sensor, {
      allTime: s.hundredths / 100 / s.count,
      window: latest.hundredths / 100 / latest.count,
      windows: starts.length,
    });
  }
  for (const [room, series] of temperatures) {
    series.sort((a, b) => a.ts - b.ts);
    const [previous, last] = series.slice(-2);
    rooms.get(room).delta = (Math.round(last.value * 100) - Math.round(previous.value * 100)) / 100;
  }
  return rooms;
}

// ---- running roomflow ---------------------------------------------------------------------------

function replay(inputs, out) {
  execFileSync(binary, ["replay", ...inputs, "--out", out, "--changes", "--window", "60s", "--progress", "never"],
    { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ROOMFLOW_LOG: "error" } });
}

/** Starts a dashboard; resolves with it and its address once it says where it listens. */
function dashboard(args) {
  const child = spawn(binary, ["dashboard", ...args], {
    stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ROOMFLOW_LOG: "warn" },
  });
  return new Promise((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      const match = /^roomflow dashboard: (http:\/\/[^ ]+\/)$/.exec(line);
      if (match) resolvePromise({ child, url: match[1] });
      else reject(new Error(`unexpected first line: ${line}`));
    });
    child.once("exit", (code) => reject(new Error(`dashboard exited (${code})`)));
  });
}

function stop(child) {
  return new Promise((resolvePromise) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolvePromise();
    child.once("exit", () => resolvePromise());
    child.kill("SIGKILL");
  });
}

function change(collection, key, data, time) {
  return JSON.stringify({ collection, operation: "upsert", key, data, time }) + "\n";
}

// ---- the tests ----------------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), "roomflow-browser-"));
const input = readings();
const truth = expected(input);
const changes = join(work, "out", "changes.jsonl");
let browser;
let served;

before(async () => {
  writeFileSync(join(work, "readings.jsonl"), input.map((r) => JSON.stringify(r)).join("\n") + "\n");
  replay([join(work, "readings.jsonl")], join(work, "out"));
  served = await dashboard(["--changes", changes, "--listen", "127.0.0.1:0"]);
  browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (served) await stop(served.child);
});

/** A page on the building, with every tile drawn. */
async function buildingPage() {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(served.url);
  await page.waitForFunction((n) => document.querySelectorAll("article.tile").length === n, truth.size);
  return { page, errors };
}

const close = (actual, wanted, what) =>
  assert.ok(Math.abs(actual - wanted) < 1e-9, `${what}: shows ${actual}, expected ${wanted}`);

test("each tile shows the averages and the delta worked out from the input", async () => {
  const { page, errors } = await buildingPage();
  for (const [room, want] of truth) {
    const tile = page.locator(`article.tile[data-room="${room}"]`);
    for (const [sensor, values] of want.sensors) {
      const row = tile.locator(`tr[data-sensor="${sensor}"]`);
      const windowCell = row.locator(".window-avg");
      const allTimeCell = row.locator(".all-time-avg");
      close(Number(await windowCell.getAttribute("data-value")), values.window, `${room} ${sensor} window`);
      close(Number(await allTimeCell.getAttribute("data-value")), values.allTime, `${room} ${sensor} all time`);
      // Shown to two decimals.
      assert.ok(Math.abs(Number(await windowCell.textContent()) - values.window) <= 0.005 + 1e-9);
      assert.ok(Math.abs(Number(await allTimeCell.textContent()) - values.allTime) <= 0.005 + 1e-9);
      assert.equal(await row.locator(".trend polyline").count(), 1);
    }
    const delta = tile.locator(".delta");
    close(Number(await delta.getAttribute("data-value")), want.delta, `${room} delta`);
    // The sign is visible: an arrow and a colour class.
    const wantClass = want.delta > 0 ? "up" : want.delta < 0 ? "down" : "flat";
    assert.match(await delta.getAttribute("class"), new RegExp(`\\b${wantClass}\\b`));
  }
  assert.equal(await page.locator("#room-count").textContent(), String(truth.size));
  assert.deepEqual(errors, []);
  await page.close();
});

test("sorting by warmth and filtering by name", async () => {
  const { page } = await buildingPage();
  const warmest = [...truth].sort((a, b) =>
    b[1].sensors.get("temperature").window - a[1].sensors.get("temperature").window)[0][0];
  await page.selectOption("#sort", "warmest");
  assert.equal(await page.locator("article.tile").first().getAttribute("data-room"), warmest);
  await page.fill("#filter", "b2");
  assert.deepEqual(await page.locator("article.tile").evaluateAll((tiles) => tiles.map((t) => t.dataset.room)), ["b2"]);
  await page.close();
});

test("an appended change shows within a second, without a reload", async () => {
  const { page } = await buildingPage();
  await page.evaluate(() => { window.__sameDocument = true; });
  const cell = page.locator('article.tile[data-room="a1"] tr[data-sensor="co2"] .all-time-avg');
  const appended = Date.now();
  appendFileSync(changes, change("room_averages", { room: "a1", sensor: "co2" },
    { room: "a1", sensor: "co2", count: 4, sum: 1234.5, avg: 308.625 }, START + 600_000));
  await page.waitForFunction(
    () => document.querySelector('article.tile[data-room="a1"] tr[data-sensor="co2"] .all-time-avg')?.textContent === "308.63",
    null, { timeout: 1000, polling: 10 });
  const elapsed = Date.now() - appended;
  assert.ok(elapsed < 1000, `shown after ${elapsed} ms`);
  assert.equal(await cell.getAttribute("data-value"), "308.625");
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  await page.close();
});

test("a room's page charts one point per window", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
  await page.goto(new URL("/rooms/c3", served.url).href);
  for (const [sensor, values] of truth.get("c3").sensors) {
    const chart = page.locator(`section.sensor[data-sensor="${sensor}"] .chart svg`);
    await chart.waitFor();
    assert.equal(await chart.locator("circle").count(), values.windows, `${sensor}'s chart`);
    close(Number(await page.locator(`section.sensor[data-sensor="${sensor}"] .all-time-avg`).getAttribute("data-value")),
      values.allTime, `c3 ${sensor} all time`);
  }
  await page.close();
});

test("the page reconnects by itself after the dashboard restarts", async () => {
  const { page } = await buildingPage();
  await page.evaluate(() => { window.__sameDocument = true; });
  const address = new URL(served.url).host;
  await stop(served.child);
  await page.waitForFunction(() => document.getElementById("status").textContent !== "live");
  served = await dashboard(["--changes", changes, "--listen", address]);
  appendFileSync(changes, change("room_averages", { room: "b2", sensor: "co2" },
    { room: "b2", sensor: "co2", count: 2, sum: 1000.5, avg: 500.25 }, START + 660_000));
  await page.waitForFunction(
    () => document.querySelector('article.tile[data-room="b2"] tr[data-sensor="co2"] .all-time-avg')?.textContent === "500.25",
    null, { timeout: 10_000 });
  assert.equal(await page.locator("#status").textContent(), "live");
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  await page.close();
});

test("eight pages in one browser all load and stay live, and one tab visits nine rooms in a row", async () => {
  // A browser opens six connections to a host: a stream per page left the seventh page unloaded.
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const errors = [];
  const pages = [];
  const rooms = ["a1", "b2", "c3", "a1"];
  for (let i = 0; i < 8; i++) {
    const page = await context.newPage();
    page.on("pageerror", (error) => errors.push(error.message));
    pages.push(page);
    if (i < 4) {
      await page.goto(served.url);
      await page.waitForFunction((n) => document.querySelectorAll("article.tile").length === n, truth.size, { timeout: 10_000 });
    } else {
      await page.goto(new URL(`/rooms/${rooms[i - 4]}`, served.url).href);
      await page.locator('section.sensor[data-sensor="co2"] .all-time-avg').waitFor({ timeout: 10_000 });
    }
  }
  // Every page still gets every change, live.
  appendFileSync(changes, change("room_averages", { room: "a1", sensor: "co2" },
    { room: "a1", sensor: "co2", count: 8, sum: 4100, avg: 512.5 }, START + 720_000));
  for (const [i, page] of pages.entries()) {
    const selector = i < 4
      ? 'article.tile[data-room="a1"] tr[data-sensor="co2"] .all-time-avg'
      : 'section.sensor[data-sensor="co2"] .all-time-avg';
    const want = i < 4 || rooms[i - 4] === "a1" ? "512.50" : null;
    if (want) {
      await page.waitForFunction(([sel, text]) => document.querySelector(sel)?.textContent === text,
        [selector, want], { timeout: 5000 });
    }
    assert.equal(await page.locator("#status").textContent(), "live", `page ${i}`);
  }
  // One tab through nine room pages (the back/forward cache kept each left page's stream).
  const tab = pages[0];
  for (let i = 0; i < 9; i++) {
    const room = ["a1", "b2", "c3"][i % 3];
    await tab.goto(new URL(`/rooms/${room}`, served.url).href);
    await tab.locator('section.sensor[data-sensor="temperature"] .all-time-avg').waitFor({ timeout: 10_000 });
    await tab.waitForFunction(() => document.getElementById("status").textContent === "live", null, { timeout: 10_000 });
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test("without shared workers, a page holds a stream of its own and stays live", async () => {
  const context = await browser.newContext();
  // As in a browser without them (Chrome on Android).
  await context.addInitScript(() => { delete window.SharedWorker; });
  const page = await context.newPage();
  await page.goto(served.url);
  await page.waitForFunction((n) => document.querySelectorAll("article.tile").length === n, truth.size, { timeout: 10_000 });
  assert.equal(await page.evaluate(() => typeof SharedWorker), "undefined");
  appendFileSync(changes, change("room_averages", { room: "c3", sensor: "co2" },
    { room: "c3", sensor: "co2", count: 4, sum: 1802, avg: 450.5 }, START + 780_000));
  await page.waitForFunction(
    () => document.querySelector('article.tile[data-room="c3"] tr[data-sensor="co2"] .all-time-avg')?.textContent === "450.50",
    null, { timeout: 5000 });
  assert.equal(await page.locator("#status").textContent(), "live");
  await context.close();
});

test("names of dots and times beyond JavaScript's dates show, and break nothing", async () => {
  // A time no Date can hold (9e15 ms) in a change and in a dead letter; rooms named "." and "..",
  // whose links once resolved to "/".
  const far = 9_000_000_000_000_000;
  const out = join(work, "odd");
  mkdirSync(out, { recursive: true });
  const oddChanges = join(out, "changes.jsonl");
  writeFileSync(oddChanges, [
    change("room_averages", { room: ".", sensor: "co2" }, { room: ".", sensor: "co2", count: 1, sum: 401, avg: 401 }, START),
    change("room_averages", { room: "..", sensor: "co2" }, { room: "..", sensor: "co2", count: 1, sum: 402, avg: 402 }, START),
    change("room_averages", { room: "odd", sensor: "co2" }, { room: "odd", sensor: "co2", count: 1, sum: 403, avg: 403 }, START),
    change("room_averages", { room: "far", sensor: "co2" }, { room: "far", sensor: "co2", count: 1, sum: 404, avg: 404 }, far),
  ].join(""));
  writeFileSync(join(out, "dead_letters.jsonl"), JSON.stringify({
    source: "sensors.jsonl:7", reason: "temperature 900 outside the plausible range -40..85",
    room: "odd", sensor: "temperature", ts: far, value: 900,
  }) + "\n");
  const odd = await dashboard(["--changes", oddChanges, "--listen", "127.0.0.1:0"]);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(odd.url);
    await page.waitForFunction(() => document.querySelectorAll("article.tile").length === 4, null, { timeout: 10_000 });
    assert.equal(await page.locator("#newest-time").textContent(), String(far));
    assert.match(await page.locator('article.tile[data-room="far"] .heard').textContent(), /9000000000000000/);
    for (const [room, avg] of [[".", "401.00"], ["..", "402.00"]]) {
      await page.goto(odd.url);
      await page.locator(`article.tile[data-room="${room}"] a.room-name`).click();
      await page.waitForURL((url) => url.pathname.startsWith("/rooms/"));
      await page.locator('section.sensor[data-sensor="co2"] .all-time-avg').waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#room-name").textContent(), room);
      assert.equal(await page.locator('section.sensor[data-sensor="co2"] .all-time-avg').textContent(), avg);
    }
    await page.goto(new URL("/rooms/odd", odd.url).href);
    const row = page.locator("#rejected tbody tr");
    await row.first().waitFor({ timeout: 10_000 });
    assert.equal(await row.count(), 1);
    assert.match(await row.first().textContent(), /temperature = 900 at 9000000000000000/);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await stop(odd.child);
  }
});

test("a screenshot of the bundled sample's building", async () => {
  const out = join(work, "sample");
  replay([join(root, "samples/building.jsonl.gz")], out);
  const sample = await dashboard(["--changes", join(out, "changes.jsonl"), "--listen", "127.0.0.1:0"]);
  try {
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    await page.goto(sample.url);
    await page.waitForFunction(() => document.querySelectorAll("article.tile").length === 20);
    // The counters show the replay's rejected lines (counted here from its files), not just the
    // changes: the picture must not under-report them.
    const count = (name) => readFileSync(join(out, name), "utf8").split("\n").filter((l) => l).length;
    const [dead, late] = [count("dead_letters.jsonl"), count("late.jsonl")];
    assert.ok(dead > 0 && late > 0, "the bundled sample has dead letters and late readings");
    await page.waitForFunction(([d, l]) =>
      document.querySelector("#dead-letters .total").textContent === String(d) &&
      document.querySelector("#late .total").textContent === String(l), [dead, late], { timeout: 5000 });
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, "dashboard-building.png") });
    await page.goto(new URL("/rooms/r003", sample.url).href);
    await page.locator('section.sensor[data-sensor="temperature"] .chart svg').waitFor();
    await page.locator("#delta-chart svg").waitFor();
    await page.screenshot({ path: join(screenshots, "dashboard-room.png") });
    await page.close();
  } finally {
    await stop(sample.child);
  }
});
