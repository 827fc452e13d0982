import { chromium, type Page } from 'playwright-core';

/** Debian's Chromium, installed by scripts/system-deps.sh. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Runs `body` with a page of a fresh headless Chromium, and always closes the browser.
 * `ignoreCertificateErrors` accepts the self-signed certificates of the HTTPS tests.
 */
export async function withBrowser<T>(
  body: (page: Page) => Promise<T>,
  { ignoreCertificateErrors = false } = {},
): Promise<T> {
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
      ...(ignoreCertificateErrors ? ['--ignore-certificate-errors'] : []),
    ],
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: ignoreCertificateErrors });
    return await body(await context.newPage());
  } finally {
    await browser.close();
  }
}
