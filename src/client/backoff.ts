/**
 * Waiting between tries: full-jitter exponential backoff, and a sleep that an `AbortSignal` cuts
 * short. Platform timers only, so it runs in browsers too.
 */

/**
 * The full-jitter backoff before try `retry + 1`: uniform in [0, min(max, base · 2^(retry−1))).
 * Random over the whole range so that many clients failing together do not retry together.
 */
export function fullJitter(retry: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** (retry - 1))
}

/** Resolves after `ms` milliseconds, or at once (without rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve()
      return
    }
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
