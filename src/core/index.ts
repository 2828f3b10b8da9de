/** The conditional-request core: pure functions with no I/O and no framework imports. */
export * from './entity-tag.js'
export * from './http-date.js'
export * from './preconditions.js'
