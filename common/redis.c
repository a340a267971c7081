/* redis: see redis.h. */
#include "redis.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct redis {
    redisContext *ctx;
    char host[256];
    int port;
    int db;
    char username[256];
    char password[256];
};

/* Copies the n bytes at src into dst, decoding %XX escapes (RFC 3986), so a
 * password may hold '@', ':' or '/'. */
static int redis_url_unescape(char *dst, size_t cap, const char *src, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            if (!isxdigit((unsigned char)src[i + 1]) || !isxdigit((unsigned char)src[i + 2])) return -1;
            char hex[3] = {src[i + 1], src[i + 2], '\0'};
            c = (unsigned char)strtol(hex, NULL, 16);
            if (c == '\0') return -1;
            i += 2;
        }
        if (o + 1 >= cap) return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return 0;
}

static int redis_url_parse(redis_t *r, const char *url, char *errstr, size_t errlen) {
    const char *p = url;
    if (strncmp(p, "rediss://", 9) == 0) {
        /* hiredis 0.14 has no TLS; the images' entrypoint turns a rediss://
         * URL into a local stunnel (docker/entrypoint.sh). */
        snprintf(errstr, errlen,
                 "redis.url: rediss:// (TLS) is served by the image's entrypoint (stunnel), which reads it from "
                 "ANNOT_REDIS_URL or ANNOT_REDIS_URL_FILE; this binary's hiredis has no TLS (docs/OPERATIONS.md)");
        return -1;
    }
    if (strncmp(p, "redis://", 8) != 0) goto bad;
    p += 8;
    /* userinfo ends at the last '@' before the host (an unescaped '@' in
     * the password stays in the userinfo). */
    const char *host_start = strpbrk(p, "/");
    const char *at = NULL;
    for (const char *q = p; *q && (host_start == NULL || q < host_start); q++)
        if (*q == '@') at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {
            /* redis://password@host, as redis-cli -u accepts */
            if (redis_url_unescape(r->password, sizeof(r->password), p, (size_t)(at - p)) != 0) goto bad;
        } else {
            if (redis_url_unescape(r->username, sizeof(r->username), p, (size_t)(colon - p)) != 0 ||
                redis_url_unescape(r->password, sizeof(r->password), colon + 1, (size_t)(at - colon - 1)) != 0)
                goto bad;
        }
        p = at + 1;
    }
    const char *colon = strchr(p, ':');
    const char *slash = strchr(p, '/');
    const char *host_end = colon ? colon : slash ? slash : p + strlen(p);
    size_t hl = (size_t)(host_end - p);
    if (hl == 0 || hl >= sizeof(r->host)) goto bad;
    memcpy(r->host, p, hl);
    r->host[hl] = '\0';
    r->port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || port <= 0 || port > 65535 || (*end != '\0' && *end != '/')) goto bad;
        r->port = (int)port;
    }
    r->db = 0;
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 1000) goto bad;
        r->db = (int)db;
    }
    return 0;
bad:
    /* Never echo the URL: it may hold the password. */
    snprintf(errstr, errlen, "bad Redis URL (want redis://[[user]:password@]host:port[/db], %%XX escapes in user and password)");
    return -1;
}

static int redis_reconnect(redis_t *r, char *errstr, size_t errlen) {
    if (r->ctx != NULL && r->ctx->err == 0) return 0;
    if (r->ctx != NULL) redisFree(r->ctx);
    struct timeval tv = {2, 0};
    r->ctx = redisConnectWithTimeout(r->host, r->port, tv);
    if (r->ctx == NULL || r->ctx->err) {
        snprintf(errstr, errlen, "redis %s:%d: %s", r->host, r->port, r->ctx ? r->ctx->errstr : "out of memory");
        return -1;
    }
    redisSetTimeout(r->ctx, (struct timeval){5, 0});
    redisReply *rep;
    if (r->password[0]) {
        /* With a user name: Redis 6 ACL users; without: the default user
         * (requirepass). */
        if (r->username[0]) rep = redisCommand(r->ctx, "AUTH %s %s", r->username, r->password);
        else rep = redisCommand(r->ctx, "AUTH %s", r->password);
        int ok = rep && rep->type == REDIS_REPLY_STATUS, answered = rep != NULL;
        if (rep) freeReplyObject(rep);
        if (!ok) {
            /* No reply at all: the connection broke (a TLS port, or a tunnel
             * that could not verify Redis), which is not a wrong password. */
            snprintf(errstr, errlen, "redis %s:%d: AUTH failed%s%s", r->host, r->port, answered ? "" : ": ",
                     answered ? "" : (r->ctx->errstr[0] ? r->ctx->errstr : "connection lost"));
            r->ctx->err = REDIS_ERR_OTHER;
            return -1;
        }
    }
    if (r->db != 0) {
        rep = redisCommand(r->ctx, "SELECT %d", r->db);
        int ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep) freeReplyObject(rep);
        if (!ok) {
            snprintf(errstr, errlen, "redis %s:%d: SELECT %d failed", r->host, r->port, r->db);
            r->ctx->err = REDIS_ERR_OTHER;
            return -1;
        }
    }
    return 0;
}

