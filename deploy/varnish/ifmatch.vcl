#
# Varnish in front of ifmatch (VCL 4.1, written for and tested with Varnish 7.1).
#
# ifmatch answers every person, page and feed answer with a strong ETag and
# `Cache-Control: no-cache`: a cache may keep the body, but must ask ifmatch before each use.
# This VCL does exactly that: it stores those answers, and each request for them becomes a
# conditional GET (If-None-Match: <stored ETag>) to ifmatch; a 304 refreshes the stored copy and
# the body is sent from the cache. Writes, long polls and event streams go straight through.
#
# Start varnishd with `-p http_gzip_support=off` (see vcl_backend_fetch below for why):
#
#   varnishd -a :80 -f /etc/varnish/ifmatch.vcl -p http_gzip_support=off -s malloc,256m
#
vcl 4.1;

backend ifmatch {
  .host = "127.0.0.1";
  .port = "5000";
  # a long poll (wait= up to 60 s) sends its first byte only when something changes
  .first_byte_timeout = 75s;
  # an event stream sends a comment at least every 15 s
  .between_bytes_timeout = 30s;
}

sub vcl_recv {
  # what the client sent, before http_gzip_support could rewrite it (checked in vcl_backend_fetch)
  set req.http.X-Ifmatch-Accept-Encoding = req.http.Accept-Encoding;
  # Server-Sent Events: one endless response per client, never a copy for anyone else; pass
  # streams it as it comes
  if (req.http.Accept ~ "(?i)text/event-stream") {
    return (pass);
  }
  # a long poll waits at ifmatch for the next write: its answer belongs to that moment only
  if (req.url ~ "[?&]wait=") {
    return (pass);
  }
  # Preconditions a stored copy cannot decide: Varnish would drop them from the fetch and answer
  # 200 where ifmatch answers 412
  if (req.http.If-Match || req.http.If-Unmodified-Since) {
    return (pass);
  }
  # Without coalescing: a request must not wait for, and then be given, a fetch that started
  # before it (that fetch may have read the data before a write this client saw acknowledged).
  # Each request revalidates for itself; a 304 costs ifmatch one indexed read.
  set req.hash_ignore_busy = true;
  # the rest is the built-in vcl_recv: writes (PUT, PATCH, DELETE, POST) pass with every header
  # they came with (If-Match, If-None-Match: *), and so does anything with Authorization
}

sub vcl_hit {
  # A stored copy is "fresh" for one microsecond only (see vcl_backend_response), and even
  # then it may predate a write this client has seen acknowledged: never deliver a copy without
  # asking ifmatch. Stale copies do not come here: they go to vcl_miss, and the fetch is conditional.
  return (pass);
}

sub vcl_backend_fetch {
  # With http_gzip_support on (Varnish's default), Varnish replaces the client's Accept-Encoding
  # with "gzip" towards the backend, stores the gzip body, and gunzips it for clients that did
  # not ask for gzip, turning ifmatch's strong ETag into a weak one on the way. A client that
  # then sends that W/ tag in If-Match gets 412 for every write. ifmatch chooses the coding
  # itself, one strong ETag per coding, and says `Vary: Accept-Encoding`; Varnish must pass
  # Accept-Encoding as the client sent it. Refuse loudly rather than weaken tags in silence.
  if ("" + bereq.http.Accept-Encoding != "" + bereq.http.X-Ifmatch-Accept-Encoding) {
    return (error(503, "Start varnishd with -p http_gzip_support=off: ifmatch chooses the content coding"));
  }
  unset bereq.http.X-Ifmatch-Accept-Encoding;
}

sub vcl_backend_response {
  if (bereq.uncacheable) {
    # a pass: deliver ifmatch's answer as it is, streamed
    return (deliver);
  }
  if (beresp.status == 200 && beresp.http.ETag && beresp.http.Cache-Control ~ "(?i)\bno-cache\b"
      && beresp.http.Cache-Control !~ "(?i)\b(no-store|private)\b" && !beresp.http.Set-Cookie
      && beresp.http.Vary != "*") {
    # Store it, stale at once: Varnish only keeps objects with a ttl above zero (with 0s every
    # read is a full fetch), and only revalidates objects it keeps. A ttl of one microsecond
    # has run out before any client can ask again: with 1ms, about a quarter of back-to-back
    # reads came within it and were passed as full fetches (measured, and a test flaked on it).
    # `keep` holds the stale copy (and its ETag) for the conditional fetch: If-None-Match goes
    # to ifmatch, and its 304 (beresp.was_304) is turned into a fresh copy of the stored body.
    # No grace: a stale copy is never served while it is being refreshed.
    set beresp.ttl = 0.001ms;
    set beresp.grace = 0s;
    set beresp.keep = 1h;
    # for operators (and the tests): was the body sent by ifmatch, or confirmed by its 304?
    if (beresp.was_304) {
      set beresp.http.X-Cache = "REVALIDATED";
    } else {
      set beresp.http.X-Cache = "MISS";
    }
    return (deliver);
  }
  # Anything else (404s, problems, no-store answers such as /metrics and 410) was not offered for
  # storing. Kept (a 404 for 2 minutes by default_ttl), it would only make every request for
  # that URL a pass in vcl_hit, and the person created meanwhile would not be stored.
  set beresp.uncacheable = true;
  set beresp.ttl = 0s;
  return (deliver);
}
