/**
 * The persons page as a user sees it, for the browser suites: each step finds things by role and
 * accessible name, as a screen reader would, and waits for what the user would wait for.
 */
import { after, afterEach, before } from 'node:test'
import type { Browser, Locator, Page } from 'playwright-core'
import { launchBrowser } from './browser.js'
import { startServer, type RunningServer } from './start-server.js'
import { recordWire, type WireLog } from './wire-log.js'

/** How long a step waits for the page before it fails. */
export const PAGE_TIMEOUT_MS = 10_000

/** A person as the service holds it, read over HTTP without a browser. */
export interface StoredPerson {
  readonly status: number
  readonly etag: string | null
  readonly name: string | undefined
}

/** Reads a person straight from the service. */
export async function storedPerson(baseUrl: string, id: string): Promise<StoredPerson> {
  const response = await fetch(`${baseUrl}/persons/${encodeURIComponent(id)}`)
  const body = response.ok ? ((await response.json()) as { person_name: string }) : undefined
  return { status: response.status, etag: response.headers.get('etag'), name: body?.person_name }
}

/** One user's tab on the page, in a browser context (cookies, cache) of its own. */
export class PersonsPage {
  private constructor(readonly page: Page) {}

  /** A page already opened some other way (in a context with routes of its own, say). */
  static of(page: Page): PersonsPage {
    return new PersonsPage(page)
  }

  /** Opens the page in a new context and waits for the list to show `waitFor` (an id), if given. */
  static async open(browser: Browser, baseUrl: string, waitFor?: string): Promise<PersonsPage> {
    const context = await browser.newContext({ viewport: { width: 880, height: 640 } })
    // what a user waits for takes well under a second here; fail in seconds, not Playwright's 30
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const page = await context.newPage()
    await page.goto(`${baseUrl}/`)
    const persons = new PersonsPage(page)
    if (waitFor !== undefined) await persons.row(waitFor).waitFor()
    return persons
  }

  get status(): Locator {
    return this.page.getByRole('status')
  }

  get editor(): Locator {
    return this.page.getByRole('region', { name: /^Edit person/ })
  }

  get conflict(): Locator {
    return this.page.getByRole('region', { name: 'Someone else changed this person' })
  }

  /** The row of the list that shows person `id`. */
  row(id: string): Locator {
    return this.page
      .getByRole('region', { name: 'All persons' })
      .getByRole('row')
      .filter({ has: this.page.getByRole('button', { name: `Edit ${id}`, exact: true }) })
  }

  /** Clicks Edit on a person's row and waits for the editor to show that person. */
  async openEditor(id: string): Promise<void> {
    await this.row(id)
      .getByRole('button', { name: `Edit ${id}`, exact: true })
      .click()
    await this.page.getByRole('region', { name: `Edit person ${id}` }).waitFor()
  }

  /** Types a new name into the open editor and clicks Save. */
  async saveName(name: string): Promise<void> {
    await this.editor.getByLabel('Name').fill(name)
    await this.editor.getByRole('button', { name: 'Save' }).click()
  }

  /** Waits until the status line says `text`. */
  async waitForStatus(text: string | RegExp): Promise<void> {
    await this.page.getByRole('status').filter({ hasText: text }).waitFor()
  }

  async close(): Promise<void> {
    await this.page.context().close()
  }
}

/** What a browser suite works with: a fresh server, what it saw on the wire, and the browser. */
export interface PageFixture {
  readonly server: RunningServer
  readonly wire: WireLog
  readonly browser: Browser
  /** Opens the page for one more user (closed after the test) and waits for row `waitFor`. */
  open(waitFor?: string): Promise<PersonsPage>
}

/**
 * Registers the hooks of a browser suite (call it inside `describe`): a server with a wire log
 * and a browser for the whole suite, and each test's pages closed after it.
 */
export function pageFixture(): PageFixture {
  let server: RunningServer | undefined
  let wire: WireLog | undefined
  let browser: Browser | undefined
  const pages: PersonsPage[] = []
  before(async () => {
    server = await startServer()
    wire = recordWire(server)
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close()
    await server?.close()
  })
  afterEach(async () => {
    for (const page of pages.splice(0)) await page.close()
  })
  const fixture: PageFixture = {
    get server() {
      return server!
    },
    get wire() {
      return wire!
    },
    get browser() {
      return browser!
    },
    async open(waitFor?: string) {
      const page = await PersonsPage.open(fixture.browser, fixture.server.baseUrl, waitFor)
      pages.push(page)
      return page
    },
  }
  return fixture
}
