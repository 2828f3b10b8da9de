/**
 * The persons page: lists, creates, edits and deletes persons through the API on the same origin.
 *
 * Reads use fetch's default cache mode and leave caching to the browser: the API answers
 * `Cache-Control: no-cache` with an ETag, so the browser keeps each response and revalidates it
 * with `If-None-Match`, and a `304` costs no body. Writes send `If-Match` with the ETag of the
 * version the user started from; a `412` opens the conflict view instead of overwriting.
 *
 * The list is live: after reading its first page the page follows the changes feed from the moment
 * that page was read (its `Link: <…>; rel="changes"`), as a Server-Sent Events stream. The feed is
 * not followed from `since=0` because that would load the whole collection at once: the list keeps
 * its pages (each a cheap `304` on reload) and the feed only carries what changed after them.
 * A person open in the editor who changes elsewhere gets a notice in the form at once, with the
 * new value and ETag ready to load, so the next save's `If-Match` can be current.
 *
 * Plain JavaScript with JSDoc types, checked by tsc (tsconfig.browser.json): no build step, and
 * no inline script or style, so a strict Content-Security-Policy can forbid both.
 */

/** @typedef {{ person_id: string, person_name: string, change_date: string }} Person */
/** @typedef {{ person: Person, etag: string }} Versioned */
/** @typedef {{ kind: 'edit', name: string } | { kind: 'delete' }} Intent */
/** An item of the changes feed: a person with its ETag, or a tombstone. */
/** @typedef {(Person & { etag: string }) | { person_id: string, deleted: true }} Change */

const PAGE_URL = '/persons?limit=100'

/** @param {string} id @returns {HTMLElement} */
function element(id) {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`the page has no #${id}`)
  return found
}

const ui = {
  status: element('status'),
  persons: /** @type {HTMLTableSectionElement} */ (element('persons')),
  live: element('live'),
  empty: element('empty'),
  more: /** @type {HTMLButtonElement} */ (element('more')),
  createForm: /** @type {HTMLFormElement} */ (element('create-form')),
  editor: element('editor'),
  editorId: element('editor-id'),
  editForm: /** @type {HTMLFormElement} */ (element('edit-form')),
  editName: /** @type {HTMLInputElement} */ (element('edit-name')),
  editHint: element('edit-hint'),
  editHintText: element('edit-hint-text'),
  editVersion: element('edit-version'),
  editNotice: element('edit-notice'),
  editNoticeText: element('edit-notice-text'),
  loadTheirs: /** @type {HTMLButtonElement} */ (element('load-theirs')),
  confirmDelete: element('confirm-delete'),
  conflict: element('conflict'),
  conflictExplanation: element('conflict-explanation'),
  mineName: element('mine-name'),
  mineBase: element('mine-base'),
  theirsName: element('theirs-name'),
  theirsDate: element('theirs-date'),
  editAgain: /** @type {HTMLButtonElement} */ (element('edit-again')),
}

/**
 * What the user is working on: the person as they saw it (with its ETag); `newer`, what the feed
 * says about that person since (a newer version or its deletion); and, after a 412, what they
 * tried to do and the version the server holds now (undefined when it was deleted).
 * @type {{ seen: Versioned, newer?: Change, intent?: Intent, current?: Versioned } | undefined}
 */
let work

/**
 * The target of a page's `Link` with relation `rel`, if any (RFC 8288).
 * @param {Response} response @param {'next' | 'changes'} rel
 */
function linkTarget(response, rel) {
  const match = new RegExp(`<([^>]*)>\\s*;\\s*rel="?${rel}"?`).exec(response.headers.get('link') ?? '')
  return match === null ? undefined : match[1]
}

/** The problem body of a failed response, as one sentence for the user. @param {Response} response */
async function problemText(response) {
  try {
    const problem = await response.json()
    return String(problem.message ?? problem.detail ?? problem.title)
  } catch {
    return `${response.status} ${response.statusText}`
  }
}

