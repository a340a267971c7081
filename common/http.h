/* http: a small HTTP/1.1 server on libmicrohttpd.  It collects the request
 * body (up to a limit; beyond it the answer is 413 without calling the
 * handler), calls one handler per request on a server thread, and sends what
 * the handler filled in.  Used for every service's /healthz, /readyz and
 * /metrics, and for the dispatcher's API. */
#ifndef ANNOT_HTTP_H
#define ANNOT_HTTP_H

#include <jansson.h>
#include <stddef.h>

typedef struct http_server http_server_t;

typedef struct http_request {
    const char *method; /* a HEAD request comes as "GET": the server drops the body */
    const char *path; /* without the query string; percent-decoded but for %00 and %2F */
    const char *body; /* NUL-terminated; may hold NULs before body_len */
    size_t body_len;
    void *conn;       /* the libmicrohttpd connection, for headers */
} http_request_t;

typedef struct http_response {
    int status;
    char *body;               /* malloc'd; the server frees it */
    size_t body_len;
    const char *content_type; /* static string */
    char allow[48];           /* the Allow header of a 405 ("GET, POST"); "" for none */
} http_response_t;

typedef void (*http_handler_fn)(void *opaque, const http_request_t *req, http_response_t *resp);
/* Sees every answer, the server's own 413s included, with the seconds from
 * the complete request to the filled-in response (metrics). */
typedef void (*http_observer_fn)(void *opaque, const http_request_t *req, const http_response_t *resp,
                                 double seconds);

/* Starts serving on "host:port" (port 0: any free port).  threads = 0 gives a
 * thread per connection (for long polls), 1 one thread for all, n a pool. */
http_server_t *http_server_start(const char *addr, size_t max_body, unsigned threads,
                                 http_handler_fn handler, void *opaque, char *errstr,
                                 size_t errlen);
/* The port actually bound. */
int http_server_port(const http_server_t *srv);
/* Installs the observer (NULL: none). */
void http_server_observe(http_server_t *srv, http_observer_fn fn, void *opaque);
/* Stops accepting, waits up to drain_ms for requests in flight, then stops. */
void http_server_stop(http_server_t *srv, int drain_ms);

/* A request header (case-insensitive name), or NULL. */
const char *http_request_header(const http_request_t *req, const char *name);
/* A query-string argument, or NULL. */
const char *http_request_query(const http_request_t *req, const char *name);

/* The body as a JSON object (duplicate keys refused).  On failure answers
 * 400 invalid_json, saying where the body is wrong, and returns NULL. */
json_t *http_request_json(const http_request_t *req, http_response_t *resp);

void http_response_text(http_response_t *resp, int status, const char *content_type,
                        const char *text);
/* Serialises body (stolen) as the JSON answer. */
void http_response_json(http_response_t *resp, int status, json_t *body);
/* The error body every API error uses: {"error": code, "message": ...}.
 * A message longer than 1023 bytes is cut there, never inside a UTF-8
 * character. */
void http_response_error(http_response_t *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
