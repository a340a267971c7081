/* config: see config.h.  The number of keys is small (tens), so values live
 * in one array searched linearly; nothing here is on a hot path. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const config_def_t config_common_defs[] = {
    {"kafka.bootstrap.servers", CONFIG_STRING, "127.0.0.1:9092", "ANNOT_KAFKA_BROKERS", 0, 0, false,
     "Kafka bootstrap brokers (host:port,...)"},
    {"redis.url", CONFIG_STRING, "redis://127.0.0.1:6379/0", "ANNOT_REDIS_URL", 0, 0, false,
     "Redis URL redis://[[user]:password@]host:port[/db] (%XX escapes in user and password)"},
    {"database.url", CONFIG_STRING, "postgresql://127.0.0.1:5432/annot", "ANNOT_DATABASE_URL", 0, 0, false,
     "PostgreSQL connection URI"},
    {"config.dir", CONFIG_STRING, "config", "ANNOT_CONFIG_DIR", 0, 0, false,
     "directory holding annot.conf, topics.conf and the guideline lexicons"},
    {"log.level", CONFIG_STRING, "info", "ANNOT_LOG_LEVEL", 0, 0, false,
     "lowest level logged: debug, info, warn, error"},
    {"ops.addr", CONFIG_STRING, "127.0.0.1:0", "ANNOT_OPS_ADDR", 0, 0, false,
     "host:port of /healthz, /readyz and /metrics (port 0: any free port)"},
    {"topics.file", CONFIG_STRING, "topics.conf", NULL, 0, 0, false,
     "topic table, relative to config.dir"},
    {"topics.prefix", CONFIG_STRING, "", "ANNOT_TOPICS_PREFIX", 0, 0, false,
     "put before every topic name of the table: isolated deployments (or test lanes) on one cluster"},
    {"dlq.topic.role", CONFIG_STRING, "dlq", NULL, 0, 0, false,
     "role in the topic table of the dead-letter topic"},
    {"shutdown.flush.timeout.ms", CONFIG_INT, "10000", NULL, 0, 600000, false,
     "how long shutdown waits for outstanding deliveries"},
    {"pipeline.batch.max", CONFIG_INT, "500", NULL, 1, 1000, false,
     "most consumed events applied in one PostgreSQL transaction"},
    {"pg.connect.timeout.s", CONFIG_INT, "30", NULL, 1, 3600, false,
     "how long start-up keeps retrying PostgreSQL"},
    {"fault.crash_at", CONFIG_STRING, "", "ANNOT_CRASH_AT", 0, 0, false,
     "fault injection for tests: point[:n] kills the process with SIGKILL the n-th time it passes point"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

typedef struct config_value {
    char *key;
    char *value;
    char *origin;
    const config_def_t *def; /* NULL for kafka.* pass-through keys */
} config_value_t;

struct config {
    const config_def_t *tables[2];
    config_value_t *values;
    size_t count, cap;
};

static const config_def_t *config_def_find(const config_t *cfg, const char *key) {
    for (size_t t = 0; t < 2; t++) {
        for (const config_def_t *d = cfg->tables[t]; d != NULL && d->key != NULL; d++) {
            if (strcmp(d->key, key) == 0) return d;
        }
    }
    return NULL;
}

static config_value_t *config_value_find(const config_t *cfg, const char *key) {
    for (size_t i = 0; i < cfg->count; i++) {
        if (strcmp(cfg->values[i].key, key) == 0) return &cfg->values[i];
    }
    return NULL;
}

static void config_value_store(config_t *cfg, const config_def_t *def, const char *key,
                               const char *value, const char *origin) {
    config_value_t *v = config_value_find(cfg, key);
    if (v == NULL) {
        if (cfg->count == cfg->cap) {
            cfg->cap = cfg->cap ? cfg->cap * 2 : 32;
            cfg->values = realloc(cfg->values, cfg->cap * sizeof(*cfg->values));
            if (cfg->values == NULL) abort();
        }
        v = &cfg->values[cfg->count++];
        v->key = strdup(key);
        v->value = NULL;
        v->origin = NULL;
        v->def = def;
    }
    free(v->value);
    free(v->origin);
    v->value = strdup(value);
    v->origin = strdup(origin);
}

config_t *config_new(const config_def_t *defs) {
    config_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) abort();
    cfg->tables[0] = config_common_defs;
    cfg->tables[1] = defs;
    for (size_t t = 0; t < 2; t++) {
        for (const config_def_t *d = cfg->tables[t]; d != NULL && d->key != NULL; d++) {
            if (d->default_value != NULL) config_value_store(cfg, d, d->key, d->default_value, "default");
        }
    }
    return cfg;
}

