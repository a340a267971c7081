/* log: JSON-lines logger.  Every line is an object with ts (RFC 3339, UTC,
 * milliseconds), level, service and msg, plus any structured fields.  jansson
 * does the escaping, so any bytes in a message come out as valid JSON. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

log_level_t log_min_level = LOG_LEVEL_INFO;
static char log_service[64] = "annot";
static int log_fd = STDOUT_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

void log_init(const char *service, log_level_t min_level) {
    snprintf(log_service, sizeof(log_service), "%s", service);
    log_min_level = min_level;
}

void log_set_fd(int fd) { log_fd = fd; }

int log_level_parse(const char *name, log_level_t *out) {
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return 0;
    }
    return -1;
}

const char *log_level_name(log_level_t level) {
    return level <= LOG_LEVEL_FATAL ? level_names[level] : "unknown";
}

static void log_timestamp(char *buf, size_t len) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Length of the valid UTF-8 sequence starting at s, or 0 when there is none
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t log_utf8_len(const unsigned char *s) {
    unsigned cp;
    size_t n;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A copy of msg with each byte that is not valid UTF-8 replaced by U+FFFD;
 * the caller frees it.  NULL when out of memory. */
static char *log_utf8_repair(const char *msg) {
    const unsigned char *s = (const unsigned char *)msg;
    char *out = malloc(strlen(msg) * 3 + 1), *o = out;
    if (out == NULL) return NULL;
    while (*s != '\0') {
        size_t n = log_utf8_len(s);
        if (n == 0) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            s++;
        } else {
            memcpy(o, s, n);
            o += n;
            s += n;
        }
    }
    *o = '\0';
    return out;
}

void log_write_fields(log_level_t level, json_t *fields, const char *msg) {
    if (level < log_min_level) {
        json_decref(fields);
        return;
    }
    char ts[40];
    log_timestamp(ts, sizeof(ts));
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(log_level_name(level)));
    json_object_set_new(line, "service", json_string(log_service));
    /* json_string rejects invalid UTF-8, and json_dumps fails on a string
     * that bypassed the check (the whole line would be lost); keep the
     * message with the bad bytes replaced. */
    json_t *m = json_string(msg);
    if (m == NULL) {
        char *repaired = log_utf8_repair(msg);
        m = json_string(repaired ? repaired : "(message not valid UTF-8)");
        free(repaired);
    }
    json_object_set_new(line, "msg", m);
    if (fields != NULL) {
        json_object_update_missing(line, fields);
        json_decref(fields);
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (text == NULL) return;
    size_t len = strlen(text);
    text[len] = '\n'; /* overwrite the NUL: one write for the whole line */
    ssize_t off = 0;
    while ((size_t)off < len + 1) {
        ssize_t w = write(log_fd, text + off, len + 1 - (size_t)off);
        if (w <= 0) break;
        off += w;
    }
    free(text);
}

void log_write(log_level_t level, const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_write_fields(level, NULL, msg);
}