redis_t *redis_connect(const char *url, char *errstr, size_t errlen) {
    redis_t *r = calloc(1, sizeof(*r));
    if (r == NULL) abort();
    if (redis_url_parse(r, url, errstr, errlen) != 0 || redis_reconnect(r, errstr, errlen) != 0) {
        redis_close(r);
        return NULL;
    }
    return r;
}

void redis_close(redis_t *r) {
    if (r == NULL) return;
    if (r->ctx) redisFree(r->ctx);
    free(r);
}

/* Turns a NULL reply into an error message; the context keeps its err so the
 * next call reconnects. */
static redisReply *redis_checked(redis_t *r, void *reply, char *errstr, size_t errlen) {
    if (reply == NULL) {
        snprintf(errstr, errlen, "redis %s:%d: %s", r->host, r->port, r->ctx->errstr[0] ? r->ctx->errstr : "connection lost");
        if (r->ctx->err == 0) r->ctx->err = REDIS_ERR_IO;
    }
    return reply;
}

redisReply *redis_command(redis_t *r, char *errstr, size_t errlen, const char *fmt, ...) {
    if (redis_reconnect(r, errstr, errlen) != 0) return NULL;
    va_list ap;
    va_start(ap, fmt);
    void *reply = redisvCommand(r->ctx, fmt, ap);
    va_end(ap);
    return redis_checked(r, reply, errstr, errlen);
}

redisReply *redis_command_argv(redis_t *r, int argc, const char **argv, const size_t *lens,
                               char *errstr, size_t errlen) {
    if (redis_reconnect(r, errstr, errlen) != 0) return NULL;
    return redis_checked(r, redisCommandArgv(r->ctx, argc, argv, lens), errstr, errlen);
}

static int redis_script_load(redis_t *r, redis_script_t *s, char *errstr, size_t errlen) {
    redisReply *rep = redis_command(r, errstr, errlen, "SCRIPT LOAD %s", s->source);
    if (rep == NULL) return -1;
    int ok = rep->type == REDIS_REPLY_STRING && rep->len == 40;
    if (ok) memcpy(s->sha, rep->str, 41);
    else snprintf(errstr, errlen, "SCRIPT LOAD: %s", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

redisReply *redis_script_run(redis_t *r, redis_script_t *script, int nkeys, int argc,
                             const char **argv, const size_t *lens, char *errstr, size_t errlen) {
    if (script->sha[0] == '\0' && redis_script_load(r, script, errstr, errlen) != 0) return NULL;
    int n = argc + 3;
    /* On the stack for every call the lease scripts make (no allocation
     * per call); only a longer argument list is allocated. */
    enum { ARGV_STACK = 64 };
    const char *av_stack[ARGV_STACK];
    size_t al_stack[ARGV_STACK];
    const char **av = av_stack;
    size_t *al = al_stack;
    if (n > ARGV_STACK) {
        av = malloc((size_t)n * sizeof(char *));
        al = malloc((size_t)n * sizeof(size_t));
        if (av == NULL || al == NULL) abort();
    }
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA", al[0] = 7;
    av[2] = nk, al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    redisReply *rep = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        av[1] = script->sha, al[1] = 40;
        rep = redis_command_argv(r, n, av, al, errstr, errlen);
        /* NOSCRIPT: Redis restarted or flushed its scripts; the script did
         * not run, so loading it again and retrying is safe. */
        if (rep == NULL || rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "NOSCRIPT", 8) != 0) break;
        freeReplyObject(rep);
        rep = NULL;
        if (redis_script_load(r, script, errstr, errlen) != 0) break;
    }
    if (av != av_stack) {
        free(av);
        free(al);
    }
    return rep;
}

redisContext *redis_context(redis_t *r) { return r->ctx; }

int redis_ping(redis_t *r) {
    char err[256];
    redisReply *rep = redis_command(r, err, sizeof(err), "PING");
    if (rep == NULL) return -1;
    int ok = rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    freeReplyObject(rep);
    return ok ? 0 : -1;
}
