/**
 * Serves the web page (src/web/) at `/`: the HTML, its one script, style sheet and icon, each
 * with a strong ETag and `Cache-Control: no-cache`, so that a browser revalidates even the page's
 * own files with `If-None-Match` and gets `304`s, as it does for the persons.
 */
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { evaluatePreconditions, type CurrentValidators } from '../core/index.js'
import { conditionalHeaders } from './conditional-read.js'
import { problems } from './problems.js'
import { validatorHeaders } from './representation.js'

// two levels up from both src/http/ (tsx) and dist/http/ (the build) is the package root
const WEB_ROOT = new URL('../../src/web/', import.meta.url)

/** Each URL of the page, the file it serves, and that file's media type. */
export const WEB_ASSETS: readonly { path: string; file: string; type: string }[] = [
  { path: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { path: '/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { path: '/style.css', file: 'style.css', type: 'text/css; charset=utf-8' },
  { path: '/icon.svg', file: 'icon.svg', type: 'image/svg+xml' },
]

interface LoadedAsset {
  readonly body: Buffer
  readonly type: string
  readonly validators: CurrentValidators
}

/**
 * The strong ETag of a file's bytes. The files are read once at start, so hashing them here costs
 * nothing per request (unlike hashing a response body to decide a 304, which API.md rules out).
 */
function contentEtag(body: Buffer): string {
  return createHash('sha256').update(body).digest('base64url').slice(0, 22)
}

function loadAsset(file: string, type: string): LoadedAsset {
  const url = new URL(file, WEB_ROOT)
  const body = readFileSync(url)
  return { body, type, validators: { etag: { weak: false, opaque: contentEtag(body) }, lastModified: statSync(url).mtimeMs } }
}

/** Registers `GET` (and so `HEAD`) for the page and its assets. */
export function webRoutes(app: FastifyInstance): void {
  for (const { path, file, type } of WEB_ASSETS) {
    const asset = loadAsset(file, type)
    // the page is not part of the API: /openapi.json leaves it out
    app.get(path, { schema: { hide: true } }, async (request: FastifyRequest, reply) => {
      const decision = evaluatePreconditions({
        method: request.method,
        headers: conditionalHeaders(request.headers),
        current: asset.validators,
      })
      const headers = validatorHeaders(asset.validators.etag, asset.validators.lastModified)
      if (decision.outcome === 'not-modified') return reply.code(304).headers(headers).send()
      // a false If-Match or If-Unmodified-Since on a GET of a file: RFC 9110 §13.2.2 answers 412
      if (decision.outcome !== 'proceed') throw problems.staleIfMatch()
      return reply.headers(headers).type(asset.type).send(asset.body)
    })
  }
}