/** @param {string} text @param {'ok' | 'error'} [tone] */
function say(text, tone = 'ok') {
  ui.status.textContent = text
  ui.status.className = tone
}

/** @param {string} iso */
function formatDate(iso) {
  return new Date(iso).toLocaleString()
}

/** @param {string} id */
function personUrl(id) {
  return `/persons/${encodeURIComponent(id)}`
}

/**
 * Reads one person. The default cache mode lets the browser answer from its cache after a `304`.
 * @param {string} id @returns {Promise<Versioned | undefined>} undefined when it does not exist
 */
async function readPerson(id) {
  const response = await fetch(personUrl(id), { headers: { accept: 'application/json' } })
  if (response.status === 404) return undefined
  if (!response.ok) throw new Error(await problemText(response))
  const etag = response.headers.get('etag')
  if (etag === null) throw new Error('the response carried no ETag')
  return { person: await response.json(), etag }
}

/**
 * A write: `If-Match` with the ETag the user started from (or `If-None-Match: *` to re-create a
 * person someone else deleted).
 * @param {'PUT' | 'DELETE'} method @param {string} id
 * @param {{ ifMatch?: string, ifNoneMatch?: string, name?: string }} options
 */
function write(method, id, { ifMatch, ifNoneMatch, name }) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' }
  if (ifMatch !== undefined) headers['if-match'] = ifMatch
  if (ifNoneMatch !== undefined) headers['if-none-match'] = ifNoneMatch
  if (name === undefined) return fetch(personUrl(id), { method, headers })
  headers['content-type'] = 'application/json'
  return fetch(personUrl(id), { method, headers, body: JSON.stringify({ person_id: id, person_name: name }) })
}

/** @param {Person} person */
function row(person) {
  const tr = document.createElement('tr')
  tr.dataset.personId = person.person_id
  for (const text of [person.person_id, person.person_name, formatDate(person.change_date)]) {
    const td = document.createElement('td')
    td.textContent = text
    tr.append(td)
  }
  const button = document.createElement('button')
  button.type = 'button'
  button.textContent = 'Edit'
  button.setAttribute('aria-label', `Edit ${person.person_id}`)
  button.addEventListener('click', () => void openEditor(person.person_id))
  const td = document.createElement('td')
  td.append(button)
  tr.append(td)
  return tr
}

/** @type {string | undefined} */
let nextUrl
/**
 * The id of the last person of the last page shown while more pages follow: persons sorting
 * after it belong to a page not loaded yet, so the feed does not add them (Show more will).
 * @type {string | undefined}
 */
let lastLoadedId
/** The feed of changes after the first page last read (its `rel="changes"` link), if any. @type {string | undefined} */
let changesUrl
/**
 * Feed items that arrived while a page of the list or a person was being read, one array per
 * read: the read may predate them, so they are applied again over what it returns. Applying again
 * an item the read already contains changes nothing lasting: if the read holds an even newer
 * version, the feed delivers that version later, in commit order.
 * @type {Set<Change[]>}
 */
const readsInFlight = new Set()

/**
 * Shows the first page of persons, or appends the next one.
 * @param {boolean} [append] @returns {Promise<boolean>} whether the page was read
 */
async function loadList(append = false) {
  const url = append && nextUrl !== undefined ? nextUrl : PAGE_URL
  /** @type {Change[]} */
  const arrived = []
  readsInFlight.add(arrived)
  try {
    const response = await fetch(url, { headers: { accept: 'application/json' } })
    if (!response.ok) {
      say(`Could not load the persons: ${await problemText(response)}`, 'error')
      return false
    }
    /** @type {Person[]} */
    const persons = await response.json()
    if (!append) {
      ui.persons.replaceChildren()
      changesUrl = linkTarget(response, 'changes')
    }
    ui.persons.append(...persons.map(row))
    nextUrl = linkTarget(response, 'next')
    lastLoadedId = nextUrl === undefined ? undefined : persons.at(-1)?.person_id
    for (const change of arrived) applyToList(change)
    ui.more.hidden = nextUrl === undefined
    ui.empty.hidden = ui.persons.rows.length > 0
    return true
  } finally {
    readsInFlight.delete(arrived)
  }
}

