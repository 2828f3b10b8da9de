/** The shapes of a person as the service sends and takes them (API.md, "The resource"). */

/** A person as the service sends it. */
export interface Person {
  /** 1–64 characters of `A–Z a–z 0–9 . _ ~ -`, chosen by whoever created the person. */
  readonly person_id: string
  /** 1–200 code points, not only white space, no control characters. */
  readonly person_name: string
  /** Set by the server on every write: RFC 3339 UTC with milliseconds. */
  readonly change_date: string
}

/** What `create` takes: the new person's id and name. */
export interface NewPerson {
  readonly person_id: string
  readonly person_name: string
}

/** What `replace` takes, and what an `update` change returns: the members a client may set. */
export interface PersonFields {
  readonly person_name: string
}

/** What `patch` takes (a JSON Merge Patch, RFC 7396): members left out keep their value. */
export interface PersonPatch {
  readonly person_name?: string
}
