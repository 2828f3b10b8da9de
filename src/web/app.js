/**
 * The persons page: lists, creates, edits and deletes persons through the API on the same origin.
 *
 * Reads use fetch's default cache mode and leave caching to the browser: the API answers
 * `Cache-Control: no-cache` with an ETag, so the browser keeps each response and revalidates it
 * with `If-None-Match`, and a `304` costs no body. Writes send `If-Match` with the ETag of the
 * version the user started from; a `412` opens the conflict view instead of overwriting.
 *
 * Plain JavaScript with JSDoc types, checked by tsc (tsconfig.browser.json): no build step, and
 * no inline script or style, so a strict Content-Security-Policy can forbid both.
 */

/** @typedef {{ person_id: string, person_name: string, change_date: string }} Person */
/** @typedef {{ person: Person, etag: string }} Versioned */
/** @typedef {{ kind: 'edit', name: string } | { kind: 'delete' }} Intent */

const PAGE_URL = '/persons?limit=100'

/** @param {string} id @returns {HTMLElement} */
function element(id) {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`the page has no #${id}`)
  return found
}

const ui = {
  status: element('status'),
  persons: element('persons'),
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
 * What the user is working on: the person as they saw it (with its ETag) and, after a 412, what
 * they tried to do and the version the server holds now (undefined when it was deleted).
 * @type {{ seen: Versioned, intent?: Intent, current?: Versioned } | undefined}
 */
let work

/** The `Link: <…>; rel="next"` target of a page, if any (RFC 8288). @param {Response} response */
function nextPage(response) {
  const match = /<([^>]*)>\s*;\s*rel="?next"?/.exec(response.headers.get('link') ?? '')
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

/** Shows the first page of persons, or appends the next one. @param {boolean} [append] */
async function loadList(append = false) {
  const url = append && nextUrl !== undefined ? nextUrl : PAGE_URL
  const response = await fetch(url, { headers: { accept: 'application/json' } })
  if (!response.ok) return say(`Could not load the persons: ${await problemText(response)}`, 'error')
  /** @type {Person[]} */
  const persons = await response.json()
  if (!append) ui.persons.replaceChildren()
  ui.persons.append(...persons.map(row))
  nextUrl = nextPage(response)
  ui.more.hidden = nextUrl === undefined
  ui.empty.hidden = ui.persons.childElementCount > 0
}

/**
 * Shows the editor for the version `seen`; after a conflict, with the user's earlier edit beside it.
 * @param {Versioned} seen @param {string} [earlierEdit]
 */
function showEditor(seen, earlierEdit) {
  work = { seen }
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
  const seen = await readPerson(id)
  if (seen === undefined) {
    say(`Person ${id} no longer exists.`, 'error')
    return loadList()
  }
  say('')
  showEditor(seen)
}

function closeEditor() {
  work = undefined
  ui.editor.hidden = true
  ui.conflict.hidden = true
}

/**
 * Carries out `intent` on the person, over the version `etag` names. A 412 means someone else
 * wrote since that version: the conflict view opens and nothing is overwritten.
 * @param {string} id @param {Intent} intent @param {string | undefined} etag undefined: re-create
 */
async function carryOut(id, intent, etag) {
  const response = intent.kind === 'edit'
    ? await write('PUT', id, etag === undefined ? { ifNoneMatch: '*', name: intent.name } : { ifMatch: etag, name: intent.name })
    : await write('DELETE', id, { ifMatch: etag })
  if (response.status === 412) return showConflict(id, intent)
  if (response.status === 404) {
    // deleted by someone else while the user edited: that is a conflict too
    return showConflict(id, intent)
  }
  if (!response.ok) return say(`Not saved: ${await problemText(response)}`, 'error')
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
    return loadList()
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
  ui.conflictExplanation.textContent = current === undefined
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

void loadList()