/** The row of person `id`, if the list shows it. @param {string} id */
function rowOf(id) {
  return [...ui.persons.rows].find((tr) => tr.dataset.personId === id)
}

/** Makes the list show one feed item: updates, adds or removes that person's row. @param {Change} change */
function applyToList(change) {
  const shown = rowOf(change.person_id)
  if ('deleted' in change) {
    shown?.remove()
  } else if (shown !== undefined) {
    // the cells change in place, so a focused Edit button keeps the focus
    const [, name, date] = shown.cells
    if (name !== undefined) name.textContent = change.person_name
    if (date !== undefined) date.textContent = formatDate(change.change_date)
    flash(shown)
  } else if (lastLoadedId === undefined || change.person_id <= lastLoadedId) {
    // ids are ASCII, so `<` is the code-point order the collection is sorted in
    const before = [...ui.persons.rows].find((tr) => (tr.dataset.personId ?? '') > change.person_id)
    const added = row(change)
    if (before === undefined) ui.persons.append(added)
    else before.before(added)
    flash(added)
  }
  ui.empty.hidden = ui.persons.rows.length > 0
}

/** Highlights a row that changed elsewhere for a moment. @param {HTMLTableRowElement} tr */
function flash(tr) {
  tr.classList.remove('changed')
  // reading the layout restarts the animation when the row changes again while it runs
  void tr.offsetWidth
  tr.classList.add('changed')
}

/**
 * Shows the editor for the version `seen`; after a conflict, with the user's earlier edit beside it.
 * @param {Versioned} seen @param {string} [earlierEdit]
 */
function showEditor(seen, earlierEdit) {
  work = { seen }
  ui.editNotice.hidden = true
  ui.conflict.hidden = true
  ui.confirmDelete.hidden = true
  ui.editor.hidden = false
  ui.editorId.textContent = seen.person.person_id
  ui.editName.value = seen.person.person_name
  ui.editVersion.textContent = `Version ${seen.etag}, changed ${formatDate(seen.person.change_date)}`
  ui.editHint.hidden = earlierEdit === undefined
  ui.editHintText.textContent = earlierEdit ?? ''
  ui.editName.focus()
}

/** @param {string} id */
async function openEditor(id) {
  /** @type {Change[]} */
  const arrived = []
  readsInFlight.add(arrived)
  /** @type {Versioned | undefined} */
  let seen
  try {
    seen = await readPerson(id)
  } finally {
    readsInFlight.delete(arrived)
  }
  if (seen === undefined) {
    say(`Person ${id} no longer exists.`, 'error')
    await loadList()
    return
  }
  say('')
  showEditor(seen)
  // a change the feed brought during the read may be newer than what the read returned
  for (const change of arrived) noticeInEditor(change)
}

function closeEditor() {
  work = undefined
  ui.editor.hidden = true
  ui.editNotice.hidden = true
  ui.conflict.hidden = true
}

/**
 * True while a write is on the wire: the feed may report that write before its response does,
 * and the editor must not call the user's own save someone else's change.
 */
let writing = false

/**
 * Tells the user, in the open editor, that the person they edit changed or was deleted elsewhere.
 * An item naming the very version being edited (the feed can lag behind the editor's own read)
 * withdraws the notice instead.
 * @param {Change} change
 */
function noticeInEditor(change) {
  if (work === undefined || ui.editor.hidden || change.person_id !== work.seen.person.person_id) return
  if (!('deleted' in change) && change.etag === work.seen.etag) {
    work.newer = undefined
    ui.editNotice.hidden = true
    return
  }
  work.newer = change
  if (writing) return
  showNotice(change)
}

