/**
 * Starting several things at once (servers, stores) without losing track of the ones that started
 * when another failed.
 */

/**
 * Waits for every promise, adds each value to `kept` (what the caller's `after` stops or closes)
 * in the order given, and returns the values and the failures, for the caller to judge.
 */
export async function settleKeeping<T>(promises: readonly Promise<T>[], kept: T[]): Promise<{ values: T[]; failures: unknown[] }> {
  const values: T[] = []
  const failures: unknown[] = []
  for (const result of await Promise.allSettled(promises)) {
    if (result.status === 'fulfilled') {
      kept.push(result.value)
      values.push(result.value)
    } else {
      failures.push(result.reason)
    }
  }
  return { values, failures }
}
