/** The `--help` text of the ifmatch command, also printed after a usage error. */
import { DEFAULT_DATABASE_URL } from '../store/open-store.js'

/** What `ifmatch --help` prints: every option, its environment variable and its default. */
export const USAGE = `Usage: ifmatch [--port N] [--host ADDR] [--database URL] [--workers N] [--pool-size N] [--cors-origins LIST]
               [--sqlite-synchronous NORMAL|FULL] [--sqlite-locking exclusive|shared]
               [--tombstone-retention DURATION]

Serves the persons API with ETags and conditional requests (see README.md).

Options (each overrides its environment variable):
  --port N          TCP port to listen on             (PORT, default 5000)
  --host ADDR       address to bind                   (HOST, default 127.0.0.1)
  --database URL    where the data lives              (DATABASE_URL, default ${DEFAULT_DATABASE_URL})
                      sqlite:PATH           an embedded SQLite file, created if absent
                      postgres://USER@HOST:PORT/DB   a PostgreSQL database shared by any number of processes
  --workers N       server processes on this machine, one port (WORKERS, default 1)
  --pool-size N     PostgreSQL pool connections per process (DATABASE_POOL_SIZE, default 10)
  --cors-origins LIST
                    origins whose scripts may call the API: comma-separated, or *
                                                      (CORS_ORIGINS, default none: CORS off)
  --sqlite-synchronous NORMAL|FULL
                    SQLite commit durability (SQLITE_SYNCHRONOUS, default NORMAL): NORMAL survives
                    any process crash or kill, FULL also a power loss (one fsync per write)
  --sqlite-locking exclusive|shared
                    who may open the SQLite file (SQLITE_LOCKING, default exclusive; shared with
                    --workers): exclusive lets this one process in and reads faster, shared lets
                    any number of processes in, every one of which must say shared
  --tombstone-retention DURATION
                    how long the changes feed remembers deletes (TOMBSTONE_RETENTION, default
                    for ever), as 30d, 12h, 15m, 10s or 500ms; a feed token older than that gets
                    410 Gone and its client starts again from since=0
  -h, --help        print this help and exit

Environment only:
  LOG_LEVEL         fatal, error, warn, info (default), debug
  LOG_FORMAT        json (default when stdout is not a terminal) or pretty (default on a terminal)
  LOG_REQUESTS=1    log every request and its answer (off by default: it costs more than a 304)
  API_TOKEN         when set, writes need Authorization: Bearer <API_TOKEN>
  API_TOKEN_READS=1 with API_TOKEN, reads need it too
  SHUTDOWN_TIMEOUT_MS  how long SIGTERM/SIGINT waits for in-flight requests (default 10000)
`