/** @param {Change} change */
function showNotice(change) {
  ui.editNotice.hidden = false
  if ('deleted' in change) {
    ui.editNoticeText.textContent = 'Someone else deleted this person while you had it open. If you save, you will be asked whether to create it again.'
    ui.loadTheirs.hidden = true
  } else {
    ui.editNoticeText.textContent =
      `Someone else changed this person to “${change.person_name}” (${formatDate(change.change_date)}). ` +
      'Load their version to continue from it. If you save yours instead, nothing is overwritten: you will see both and choose.'
    ui.loadTheirs.hidden = false
  }
}

/**
 * Carries out `intent` on the person, over the version `etag` names. A 412 means someone else
 * wrote since that version: the conflict view opens and nothing is overwritten.
 * @param {string} id @param {Intent} intent @param {string | undefined} etag undefined: re-create
 */
async function carryOut(id, intent, etag) {
  writing = true
  /** @type {Response} */
  let response
  try {
    response =
      intent.kind === 'edit'
        ? await write('PUT', id, etag === undefined ? { ifNoneMatch: '*', name: intent.name } : { ifMatch: etag, name: intent.name })
        : await write('DELETE', id, { ifMatch: etag })
  } finally {
    writing = false
  }
  if (response.status === 412) return showConflict(id, intent)
  if (response.status === 404) {
    // deleted by someone else while the user edited: that is a conflict too
    return showConflict(id, intent)
  }
  if (!response.ok) {
    // the editor stays open: what the feed said during the write is news again
    if (work?.newer !== undefined && !ui.editor.hidden) showNotice(work.newer)
    return say(`Not saved: ${await problemText(response)}`, 'error')
  }
  closeEditor()
  say(intent.kind === 'edit' ? `Saved ${id}.` : `Deleted ${id}.`)
  await loadList()
}

/** The mid-air collision: the user's intent beside the server's current version. */
async function showConflict(/** @type {string} */ id, /** @type {Intent} */ intent) {
  const current = await readPerson(id)
  if (work === undefined) return
  if (intent.kind === 'delete' && current === undefined) {
    closeEditor()
    say(`${id} was already deleted.`)
    await loadList()
    return
  }
  work.intent = intent
  work.current = current
  ui.editor.hidden = true
  ui.conflict.hidden = false
  ui.mineName.textContent = intent.kind === 'edit' ? intent.name : '(delete this person)'
  ui.mineBase.textContent = `starting from “${work.seen.person.person_name}”`
  ui.theirsName.textContent = current === undefined ? '(deleted by someone else)' : current.person.person_name
  ui.theirsDate.textContent = current === undefined ? '' : `changed ${formatDate(current.person.change_date)}`
  ui.editAgain.disabled = current === undefined
  ui.conflictExplanation.textContent =
    current === undefined
      ? 'Your change was not saved, because someone else deleted this person after you opened it.'
      : 'Your change was not saved, because this person was changed after you opened it. Nothing was overwritten: choose which version to keep.'
  say('Not saved: someone else changed this person first.', 'error')
  element('keep-mine').focus()
  await loadList()
}

ui.editForm.addEventListener('submit', (event) => {
  event.preventDefault()
  if (work === undefined) return
  void carryOut(work.seen.person.person_id, { kind: 'edit', name: ui.editName.value }, work.seen.etag)
})
ui.loadTheirs.addEventListener('click', () => {
  const newer = work?.newer
  if (work === undefined || newer === undefined || 'deleted' in newer) return
  const { etag, ...person } = newer
  // what the user typed is kept beside the loaded name, to merge by hand
  const typed = ui.editName.value
  const keep = typed !== work.seen.person.person_name && typed !== person.person_name ? typed : undefined
  showEditor({ person, etag }, keep)
  say(`Loaded the current version of ${person.person_id}.`)
})
element('cancel-edit').addEventListener('click', () => {
  closeEditor()
  say('')
})
element('delete').addEventListener('click', () => {
  ui.confirmDelete.hidden = false
  element('confirm-delete-no').focus()
})
element('confirm-delete-no').addEventListener('click', () => {
  ui.confirmDelete.hidden = true
})
element('confirm-delete-yes').addEventListener('click', () => {
  if (work === undefined) return
  void carryOut(work.seen.person.person_id, { kind: 'delete' }, work.seen.etag)
})

