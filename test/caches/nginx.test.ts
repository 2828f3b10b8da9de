/**
 * deploy/nginx/ifmatch.conf, run by the real nginx in front of a real ifmatch: the shared-cache
 * promises of API.md (test/helpers/cache-suite.ts).
 */
import { describeThroughCache } from '../helpers/cache-suite.js'
import { NGINX } from '../helpers/shared-cache.js'

describeThroughCache(NGINX)