void config_destroy(config_t *cfg) {
    if (cfg == NULL) return;
    for (size_t i = 0; i < cfg->count; i++) {
        free(cfg->values[i].key);
        free(cfg->values[i].value);
        free(cfg->values[i].origin);
    }
    free(cfg->values);
    free(cfg);
}

/* Checks value against def's type and bounds. */
static int config_value_check(const config_def_t *def, const char *value, char *why, size_t whylen) {
    char *end = NULL;
    switch (def->type) {
    case CONFIG_STRING:
        return 0;
    case CONFIG_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "false") || !strcmp(value, "yes") ||
            !strcmp(value, "no") || !strcmp(value, "1") || !strcmp(value, "0"))
            return 0;
        snprintf(why, whylen, "not a boolean (true/false)");
        return -1;
    case CONFIG_INT: {
        errno = 0;
        long long n = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0') {
            snprintf(why, whylen, "not an integer");
            return -1;
        }
        if (def->min < def->max && ((double)n < def->min || (double)n > def->max)) {
            snprintf(why, whylen, "out of range [%.0f, %.0f]", def->min, def->max);
            return -1;
        }
        return 0;
    }
    case CONFIG_DOUBLE: {
        errno = 0;
        double d = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !isfinite(d)) {
            snprintf(why, whylen, "not a number");
            return -1;
        }
        if (def->min < def->max && (d < def->min || d > def->max)) {
            snprintf(why, whylen, "out of range [%g, %g]", def->min, def->max);
            return -1;
        }
        return 0;
    }
    }
    snprintf(why, whylen, "unknown type");
    return -1;
}

int config_set(config_t *cfg, const char *key, const char *value, const char *origin,
               char *errstr, size_t errlen) {
    const config_def_t *def = config_def_find(cfg, key);
    if (def == NULL && strncmp(key, "kafka.", 6) != 0) {
        snprintf(errstr, errlen, "config key '%s' (%s): unknown key", key, origin);
        return -1;
    }
    if (def == NULL && key[6] == '\0') {
        snprintf(errstr, errlen, "config key '%s' (%s): empty librdkafka property", key, origin);
        return -1;
    }
    char why[128];
    if (def != NULL && config_value_check(def, value, why, sizeof(why)) != 0) {
        snprintf(errstr, errlen, "config key '%s' (%s): %s: '%s'", key, origin, why, value);
        return -1;
    }
    config_value_store(cfg, def, key, value, origin);
    return 0;
}

static char *config_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

int config_set_pair(config_t *cfg, const char *pair, const char *origin, char *errstr,
                    size_t errlen) {
    char *copy = strdup(pair);
    char *eq = strchr(copy, '=');
    int rc;
    if (eq == NULL) {
        snprintf(errstr, errlen, "config (%s): expected key=value, got '%s'", origin, pair);
        rc = -1;
    } else {
        *eq = '\0';
        rc = config_set(cfg, config_trim(copy), config_trim(eq + 1), origin, errstr, errlen);
    }
    free(copy);
    return rc;
}

