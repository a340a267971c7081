/* http: see http.h.  libmicrohttpd calls the access handler several times per
 * request: once with the headers, then once per chunk of body, then once with
 * no data, when the answer is due.  The per-request state below lives in
 * *req_cls across those calls and is freed in the completion callback. */
#include "http.h"

#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct http_server {
    struct MHD_Daemon *daemon;
    http_handler_fn handler;
    void *opaque;
    size_t max_body;
    int port;
    atomic_int in_flight;
    _Atomic(http_observer_fn) observer;
    void *_Atomic observer_opaque;
};

typedef struct http_ctx {
    char *body;
    size_t len, cap;
    int too_large;
} http_ctx_t;

static enum MHD_Result http_queue(struct MHD_Connection *conn, http_response_t *r) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body_len, r->body ? r->body : (void *)"", r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    r->body = NULL; /* now owned by resp */
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "application/json");
    /* RFC 9110 section 15.5.6: a 405 names the methods the target has,
     * and a target with GET has HEAD too (see http_access). */
    if (r->allow[0] != '\0') {
        char allow[sizeof(r->allow) + 8];
        const char *get = strstr(r->allow, "GET");
        if (get != NULL && strstr(r->allow, "HEAD") == NULL)
            snprintf(allow, sizeof(allow), "%.*sGET, HEAD%s", (int)(get - r->allow), r->allow, get + 3);
        else
            snprintf(allow, sizeof(allow), "%s", r->allow);
        MHD_add_response_header(resp, "Allow", allow);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **req_cls) {
    (void)version;
    http_server_t *srv = cls;
    http_ctx_t *ctx = *req_cls;
    if (ctx == NULL) {
        ctx = calloc(1, sizeof(*ctx));
        if (ctx == NULL) return MHD_NO;
        *req_cls = ctx;
        atomic_fetch_add(&srv->in_flight, 1);
        /* Refuse a declared oversized body before reading any of it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > srv->max_body) ctx->too_large = 1;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        if (!ctx->too_large && ctx->len + *upload_data_size > srv->max_body) ctx->too_large = 1;
        if (!ctx->too_large) {
            if (ctx->len + *upload_data_size + 1 > ctx->cap) {
                ctx->cap = (ctx->len + *upload_data_size + 1) * 2;
                if (ctx->cap > srv->max_body + 1) ctx->cap = srv->max_body + 1;
                char *nb = realloc(ctx->body, ctx->cap);
                if (nb == NULL) return MHD_NO;
                ctx->body = nb;
            }
            memcpy(ctx->body + ctx->len, upload_data, *upload_data_size);
            ctx->len += *upload_data_size;
            ctx->body[ctx->len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    http_response_t resp = {0};
    /* HEAD is GET without the body (RFC 9110 section 9.3.2): the handler
     * answers a GET, and libmicrohttpd sends the headers only, with the
     * Content-Length the body would have had. */
    http_request_t req = {
        .method = strcmp(method, "HEAD") == 0 ? "GET" : method,
        .path = url,
        .body = ctx->body ? ctx->body : "",
        .body_len = ctx->too_large ? 0 : ctx->len,
        .conn = conn,
    };
    if (ctx->too_large) {
        http_response_error(&resp, 413, "too_large", "request body exceeds %zu bytes", srv->max_body);
    } else {
        srv->handler(srv->opaque, &req, &resp);
        if (resp.status == 0) http_response_error(&resp, 500, "internal", "no response");
    }
    http_observer_fn observe = atomic_load(&srv->observer);
    if (observe != NULL) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        observe(atomic_load(&srv->observer_opaque), &req, &resp,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    return http_queue(conn, &resp);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    http_server_t *srv = cls;
    http_ctx_t *ctx = *req_cls;
    if (ctx == NULL) return;
    free(ctx->body);
    free(ctx);
    *req_cls = NULL;
    atomic_fetch_sub(&srv->in_flight, 1);
}

/* The request path's (and query arguments') percent-decoding, as
 * libmicrohttpd's own but for %00 and %2F, which stay as they are.  The
 * path reaches the handler as a C string: a NUL decoded into it ended it
 * there ("/v1/me%00x" was served as "/v1/me").  And an encoded slash is
 * data within a segment (RFC 3986 section 2.2), not a separator: decoded,
 * a lease id "a%2Fb" made "/v1/leases/a/b/heartbeat", a path that does not
 * exist, instead of a lease never issued.  libmicrohttpd decodes query
 * arguments with the same function, so they keep %00 and %2F too. */
static size_t http_unescape(void *cls, struct MHD_Connection *conn, char *s) {
    (void)cls;
    (void)conn;
    static const char hex[] = "0123456789abcdef";
    char *w = s;
    for (const char *r = s; *r != '\0';) {
        const char *hi = r[0] == '%' && r[1] ? strchr(hex, tolower((unsigned char)r[1])) : NULL;
        const char *lo = hi && r[2] ? strchr(hex, tolower((unsigned char)r[2])) : NULL;
        int c = lo != NULL ? (int)((hi - hex) << 4 | (lo - hex)) : -1;
        if (c > 0 && c != '/') {
            *w++ = (char)c;
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* libmicrohttpd's own errors, into our log. */
static void http_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = '\0';
    log_write_fields(LOG_LEVEL_WARN, json_pack("{s:s}", "component", "libmicrohttpd"), msg);
}

static int http_addr_parse(const char *addr, struct sockaddr_in *sin) {
    const char *colon = strrchr(addr, ':');
    if (colon == NULL) return -1;
    char host[64];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host)) return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) return -1;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (hl == 0 || strcmp(host, "*") == 0) sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sin->sin_addr) != 1)
        return -1;
    return 0;
}