// the three ways out of a conflict
element('keep-mine').addEventListener('click', () => {
  if (work?.intent === undefined) return
  // re-send over the version the user has now seen; if that changed too, the view opens again
  const id = work.seen.person.person_id
  const etag = work.current?.etag
  if (work.current !== undefined) work.seen = work.current
  void carryOut(id, work.intent, etag)
})
element('take-theirs').addEventListener('click', () => {
  if (work === undefined) return
  const id = work.seen.person.person_id
  closeEditor()
  say(`Kept the current version of ${id}; your change was discarded.`)
  void loadList()
})
ui.editAgain.addEventListener('click', () => {
  if (work?.current === undefined) return
  const earlier = work.intent?.kind === 'edit' ? work.intent.name : undefined
  showEditor(work.current, earlier)
  say('Editing the current version; your earlier edit is shown below the name.')
})

ui.createForm.addEventListener('submit', async (event) => {
  event.preventDefault()
  const data = new FormData(ui.createForm)
  const id = String(data.get('person_id'))
  const response = await fetch('/persons', {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify({ person_id: id, person_name: String(data.get('person_name')) }),
  })
  if (!response.ok) return say(`Not added: ${await problemText(response)}`, 'error')
  ui.createForm.reset()
  say(`Added ${id}.`)
  await loadList()
})
ui.more.addEventListener('click', () => void loadList(true))

/** The stream being followed, if any. @type {EventSource | undefined} */
let feed
/** How long to wait before starting again after the server refused the stream; doubles up to a minute. */
let restartDelayMs = 1000

/** @param {'connecting' | 'live' | 'reconnecting' | 'restarting'} state */
function showLive(state) {
  ui.live.hidden = false
  ui.live.dataset.state = state
  ui.live.textContent = {
    connecting: 'Connecting for live updates…',
    live: 'Live: changes saved elsewhere appear here as they happen.',
    reconnecting: 'Connection lost; reconnecting…',
    restarting: 'Live updates stopped; reloading the list…',
  }[state]
}

/**
 * Follows the changes feed at `url` as a Server-Sent Events stream. A dropped connection is
 * EventSource's business: it reconnects and sends `Last-Event-ID`, so nothing is missed. A refused
 * one (any status but 200, typically `410 Gone` for a token the server can no longer answer) is
 * final for EventSource: the list is then read again and followed from its new token.
 * @param {string} url
 */
function follow(url) {
  const source = new EventSource(url)
  feed = source
  showLive('connecting')
  source.addEventListener('open', () => {
    restartDelayMs = 1000
    showLive('live')
  })
  source.addEventListener('change', (event) => {
    /** @type {Change} */
    const change = JSON.parse(event.data)
    for (const arrived of readsInFlight) arrived.push(change)
    applyToList(change)
    noticeInEditor(change)
  })
  source.addEventListener('error', () => {
    if (source.readyState !== EventSource.CLOSED) return showLive('reconnecting')
    source.close()
    feed = undefined
    showLive('restarting')
    setTimeout(() => void goLive(), restartDelayMs)
    restartDelayMs = Math.min(restartDelayMs * 2, 60_000)
  })
}

/**
 * Reads the list and follows the feed from the moment it was read. A server without the feed (no
 * `rel="changes"` link) leaves the list as it is, updated by the page's own writes.
 */
async function goLive() {
  if (await loadList()) {
    if (changesUrl !== undefined && feed === undefined) follow(changesUrl)
    return
  }
  setTimeout(() => void goLive(), restartDelayMs)
  restartDelayMs = Math.min(restartDelayMs * 2, 60_000)
}

void goLive()
