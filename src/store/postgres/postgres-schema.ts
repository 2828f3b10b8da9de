/**
 * The PostgreSQL schema and its migrations. Writes are PL/pgSQL functions so each write is one
 * statement, one round trip and one transaction: it locks the meta row (the store-wide revision),
 * checks the stored version, bumps the revision and writes, exactly as the SQLite driver does in
 * one IMMEDIATE transaction. Holding the meta row lock serialises writers, and under READ COMMITTED
 * every statement after the lock sees what the writers before it committed.
 */

export const SCHEMA_VERSION = 2

/** The channel every write notifies on commit, and each process LISTENs to for the changes feed. */
export const CHANGES_CHANNEL = 'ifmatch_changes'

/** The key of the advisory lock that makes concurrent starts migrate one at a time. */
export const MIGRATION_LOCK_KEY = 0x1f_3a7c_4e01

/** Each step takes the schema from version i to i + 1. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE ifmatch_meta (
     id integer PRIMARY KEY CHECK (id = 1),
     epoch text NOT NULL,
     revision bigint NOT NULL,
     changed_at bigint NOT NULL,
     schema_version integer NOT NULL
   );
   CREATE TABLE persons (
     person_id text COLLATE "C" PRIMARY KEY,
     person_name text NOT NULL,
     change_date bigint NOT NULL,
     version bigint NOT NULL
   );

   -- returns the new version, or NULL when the id exists
   CREATE FUNCTION ifmatch_create(p_id text, p_name text, p_now bigint) RETURNS bigint
   LANGUAGE plpgsql AS $$
   DECLARE v bigint;
   BEGIN
     PERFORM 1 FROM ifmatch_meta WHERE id = 1 FOR UPDATE;
     IF EXISTS (SELECT 1 FROM persons WHERE person_id = p_id) THEN RETURN NULL; END IF;
     UPDATE ifmatch_meta SET revision = revision + 1, changed_at = p_now WHERE id = 1 RETURNING revision INTO v;
     INSERT INTO persons (person_id, person_name, change_date, version) VALUES (p_id, p_name, p_now, v);
     RETURN v;
   END $$;

   -- returns the new version, -1 when absent, -2 when the version differs
   CREATE FUNCTION ifmatch_update(p_id text, p_name text, p_expected bigint, p_now bigint) RETURNS bigint
   LANGUAGE plpgsql AS $$
   DECLARE v bigint; cur bigint;
   BEGIN
     PERFORM 1 FROM ifmatch_meta WHERE id = 1 FOR UPDATE;
     SELECT version INTO cur FROM persons WHERE person_id = p_id;
     IF NOT FOUND THEN RETURN -1; END IF;
     IF cur <> p_expected THEN RETURN -2; END IF;
     UPDATE ifmatch_meta SET revision = revision + 1, changed_at = p_now WHERE id = 1 RETURNING revision INTO v;
     UPDATE persons SET person_name = p_name, change_date = p_now, version = v WHERE person_id = p_id;
     RETURN v;
   END $$;

   -- returns 0 when deleted, -1 when absent, -2 when the version differs
   CREATE FUNCTION ifmatch_delete(p_id text, p_expected bigint, p_now bigint) RETURNS bigint
   LANGUAGE plpgsql AS $$
   DECLARE cur bigint;
   BEGIN
     PERFORM 1 FROM ifmatch_meta WHERE id = 1 FOR UPDATE;
     SELECT version INTO cur FROM persons WHERE person_id = p_id;
     IF NOT FOUND THEN RETURN -1; END IF;
     IF cur <> p_expected THEN RETURN -2; END IF;
     UPDATE ifmatch_meta SET revision = revision + 1, changed_at = p_now WHERE id = 1;
     DELETE FROM persons WHERE person_id = p_id;
     RETURN 0;
   END $$;`,
  // The changes feed (docs/changes-feed.md). A delete leaves a tombstone with its revision, a
  // create removes the id's tombstone, and both tables are read in version order. Each write
  // notifies inside its transaction: PostgreSQL delivers a notification only when (and if) the
  // transaction commits. Deletes before this step left no tombstone, so the horizon starts at the
  // revision of the upgrade: a token older than that is answered 410.
  `CREATE TABLE ifmatch_tombstones (
     person_id text COLLATE "C" PRIMARY KEY,
     version bigint NOT NULL,
     deleted_at bigint NOT NULL
   );
   CREATE INDEX ifmatch_tombstones_by_version ON ifmatch_tombstones (version);
   CREATE INDEX persons_by_version ON persons (version);
   ALTER TABLE ifmatch_meta ADD COLUMN horizon bigint NOT NULL DEFAULT 0;
   UPDATE ifmatch_meta SET horizon = revision;

   CREATE OR REPLACE FUNCTION ifmatch_create(p_id text, p_name text, p_now bigint) RETURNS bigint
   LANGUAGE plpgsql AS $$
   DECLARE v bigint;
   BEGIN
     PERFORM 1 FROM ifmatch_meta WHERE id = 1 FOR UPDATE;
     IF EXISTS (SELECT 1 FROM persons WHERE person_id = p_id) THEN RETURN NULL; END IF;
     UPDATE ifmatch_meta SET revision = revision + 1, changed_at = p_now WHERE id = 1 RETURNING revision INTO v;
     INSERT INTO persons (person_id, person_name, change_date, version) VALUES (p_id, p_name, p_now, v);
     DELETE FROM ifmatch_tombstones WHERE person_id = p_id;
     PERFORM pg_notify('ifmatch_changes', v::text);
     RETURN v;
   END $$;

   CREATE OR REPLACE FUNCTION ifmatch_update(p_id text, p_name text, p_expected bigint, p_now bigint) RETURNS bigint
   LANGUAGE plpgsql AS $$
   DECLARE v bigint; cur bigint;
   BEGIN
     PERFORM 1 FROM ifmatch_meta WHERE id = 1 FOR UPDATE;
     SELECT version INTO cur FROM persons WHERE person_id = p_id;
     IF NOT FOUND THEN RETURN -1; END IF;
     IF cur <> p_expected THEN RETURN -2; END IF;
     UPDATE ifmatch_meta SET revision = revision + 1, changed_at = p_now WHERE id = 1 RETURNING revision INTO v;
     UPDATE persons SET person_name = p_name, change_date = p_now, version = v WHERE person_id = p_id;
     PERFORM pg_notify('ifmatch_changes', v::text);
     RETURN v;
   END $$;

   -- returns the revision of the delete, -1 when absent, -2 when the version differs
   CREATE OR REPLACE FUNCTION ifmatch_delete(p_id text, p_expected bigint, p_now bigint) RETURNS bigint
   LANGUAGE plpgsql AS $$
   DECLARE v bigint; cur bigint;
   BEGIN
     PERFORM 1 FROM ifmatch_meta WHERE id = 1 FOR UPDATE;
     SELECT version INTO cur FROM persons WHERE person_id = p_id;
     IF NOT FOUND THEN RETURN -1; END IF;
     IF cur <> p_expected THEN RETURN -2; END IF;
     UPDATE ifmatch_meta SET revision = revision + 1, changed_at = p_now WHERE id = 1 RETURNING revision INTO v;
     DELETE FROM persons WHERE person_id = p_id;
     INSERT INTO ifmatch_tombstones (person_id, version, deleted_at) VALUES (p_id, v, p_now)
       ON CONFLICT (person_id) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at;
     PERFORM pg_notify('ifmatch_changes', v::text);
     RETURN v;
   END $$;`,
]
