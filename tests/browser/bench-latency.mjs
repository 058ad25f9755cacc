// The dashboard's figures, in headless Chromium (run by scripts/bench-dashboard.sh, which starts
// Kafka and the dashboard first):
//   1. how long the building page takes from navigation to every tile drawn, with the rooms the
//      dashboard holds (BENCH_LOADS times);
//   2. the time from a change produced to alpha (its CreateTime) to the page showing it:
//      BENCH_CHANGES upserts of one key, produced at BENCH_RATE per second, each seen when the
//      page's tile first holds it (or a later one); p50/p90/p99/max. Beside it, the same changes
//      read by a bare kcat consumer (its arrival time against the message's CreateTime): what
//      Kafka alone costs.
//
// Usage: node bench-latency.mjs URL BROKERS TOPIC ROOMS

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [url, brokers, topic, roomsText] = process.argv.slice(2);
const rooms = Number(roomsText);
const changes = Number(process.env.BENCH_CHANGES ?? 1000);
const rate = Number(process.env.BENCH_RATE ?? 100);
const loads = Number(process.env.BENCH_LOADS ?? 3);
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const BENCH_ROOM = "~bench";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const summary = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50)} ms, p90 ${percentile(sorted, 90)} ms, ` +
    `p99 ${percentile(sorted, 99)} ms, max ${sorted[sorted.length - 1]} ms (${sorted.length} changes)`;
};

function change(value) {
  const key = { room: BENCH_ROOM, sensor: "temperature" };
  const envelope = {
    collection: "room_averages", operation: "upsert", key,
    data: { ...key, count: 1, sum: value, avg: value }, time: 1_700_000_000_000 + value,
  };
  return `${JSON.stringify(["room_averages", key])}\t${JSON.stringify(envelope)}\n`;
}

const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// 1. Page load with every room.
const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
page.on("pageerror", (error) => console.log("page error:", error.message));
const loadTimes = [];
for (let i = 0; i < loads; i++) {
  const started = Date.now();
  await page.goto(url);
  await page.waitForFunction((n) => document.querySelectorAll("article.tile").length >= n, rooms,
    { timeout: 60_000, polling: 10 });
  loadTimes.push(Date.now() - started);
}
console.log(`page load to ${rooms} tiles drawn: ${loadTimes.join(", ")} ms`);

// 2. Latency. The page records when its bench tile first shows each value.
await page.evaluate((room) => {
  window.__seen = [];
  let shown = 0;
  const cell = () => document.querySelector(
    `article.tile[data-room="${CSS.escape(room)}"] tr[data-sensor="temperature"] .all-time-avg`);
  new MutationObserver(() => {
    const value = Number(cell()?.dataset.value ?? 0);
    if (value > shown) {
      shown = value;
      window.__seen.push([Date.now(), value]);
    }
  }).observe(document.getElementById("rooms"), { childList: true, subtree: true });
}, BENCH_ROOM);

// kcat -P holds the last lines of an open pipe: a producer that sends each line at once.
const producer = spawn(process.env.PRODUCER ?? "target/release/examples/produce_lines", [brokers, topic],
  { stdio: ["pipe", "inherit", "inherit"] });
const consumer = spawn("kcat", ["-C", "-b", brokers, "-t", topic, "-o", "end", "-u", "-q",
  "-X", "fetch.wait.max.ms=100", "-f", "%T %s\\n"], { stdio: ["ignore", "pipe", "inherit"] });
// Each change's produce time (its CreateTime), and when a bare consumer had it.
const produced = [];
const kafkaLatencies = [];
createInterface({ input: consumer.stdout }).on("line", (line) => {
  const arrived = Date.now();
  const [timestamp, ...rest] = line.split(" ");
  try {
    const envelope = JSON.parse(rest.join(" "));
    if (envelope.key?.room === BENCH_ROOM) {
      produced[envelope.data.sum] = Number(timestamp);
      kafkaLatencies.push(arrived - Number(timestamp));
    }
  } catch { /* not ours */ }
});
await sleep(2000); // the consumer has its partitions

const sent = [];
const started = Date.now();
for (let value = 1; value <= changes; value++) {
  const due = started + ((value - 1) * 1000) / rate;
  const wait = due - Date.now();
  if (wait > 0) await sleep(wait);
  sent[value] = Date.now();
  producer.stdin.write(change(value));
}
await page.waitForFunction((n) => window.__seen.length > 0 && window.__seen.at(-1)[1] >= n, changes,
  { timeout: 30_000 });
await sleep(1000);
producer.stdin.end();
consumer.kill();

const seen = await page.evaluate(() => window.__seen);
const latencies = [];
let next = 0;
for (let value = 1; value <= changes; value++) {
  while (seen[next][1] < value) next++;
  latencies.push(seen[next][0] - (produced[value] ?? sent[value]));
}
console.log(`alpha to page:          ${summary(latencies)}; the page redrew ${seen.length} times`);
console.log(`alpha to bare kcat:     ${summary(kafkaLatencies)}`);
await browser.close();
