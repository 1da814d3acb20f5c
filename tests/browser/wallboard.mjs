#!/usr/bin/env node
// wallboard.mjs: drives the metrics wallboard in headless Debian Chromium (playwright-core) for
// tests/integration/test_metrics_wallboard.c, which starts the service and produces the events.
//
//   node tests/browser/wallboard.mjs --url URL --expect FILE --update FILE --screenshot PATH
//                                    [--timeout-ms N]
//
// 1. Loads URL (/wallboard/?token=...) and waits until every element named in --expect (a JSON
//    object {"<data-testid>": "<text shown>"}; a key "ticking" may list test ids whose running
//    wait must advance) shows its text and the connection pill reads "Live". Prints
//    "wallboard: initial figures ok".
// 2. Waits for the file --update to appear (the C test writes it, atomically, after producing
//    one more event; same format), then until the page shows those figures -- in the same
//    document, never reloaded. Prints "wallboard: updated without reload ok".
// 3. Writes a screenshot to PATH and prints "wallboard: screenshot PATH".
// Any failure prints "wallboard: FAIL <why>" with what the page showed, still writes the
// screenshot when a page is up, and exits 1. Exit 0 only when every check passed.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const CHROMIUM = '/usr/bin/chromium';
const VIEWPORT = { width: 1920, height: 1080 };

function fail(why) {
  console.log(`wallboard: FAIL ${why}`);
  process.exitCode = 1;
  return new Error(why);
}

function parseArgs(argv) {
  const args = { timeoutMs: 30000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) throw fail(`option ${k} needs a value`);
    if (k === '--url') args.url = v;
    else if (k === '--expect') args.expect = v;
    else if (k === '--update') args.update = v;
    else if (k === '--screenshot') args.screenshot = v;
    else if (k === '--timeout-ms') args.timeoutMs = Number(v);
    else throw fail(`unknown option ${k}`);
  }
  for (const k of ['url', 'expect', 'update', 'screenshot'])
    if (!args[k]) throw fail(`missing --${k}`);
  return args;
}

async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch (e) {
    throw fail(`playwright-core is not installed in tests/browser/node_modules (${e.code || e.message}): ` +
      'run deploy/local/install-deps.sh (it runs npm ci --prefix tests/browser)');
  }
}

function readExpect(path) {
  let doc;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw fail(`cannot read the expectations '${path}': ${e.message}`);
  }
  const { ticking = [], ...texts } = doc;
  return { texts, ticking };
}

// What the page shows now for each test id (null when there is no such element).
function shown(page, ids) {
  return page.evaluate((list) => Object.fromEntries(list.map((id) => {
    const n = document.querySelector(`[data-testid="${CSS.escape(id)}"]`);
    return [id, n ? n.textContent.trim() : null];
  })), ids);
}

function mismatches(want, got) {
  return Object.entries(want).filter(([id, text]) => got[id] !== text)
    .map(([id, text]) => `${id}: expected "${text}", page shows ${got[id] === null ? 'no such element' : `"${got[id]}"`}`);
}

// Polls until the page shows every text of want (and "Live"), or fails after timeoutMs.
async function waitFor(page, want, timeoutMs, what) {
  const all = { ...want, connection: 'Live' };
  const until = Date.now() + timeoutMs;
  let bad = [];
  while (Date.now() < until) {
    bad = mismatches(all, await shown(page, Object.keys(all)));
    if (bad.length === 0) return;
    await sleep(200);
  }
  throw fail(`${what} not shown within ${timeoutMs} ms: ${bad.join('; ')}`);
}

const seconds = (text) => {
  const parts = String(text).split(':').map(Number);
  return parts.some((n) => !Number.isInteger(n)) ? NaN : parts.reduce((s, n) => s * 60 + n, 0);
};

// Each ticking id must show a running wait (m:ss) that advances between two reads 2.5 s apart.
async function checkTicking(page, ids) {
  if (ids.length === 0) return;
  const before = await shown(page, ids);
  await sleep(2500);
  const after = await shown(page, ids);
  for (const id of ids) {
    const [a, b] = [seconds(before[id]), seconds(after[id])];
    if (!(b - a >= 2 && b - a <= 3))
      throw fail(`${id}: expected a wait ticking every second, read "${before[id]}" then "${after[id]}" 2.5 s later`);
  }
}

async function waitForFile(path, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > until) throw fail(`the test did not write '${path}' within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function screenshot(page, path) {
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
  console.log(`wallboard: screenshot ${path}`);
}

async function run(args, chromium) {
  const initial = readExpect(args.expect);
  let browser;
  let page;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM });
    page = await browser.newPage({ viewport: VIEWPORT });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    let loads = 0;
    page.on('load', () => { loads += 1; });

    const resp = await page.goto(args.url, { waitUntil: 'load' });
    if (!resp || resp.status() !== 200)
      throw fail(`GET ${args.url} answered ${resp ? resp.status() : 'nothing'}, expected 200`);
    await waitFor(page, initial.texts, args.timeoutMs, 'the scenario\'s figures');
    await checkTicking(page, initial.ticking);
    if (errors.length) throw fail(`the page threw: ${errors.join('; ')}`);
    console.log('wallboard: initial figures ok');

    // a marker in this document: a reload or navigation would drop it
    await page.evaluate(() => { window.__wallboardMarker = 'same-document'; });
    await waitForFile(args.update, 120000);
    const update = readExpect(args.update);
    await waitFor(page, update.texts, args.timeoutMs, 'the figures after the new event');
    const marker = await page.evaluate(() => window.__wallboardMarker);
    if (marker !== 'same-document' || loads !== 1)
      throw fail(`expected the page to update in place, but it was reloaded (${loads} loads)`);
    if (errors.length) throw fail(`the page threw: ${errors.join('; ')}`);
    console.log('wallboard: updated without reload ok');
    await screenshot(page, args.screenshot);
  } catch (e) {
    if (process.exitCode !== 1) fail(e.message);
    if (page) await screenshot(page, args.screenshot).catch(() => {});
  } finally {
    if (browser) await browser.close();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(CHROMIUM))
    throw fail(`${CHROMIUM} not found: install Debian's chromium (deploy/local/install-deps.sh does)`);
  const { chromium } = await loadPlaywright();
  await run(args, chromium);
}

main().catch((e) => {
  if (process.exitCode !== 1) fail(e.message);
});
