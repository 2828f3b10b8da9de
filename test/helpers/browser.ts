/**
 * Debian's Chromium driven by playwright-core, for the browser suites (test/web/). Playwright's
 * own browser download cannot work on this network, so the system's /usr/bin/chromium is used.
 * Without it: with CI=true the suites fail (CI must run them); elsewhere they are skipped, loudly.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** Where Debian's chromium package puts the browser (CHROMIUM_PATH overrides). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

// without the networking flags Chromium keeps calling home, and this closed network refuses it
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/**
 * Why the browser suites cannot run here, or false when they can: the `skip` option of a
 * `describe`. With CI=true there is never a reason: launching then fails, and so do the tests.
 */
export function browserSkipReason(): string | false {
  if (existsSync(CHROMIUM_PATH) || process.env.CI === 'true') return false
  const reason = `${CHROMIUM_PATH} is missing: the browser tests are NOT run (apt-get install chromium)`
  process.stderr.write(`\n!!! ${reason}\n\n`)
  return reason
}

/** Launches a headless Chromium; close it when the suite ends. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: install Debian's chromium package (.ci/run does)`)
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
}