int config_load_file(config_t *cfg, const char *path, bool optional, char *errstr,
                     size_t errlen) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (optional && errno == ENOENT) return 0;
        snprintf(errstr, errlen, "config file '%s': %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        /* Only whole-line comments: a value (a password in a URL) may hold
         * a '#'. */
        char *s = config_trim(line);
        if (*s == '\0' || *s == '#') continue;
        char origin[512];
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        if (config_set_pair(cfg, s, origin, errstr, errlen) != 0) {
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* Reads the value of a <VAR>_FILE variable: the whole file less its trailing
 * line breaks (editors and `echo` add one; a secret never ends in one).
 * Returns a malloc'd string, or NULL with errstr naming the variable.  The
 * content is never echoed: it is a secret. */
static char *config_env_file_read(const char *var, const char *path, char *errstr, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errstr, errlen, "environment %s: cannot read '%s': %s", var, path, strerror(errno));
        return NULL;
    }
    enum { ENV_FILE_MAX = 65536 };
    char *buf = malloc(ENV_FILE_MAX + 1);
    if (buf == NULL) abort();
    size_t n = fread(buf, 1, ENV_FILE_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > ENV_FILE_MAX) {
        snprintf(errstr, errlen, "environment %s: '%s': %s", var, path,
                 failed ? "read error" : "larger than 64 KiB");
        free(buf);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = '\0';
    if (strlen(buf) != n) {
        snprintf(errstr, errlen, "environment %s: '%s' holds a NUL byte", var, path);
        free(buf);
        return NULL;
    }
    return buf;
}

int config_load_env(config_t *cfg, char *errstr, size_t errlen) {
    for (size_t t = 0; t < 2; t++) {
        for (const config_def_t *d = cfg->tables[t]; d != NULL && d->key != NULL; d++) {
            if (d->env == NULL) continue;
            char file_var[128], origin[4200];
            snprintf(file_var, sizeof(file_var), "%s_FILE", d->env);
            const char *v = getenv(d->env), *path = getenv(file_var);
            if (v != NULL && path != NULL) {
                snprintf(errstr, errlen, "config key '%s': both %s and %s are set; set one", d->key, d->env,
                         file_var);
                return -1;
            }
            if (v != NULL) {
                snprintf(origin, sizeof(origin), "env %s", d->env);
                if (config_set(cfg, d->key, v, origin, errstr, errlen) != 0) return -1;
            } else if (path != NULL) {
                char *value = config_env_file_read(file_var, path, errstr, errlen);
                if (value == NULL) return -1;
                snprintf(origin, sizeof(origin), "env %s (%s)", file_var, path);
                int rc = config_set(cfg, d->key, value, origin, errstr, errlen);
                free(value);
                if (rc != 0) return -1;
            }
        }
    }
    return 0;
}

int config_check_required(const config_t *cfg, char *errstr, size_t errlen) {
    for (size_t t = 0; t < 2; t++) {
        for (const config_def_t *d = cfg->tables[t]; d != NULL && d->key != NULL; d++) {
            if (!d->required) continue;
            const config_value_t *v = config_value_find(cfg, d->key);
            if (v == NULL || v->value[0] == '\0') {
                snprintf(errstr, errlen, "config key '%s': required but not set%s%s", d->key,
                         d->env ? " (environment " : "", d->env ? d->env : "");
                if (d->env) strncat(errstr, ")", errlen - strlen(errstr) - 1);
                return -1;
            }
        }
    }
    return 0;
}

static const config_value_t *config_get(const config_t *cfg, const char *key, config_type_t type) {
    const config_def_t *def = config_def_find(cfg, key);
    if (def == NULL || def->type != type) {
        fprintf(stderr, "config: key '%s' is not declared with that type\n", key);
        abort();
    }
    return config_value_find(cfg, key);
}

const char *config_str(const config_t *cfg, const char *key) {
    const config_value_t *v = config_get(cfg, key, CONFIG_STRING);
    return v ? v->value : NULL;
}

long long config_int(const config_t *cfg, const char *key) {
    const config_value_t *v = config_get(cfg, key, CONFIG_INT);
    return v ? strtoll(v->value, NULL, 10) : 0;
}

double config_double(const config_t *cfg, const char *key) {
    const config_value_t *v = config_get(cfg, key, CONFIG_DOUBLE);
    return v ? strtod(v->value, NULL) : 0.0;
}

bool config_bool(const config_t *cfg, const char *key) {
    const config_value_t *v = config_get(cfg, key, CONFIG_BOOL);
    return v && (!strcmp(v->value, "true") || !strcmp(v->value, "yes") || !strcmp(v->value, "1"));
}

const char *config_origin(const config_t *cfg, const char *key) {
    const config_value_t *v = config_value_find(cfg, key);
    return v ? v->origin : NULL;
}

int config_kafka_foreach(const config_t *cfg, config_kafka_fn fn, void *opaque, char *errstr,
                         size_t errlen) {
    for (size_t i = 0; i < cfg->count; i++) {
        const config_value_t *v = &cfg->values[i];
        /* Every key under the prefix is librdkafka's; the declared ones
         * (bootstrap.servers) are declared only for their env variable. */
        if (strncmp(v->key, "kafka.", 6) != 0) continue;
        if (fn(opaque, v->key + 6, v->value, errstr, errlen) != 0) return -1;
    }
    return 0;
}

void config_print_help(const config_t *cfg, void *file) {
    FILE *f = file;
    fprintf(f, "Configuration keys (defaults -> $ANNOT_CONFIG_DIR/annot.conf -> <binary>.conf ->\n"
               "--config FILE -> environment -> -X key=value; the last one wins):\n");
    for (size_t t = 0; t < 2; t++) {
        for (const config_def_t *d = cfg->tables[t]; d != NULL && d->key != NULL; d++) {
            fprintf(f, "  %-28s %s", d->key, d->help ? d->help : "");
            if (d->default_value && d->default_value[0]) fprintf(f, " [default %s]", d->default_value);
            if (d->env) fprintf(f, " [env %s]", d->env);
            fputc('\n', f);
        }
    }
    fprintf(f, "  %-28s any librdkafka property, e.g. -X kafka.compression.codec=lz4\n", "kafka.<property>");
}
