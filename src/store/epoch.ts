import { randomBytes } from 'node:crypto'

/**
 * A fresh random epoch for a new database: 72 bits, so a wiped and re-initialised database never
 * repeats the (epoch, version) pair of an ETag handed out before.
 */
export function newEpoch(): string {
  return randomBytes(9).toString('base64url')
}
