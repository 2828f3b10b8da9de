/**
 * Reading a Prometheus text exposition (what /metrics answers), one sample at a time.
 */

/** The value of one sample in a Prometheus text exposition, or undefined when it is absent. */
export function sample(metrics: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(name)) continue
    const match = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v) && Object.keys(have).length === Object.keys(labels).length) {
      return Number(match[3])
    }
  }
  return undefined
}
