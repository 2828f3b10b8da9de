/**
 * The service's resource paths and the methods each answers: one place for what the routes,
 * the read fast path, the 404/405 handler and the metrics labels all name.
 */

/** A person, as Fastify's route pattern (and the metrics' route label). */
export const PERSON_ROUTE = '/persons/:id'

/** The collection: its pages and the changes feed. */
export const COLLECTION_ROUTE = '/persons'

/** What a person's URL starts with. */
export const PERSON_PATH_PREFIX = '/persons/'

/** The methods the collection answers; any other is a 405 with this as `Allow`. */
export const COLLECTION_METHODS: readonly string[] = ['GET', 'HEAD', 'POST']

/** The methods a person answers; any other is a 405 with this as `Allow`. */
export const PERSON_METHODS: readonly string[] = ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']

/** True when `path` (without its query) names one person, valid id or not. */
export function isPersonPath(path: string): boolean {
  return path.length > PERSON_PATH_PREFIX.length && path.startsWith(PERSON_PATH_PREFIX) && !path.includes('/', PERSON_PATH_PREFIX.length)
}

/** The methods `path` answers, or undefined when no resource lives there. */
export function allowedMethods(path: string): readonly string[] | undefined {
  if (path === COLLECTION_ROUTE) return COLLECTION_METHODS
  return isPersonPath(path) ? PERSON_METHODS : undefined
}
