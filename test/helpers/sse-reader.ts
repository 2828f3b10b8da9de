/**
 * A Server-Sent Events reader over node:http, parsing the stream as the WHATWG HTML "event stream
 * interpretation" does (fields, comments, CR/LF/CRLF line ends, a blank line dispatches), so tests
 * see every event and every comment the server wrote, and can cut the connection at will.
 */
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'

/** One dispatched event. */
export interface SseEvent {
  /** The `event:` field, `message` when absent. */
  readonly event: string
  /** The last event ID after this event (the `id:` field, or the one before it carried over). */
  readonly id: string
  readonly data: string
  /** When it was dispatched (performance.now()). */
  readonly at: number
}

/** One comment line (`: text`). */
export interface SseComment {
  readonly text: string
  /** When it arrived (performance.now()). */
  readonly at: number
}

/** Something a reader waits for: it comes, or the time runs out, or the stream ends first. */
class Queue<T> {
  private readonly items: T[] = []
  private waiter: (() => void) | undefined
  private done = false

  push(item: T): void {
    this.items.push(item)
    this.wake()
  }

  end(): void {
    this.done = true
    this.wake()
  }

  private wake(): void {
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.()
  }

  /** Everything received and not yet taken. */
  get pending(): readonly T[] {
    return this.items
  }

  async take(timeoutMs: number, what: string): Promise<T> {
    const item = await this.poll(timeoutMs, what)
    if (item === undefined) throw new Error(`no ${what} within ${timeoutMs} ms`)
    return item
  }

  /** The next item, or undefined when none comes within `timeoutMs`; fails when the stream ends first. */
  async poll(timeoutMs: number, what: string): Promise<T | undefined> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const item = this.items.shift()
      if (item !== undefined) return item
      if (this.done) throw new Error(`the stream ended before ${what}`)
      const left = deadline - performance.now()
      if (left <= 0) return undefined
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }
}

/** An open response: an event stream, or whatever else the server answered. */
export class SseReader {
  private readonly events = new Queue<SseEvent>()
  private readonly comments = new Queue<SseComment>()
  private readonly text: Buffer[] = []
  private lastEventId = ''
  // the id: field sets this; only a dispatch makes it the last event ID (WHATWG HTML)
  private idBuffer = ''
  private buffer = ''
  private pendingCr = false
  private eventType = ''
  private data: string[] = []
  private hasData = false
  /** Resolves when the response ends, is cut, or fails. */
  readonly ended: Promise<void>

  private constructor(
    private readonly req: ClientRequest,
    readonly response: IncomingMessage,
  ) {
    response.setEncoding('utf8')
    const isStream = /^text\/event-stream(\s*;|$)/.test(response.headers['content-type'] ?? '')
    this.ended = new Promise((resolve) => {
      response.on('data', (chunk: string) => {
        if (isStream) this.feed(chunk)
        else this.text.push(Buffer.from(chunk))
      })
      const finish = (): void => {
        this.events.end()
        this.comments.end()
        resolve()
      }
      response.on('end', finish)
      response.on('close', finish)
      response.on('error', finish)
    })
  }

  /**
   * Sends `GET path` with `Accept: text/event-stream` (plus `headers`) and resolves once the
   * response's header section has arrived.
   */
  static open(baseUrl: string, path: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<SseReader> {
    const url = new URL(path, baseUrl)
    return new Promise((resolve, reject) => {
      const req = httpRequest({
        host: url.hostname,
        port: Number(url.port),
        method: 'GET',
        path: `${url.pathname}${url.search}`,
        agent: false,
        headers: { accept: 'text/event-stream', ...headers },
      })
      const timer = setTimeout(() => {
        req.destroy()
        reject(new Error(`no response header within ${timeoutMs} ms`))
      }, timeoutMs)
      req.on('response', (response) => {
        clearTimeout(timer)
        resolve(new SseReader(req, response))
      })
      req.on('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
      req.end()
    })
  }

  get status(): number {
    return this.response.statusCode ?? 0
  }

  get headers(): IncomingHttpHeaders {
    return this.response.headers
  }

  /** The whole body of a response that is not an event stream (a problem, say). */
  async body(): Promise<string> {
    await this.ended
    return Buffer.concat(this.text).toString('utf8')
  }

  /**
   * The last event ID of the events dispatched so far (taken or still pending), as a browser would
   * send it in `Last-Event-ID`.
   */
  get lastId(): string {
    return this.lastEventId
  }

  /** Events received and not taken yet. */
  get pendingEvents(): readonly SseEvent[] {
    return this.events.pending
  }

  /** The next event; fails when none comes within `timeoutMs` or the stream ends first. */
  nextEvent(timeoutMs: number): Promise<SseEvent> {
    return this.events.take(timeoutMs, 'event')
  }

  /** The next event, or undefined when none comes within `timeoutMs`; fails when the stream ends first. */
  pollEvent(timeoutMs: number): Promise<SseEvent | undefined> {
    return this.events.poll(timeoutMs, 'event')
  }

  /** The next comment line; fails when none comes within `timeoutMs` or the stream ends first. */
  nextComment(timeoutMs: number): Promise<SseComment> {
    return this.comments.take(timeoutMs, 'comment')
  }

  /** Cuts the connection, as a network failure would. */
  cut(): void {
    this.req.destroy()
    this.response.destroy()
  }

  private feed(chunk: string): void {
    let text = this.buffer + chunk
    // a CR at the end of the last chunk and an LF at the start of this one are one line end
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1)
    this.pendingCr = false
    let start = 0
    for (let i = 0; i < text.length; i++) {
      const c = text[i]
      if (c !== '\n' && c !== '\r') continue
      this.line(text.slice(start, i))
      if (c === '\r') {
        if (i + 1 < text.length) {
          if (text[i + 1] === '\n') i++
        } else {
          this.pendingCr = true
        }
      }
      start = i + 1
    }
    this.buffer = text.slice(start)
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch()
      return
    }
    if (line.startsWith(':')) {
      this.comments.push({ text: line.slice(1).replace(/^ /, ''), at: performance.now() })
      return
    }
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
    switch (field) {
      case 'event':
        this.eventType = value
        break
      case 'data':
        this.data.push(value)
        this.hasData = true
        break
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value
        break
      default:
        break
    }
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer
    const type = this.eventType
    const data = this.data.join('\n')
    const hasData = this.hasData
    this.eventType = ''
    this.data = []
    this.hasData = false
    if (!hasData) return
    this.events.push({ event: type === '' ? 'message' : type, id: this.lastEventId, data, at: performance.now() })
  }
}
