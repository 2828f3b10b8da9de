/**
 * One fetch read to its end, kept as the few things HTTP tests look at: the status, the
 * validators, the content type and the body as text.
 */

/** What a test sees of one response. */
export interface Answer {
  readonly status: number
  readonly etag: string | null
  readonly lastModified: string | null
  readonly contentType: string | null
  readonly body: string
}

/** Fetches `url` and reads the whole body as text. */
export async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init)
  const body = await response.text()
  return {
    status: response.status,
    etag: response.headers.get('etag'),
    lastModified: response.headers.get('last-modified'),
    contentType: response.headers.get('content-type'),
    body,
  }
}
