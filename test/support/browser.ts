import { chromium, type Page } from 'playwright-core';

/** Debian's Chromium, installed by scripts/system-deps.sh. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Runs `body` with a page of a fresh headless Chromium, and always closes the browser. */
export async function withBrowser<T>(body: (page: Page) => Promise<T>): Promise<T> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage();
    return await body(page);
  } finally {
    await browser.close();
  }
}
