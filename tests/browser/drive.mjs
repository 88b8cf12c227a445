// Drives Debian's chromium for tests/tests/dashboard_page.rs, one JSON command per line on
// stdin, one JSON answer per line on stdout ({"ok":true,"value":...} or {"ok":false,"error":...}):
//   {"op":"open","url":U}                  open U in a fresh headless browser
//   {"op":"eval","expr":E}                 the value of the expression E in the page
//   {"op":"wait","expr":E,"timeout":MS}    wait until E is truthy in the page (polled every 100 ms),
//                                          and its value
//   {"op":"screenshot","path":P}           a full-page PNG at P
//   {"op":"state"}                         dialogs opened, page errors, and whether the page
//                                          was loaded only once (no reload since open)
// The browser is Debian's package (/usr/bin/chromium, or EDISON_CHROMIUM): playwright-core
// downloads none.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

let browser, page;
const dialogs = [];
const errors = [];
let loads = 0;

async function run(command) {
  switch (command.op) {
    case 'open': {
      browser = await chromium.launch({
        executablePath: process.env.EDISON_CHROMIUM || '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      });
      page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.on('dialog', (dialog) => { dialogs.push(dialog.message()); dialog.dismiss(); });
      page.on('pageerror', (error) => errors.push(String(error)));
      page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
      page.on('load', () => { loads += 1; });
      await page.goto(command.url, { waitUntil: 'load' });
      return loads;
    }
    case 'eval':
      return page.evaluate(command.expr);
    case 'wait': {
      // Polled with evaluate (the debugger's own evaluation): page.waitForFunction would eval a
      // string inside the page, which the page's Content-Security-Policy rightly refuses.
      const deadline = Date.now() + command.timeout;
      let value;
      while (!(value = await page.evaluate(command.expr))) {
        if (Date.now() > deadline) throw new Error(`timed out after ${command.timeout} ms waiting for ${command.expr}; last value ${JSON.stringify(value)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return value;
    }
    case 'screenshot':
      await page.screenshot({ path: command.path, fullPage: true });
      return command.path;
    case 'state':
      return { dialogs, errors, loads };
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = { ok: true, value: (await run(JSON.parse(line))) ?? null };
  } catch (error) {
    answer = { ok: false, error: String(error && error.stack || error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
if (browser) await browser.close();
