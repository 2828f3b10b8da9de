/**
 * The head of a response that may never end (an event stream): the status, the fields and the
 * first bytes, read with node:http (which neither asks for nor undoes a content coding), after
 * which the connection is dropped.
 */
import { request } from 'node:http'

/** What the start of a response showed. */
export interface StreamHead {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** The first chunk of the body as it came off the wire. */
  readonly firstChunk: Buffer
}

// only turns a hang into a failure
const TIMEOUT_MS = 10_000

/** Sends a GET to `base` + `path` and reads until the first chunk of the body, then hangs up. */
export function streamHead(base: string, path: string, headers: Record<string, string>): Promise<StreamHead> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { headers, agent: false }, (response) => {
      response.once('data', (chunk: Buffer) => {
        resolve({ status: response.statusCode!, headers: response.headers, firstChunk: chunk })
        req.destroy()
      })
      response.once('end', () => reject(new Error('the response ended before its first chunk')))
    })
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no first chunk after ${TIMEOUT_MS} ms`)))
    req.once('error', reject)
    req.end()
  })
}
