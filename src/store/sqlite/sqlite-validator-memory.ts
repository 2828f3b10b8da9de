/**
 * The validators an exclusive store keeps in memory. In exclusive locking mode no other process
 * can write the file, so the validators this process read or committed stay true until it writes
 * again: a validator read (every 304) then touches no SQL. Memory follows a write only after its
 * commit succeeded, so it never knows a version the file does not hold.
 */
import { LRUCache } from 'lru-cache'
import type { CollectionValidator, PersonValidator } from '../person-store.js'

/**
 * How many person validators an exclusive store keeps in memory (those most recently used, read
 * from the file or written); beyond it the least recently used is forgotten and read from the
 * file again when asked for.
 */
export const REMEMBERED_VALIDATORS = 100_000

/**
 * What one committed write changed: the collection validator it left, and the validator of the
 * person it wrote (undefined for a delete), if any.
 */
export interface ValidatorChange {
  readonly collection: CollectionValidator
  readonly person?: { readonly id: string; readonly validator: PersonValidator | undefined }
}

/** Person validators known to be current (an LRU of REMEMBERED_VALIDATORS), and the collection's. */
export class SqliteValidatorMemory {
  private readonly persons = new LRUCache<string, PersonValidator>({ max: REMEMBERED_VALIDATORS })
  private collectionValidator: CollectionValidator | undefined

  /** The validator of `id` if known; undefined says nothing (read the file), not "absent". */
  person(id: string): PersonValidator | undefined {
    return this.persons.get(id)
  }

  /** The collection validator, once read or written. */
  collection(): CollectionValidator | undefined {
    return this.collectionValidator
  }

  /** Keeps what was just read from the file, which no other process can change. */
  rememberPerson(id: string, validator: PersonValidator): void {
    this.persons.set(id, validator)
  }

  /** Keeps the collection validator just read from the file. */
  rememberCollection(collection: CollectionValidator): void {
    this.collectionValidator = collection
  }

  /** Follows writes whose transaction has committed, in commit order. */
  apply(changes: readonly ValidatorChange[]): void {
    for (const { person, collection } of changes) {
      if (person?.validator === undefined) {
        if (person !== undefined) this.persons.delete(person.id)
      } else {
        this.persons.set(person.id, person.validator)
      }
      this.collectionValidator = collection
    }
  }

  /** Forgets everything: what memory knows is not an answer once the database is gone. */
  clear(): void {
    this.persons.clear()
    this.collectionValidator = undefined
  }
}