void http_server_observe(http_server_t *srv, http_observer_fn fn, void *opaque) {
    atomic_store(&srv->observer_opaque, opaque);
    atomic_store(&srv->observer, fn);
}

http_server_t *http_server_start(const char *addr, size_t max_body, unsigned threads,
                                 http_handler_fn handler, void *opaque, char *errstr,
                                 size_t errlen) {
    struct sockaddr_in sin;
    if (http_addr_parse(addr, &sin) != 0) {
        snprintf(errstr, errlen, "bad listen address '%s' (want host:port)", addr);
        return NULL;
    }
    http_server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) abort();
    srv->handler = handler;
    srv->opaque = opaque;
    srv->max_body = max_body;
    atomic_init(&srv->in_flight, 0);
    /* MHD_USE_ITC: without it MHD_quiesce_daemon refuses to work with epoll
     * (threads >= 1), and http_server_stop would go on accepting requests
     * while it drains. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (threads == 0) flags |= MHD_USE_THREAD_PER_CONNECTION;
    else flags |= MHD_USE_EPOLL;
    /* A pool size is only legal without thread-per-connection. */
    /* The logger first: libmicrohttpd uses its own until it sees it. */
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)http_log, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &sin},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, srv},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)http_unescape, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, http_access, srv, MHD_OPTION_ARRAY, opts,
                                   MHD_OPTION_END);
    if (srv->daemon == NULL) {
        snprintf(errstr, errlen, "cannot listen on '%s' (port in use?)", addr);
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : ntohs(sin.sin_port);
    return srv;
}

int http_server_port(const http_server_t *srv) { return srv->port; }

void http_server_stop(http_server_t *srv, int drain_ms) {
    if (srv == NULL) return;
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    struct timespec nap = {0, 10 * 1000 * 1000};
    for (int waited = 0; atomic_load(&srv->in_flight) > 0 && waited < drain_ms; waited += 10)
        nanosleep(&nap, NULL);
    MHD_stop_daemon(srv->daemon);
    free(srv);
}

const char *http_request_header(const http_request_t *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_query(const http_request_t *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void http_response_text(http_response_t *resp, int status, const char *content_type,
                        const char *text) {
    free(resp->body);
    resp->status = status;
    resp->body = strdup(text);
    resp->body_len = strlen(text);
    resp->content_type = content_type;
}

void http_response_json(http_response_t *resp, int status, json_t *body) {
    /* 15 significant digits: 0.65 prints as 0.65, not 0.65000000000000002. */
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    free(resp->body);
    resp->status = status;
    resp->body = text ? text : strdup("{}");
    resp->body_len = strlen(resp->body);
    resp->content_type = "application/json";
}

/* The length of s[0..len) without a UTF-8 character that the end cuts
 * short: a lead byte whose sequence runs past len goes, with the
 * continuation bytes after it.  Whole characters, and bytes that are no
 * UTF-8 at all, are left for the JSON encoder to judge. */
static size_t utf8_whole_prefix(const char *s, size_t len) {
    size_t i = len, cont = 0;
    while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, cont++;
    if (i == 0) return len;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
    return need > cont + 1 ? i - 1 : len;
}

/* The length of the valid UTF-8 character at s (n bytes left), or 0: the
 * rules jansson applies (no overlong forms, no surrogates, nothing above
 * U+10FFFF). */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                                 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (len == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (len == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return len;
}

void http_response_error(http_response_t *resp, int status, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Cut at the buffer's end: that may fall inside a character (a long
     * field name from the body), and the message would no longer be UTF-8. */
    if (n >= (int)sizeof(msg)) msg[utf8_whole_prefix(msg, sizeof(msg) - 1)] = '\0';
    /* Bytes from a request that are no UTF-8 (a lease id in a 405's path)
     * become '?', so the rest of the message survives. */
    size_t len = strlen(msg);
    for (size_t i = 0; i < len;) {
        size_t c = utf8_char_len((const unsigned char *)msg + i, len - i);
        if (c == 0) msg[i++] = '?';
        else i += c;
    }
    json_t *m = json_string(msg);
    if (m == NULL) m = json_string("invalid message text");
    http_response_json(resp, status, json_pack("{s:s, s:o}", "error", code, "message", m));
}

json_t *http_request_json(const http_request_t *req, http_response_t *resp) {
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        http_response_error(resp, 400, "invalid_json", "body: %s (line %d, column %d)", jerr.text, jerr.line,
                            jerr.column);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        http_response_error(resp, 400, "invalid_json", "body: expected a JSON object");
        return NULL;
    }
    return body;
}
