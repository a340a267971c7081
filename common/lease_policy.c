/* lease_policy: see lease_policy.h.  Plain functions over plain values; the
 * only library call beyond libc is config_int() in lease_policy_from_config. */
#include "lease_policy.h"

#include <stdio.h>
#include <string.h>

static const char *const lease_queue_names[LEASE_QUEUE_LAST + 1] = {
    [LEASE_QUEUE_ANNOTATION] = "annotation",
    [LEASE_QUEUE_EXAM] = "exam",
    [LEASE_QUEUE_VALIDATION] = "validation",
};

bool lease_queue_valid(int q) {
    return q >= LEASE_QUEUE_FIRST && q <= LEASE_QUEUE_LAST;
}

const char *lease_queue_name(lease_queue_t q) {
    return lease_queue_valid((int)q) ? lease_queue_names[q] : NULL;
}

int lease_queue_parse(const char *name, lease_queue_t *out) {
    for (int q = LEASE_QUEUE_FIRST; name != NULL && q <= LEASE_QUEUE_LAST; q++) {
        if (strcmp(name, lease_queue_names[q]) == 0) {
            *out = (lease_queue_t)q;
            return 0;
        }
    }
    return -1;
}

/* ---- names ------------------------------------------------------------ */

bool lease_policy_id_valid(const char *id) {
    if (id == NULL) return false;
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++, n++) {
        /* Braces would let an id open a hash tag of its own in a key whose
         * tag is meant to be the queue's; controls and space have no place
         * in an id. */
        if (*c <= 0x20 || *c >= 0x7f || *c == '{' || *c == '}') return false;
        if (n >= LEASE_ID_MAX) return false;
    }
    return n > 0;
}

static bool name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* Length of the name at s up to end (exclusive), or 0 when not a name. */
static size_t name_span(const char *s, const char *end) {
    size_t n = (size_t)(end - s);
    if (n == 0 || n > LEASE_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!name_char((unsigned char)s[i])) return 0;
    }
    return n;
}

bool lease_policy_name_valid(const char *name) {
    return name != NULL && name_span(name, name + strlen(name)) > 0;
}

bool lease_policy_pool_valid(const char *pool) {
    if (pool == NULL) return false;
    const char *slash = strchr(pool, '/');
    if (slash == NULL) return false;
    return name_span(pool, slash) > 0 && name_span(slash + 1, slash + 1 + strlen(slash + 1)) > 0;
}

int lease_policy_pool_name(char *buf, size_t len, const char *locale, const char *skill) {
    if (!lease_policy_name_valid(locale) || !lease_policy_name_valid(skill)) return -1;
    int n = snprintf(buf, len, "%s/%s", locale, skill);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int lease_policy_task_pool(char *buf, size_t len, const char *locale,
                           const char *const *skills, size_t nskills) {
    return lease_policy_pool_name(buf, len, locale, nskills > 0 ? skills[0] : LEASE_GENERAL_SKILL);
}

int lease_policy_person_pools(const char *locale, const char *const *skills, size_t nskills,
                              lease_pool_name_t *out, size_t max, char *errstr, size_t errlen) {
    if (!lease_policy_name_valid(locale)) {
        snprintf(errstr, errlen, "locale: not a locale name");
        return -1;
    }
    size_t count = 0;
    /* The order carries no preference (acquire takes the best head over all
     * the pools); it only makes the list predictable. */
    for (size_t i = 0; i <= nskills; i++) {
        const char *skill = i < nskills ? skills[i] : LEASE_GENERAL_SKILL;
        if (!lease_policy_name_valid(skill)) {
            snprintf(errstr, errlen, "skills[%zu]: not a skill name", i);
            return -1;
        }
        lease_pool_name_t pool;
        if (lease_policy_pool_name(pool, sizeof(pool), locale, skill) < 0) {
            snprintf(errstr, errlen, "skills[%zu]: pool name too long", i);
            return -1;
        }
        bool seen = false;
        for (size_t j = 0; j < count && !seen; j++) seen = strcmp(out[j], pool) == 0;
        if (seen) continue;
        if (count == max) {
            snprintf(errstr, errlen, "skills: more than %zu pools", max);
            return -1;
        }
        memcpy(out[count++], pool, sizeof(pool));
    }
    return (int)count;
}

/* ---- limits ----------------------------------------------------------- */

void lease_policy_defaults(lease_policy_t *p) {
    memset(p, 0, sizeof(*p));
    p->queue[LEASE_QUEUE_ANNOTATION] = (lease_queue_limits_t){300000, 1, 3};
    p->queue[LEASE_QUEUE_EXAM] = (lease_queue_limits_t){1800000, 1, 3};
    p->queue[LEASE_QUEUE_VALIDATION] = (lease_queue_limits_t){600000, 1, 3};
}

int lease_policy_validate(const lease_policy_t *p, char *errstr, size_t errlen) {
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        const lease_queue_limits_t *l = &p->queue[q];
        const char *name = lease_queue_names[q];
        if (l->ttl_ms < LEASE_TTL_MS_MIN || l->ttl_ms > LEASE_TTL_MS_MAX) {
            snprintf(errstr, errlen, "lease.%s.ttl.ms: %lld is not in [%lld, %lld]", name,
                     (long long)l->ttl_ms, LEASE_TTL_MS_MIN, LEASE_TTL_MS_MAX);
            return -1;
        }
        if (l->max_held < 1 || l->max_held > LEASE_MAX_HELD_MAX) {
            snprintf(errstr, errlen, "lease.%s.max.held: %d is not in [1, %d]", name, l->max_held,
                     LEASE_MAX_HELD_MAX);
            return -1;
        }
        if (l->max_attempts < 1 || l->max_attempts > LEASE_MAX_ATTEMPTS_MAX) {
            snprintf(errstr, errlen, "lease.%s.max.attempts: %d is not in [1, %d]", name,
                     l->max_attempts, LEASE_MAX_ATTEMPTS_MAX);
            return -1;
        }
    }
    return 0;
}

int lease_policy_from_config(lease_policy_t *p, const config_t *cfg, char *errstr, size_t errlen) {
    lease_policy_defaults(p);
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        char key[64];
        const char *name = lease_queue_names[q];
        snprintf(key, sizeof(key), "lease.%s.ttl.ms", name);
        p->queue[q].ttl_ms = (int64_t)config_int(cfg, key);
        snprintf(key, sizeof(key), "lease.%s.max.held", name);
        p->queue[q].max_held = (int)config_int(cfg, key);
        snprintf(key, sizeof(key), "lease.%s.max.attempts", name);
        p->queue[q].max_attempts = (int)config_int(cfg, key);
    }
    return lease_policy_validate(p, errstr, errlen);
}

int64_t lease_policy_ttl_ms(const lease_policy_t *p, lease_queue_t q) {
    return lease_queue_valid((int)q) ? p->queue[q].ttl_ms : 0;
}

int lease_policy_max_held(const lease_policy_t *p, lease_queue_t q) {
    return lease_queue_valid((int)q) ? p->queue[q].max_held : 0;
}

int lease_policy_max_attempts(const lease_policy_t *p, lease_queue_t q) {
    return lease_queue_valid((int)q) ? p->queue[q].max_attempts : 0;
}

bool lease_policy_uses_own_queue(lease_queue_t q) {
    return q == LEASE_QUEUE_EXAM || q == LEASE_QUEUE_VALIDATION;
}

bool lease_policy_excludes_author(lease_queue_t q) {
    return q == LEASE_QUEUE_VALIDATION;
}

bool lease_policy_park(uint32_t expired_attempts, int max_attempts) {
    /* max_attempts below 1 is refused by validation; treat it as 1 rather
     * than requeueing forever. */
    uint32_t max = max_attempts < 1 ? 1u : (uint32_t)max_attempts;
    return expired_attempts >= max;
}

int lease_policy_park_reason(char *buf, size_t len, uint32_t expired_attempts) {
    return snprintf(buf, len, "%u lease%s expired", expired_attempts, expired_attempts == 1 ? "" : "s");
}

/* ---- order -------------------------------------------------------------- */

bool lease_policy_priority_valid(long long priority) {
    return priority >= 0 && priority <= LEASE_PRIORITY_MAX;
}

double lease_policy_queue_score(int priority, uint64_t seq) {
    if (priority < 0) priority = 0;
    if (priority > LEASE_PRIORITY_MAX) priority = LEASE_PRIORITY_MAX;
    uint64_t rank = (uint64_t)(LEASE_PRIORITY_MAX - priority);
    uint64_t mask = ((uint64_t)1 << LEASE_SEQ_BITS) - 1;
    return (double)((rank << LEASE_SEQ_BITS) | (seq & mask));
}

/* ---- lease ids ---------------------------------------------------------- */

static bool hex_lower(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

void lease_policy_lease_id_mark(char id[LEASE_ID_LEN], lease_queue_t q) {
    id[35] = (char)('0' + (int)q);
}

int lease_policy_lease_id_queue(const char *id, lease_queue_t *q) {
    if (id == NULL) return -1;
    size_t i = 0;
    for (; id[i] != '\0' && i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? id[i] != '-' : !hex_lower(id[i])) return -1;
    }
    if (i != 36 || id[36] != '\0') return -1;
    int digit = id[35] - '0';
    if (!lease_queue_valid(digit)) return -1;
    *q = (lease_queue_t)digit;
    return 0;
}

/* ---- keys --------------------------------------------------------------- */

bool lease_policy_ns_valid(const char *ns) {
    if (ns == NULL) return false;
    size_t n = strlen(ns);
    if (n == 0 || n > LEASE_NS_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        if (!name_char((unsigned char)ns[i]) && ns[i] != '.') return false;
    }
    return true;
}

int lease_key(char *buf, size_t len, const char *ns, lease_queue_t q, lease_key_t kind,
              const char *id) {
    static const char *const suffix[] = {
        [LEASE_KEY_BASE] = "",
        [LEASE_KEY_POOL] = LEASE_SUFFIX_POOL,
        [LEASE_KEY_OWN] = LEASE_SUFFIX_OWN,
        [LEASE_KEY_TASK] = LEASE_SUFFIX_TASK,
        [LEASE_KEY_LEASE] = LEASE_SUFFIX_LEASE,
        [LEASE_KEY_HELD] = LEASE_SUFFIX_HELD,
        [LEASE_KEY_PAYLOAD] = LEASE_SUFFIX_PAYLOAD,
        [LEASE_KEY_EXPIRY] = LEASE_SUFFIX_EXPIRY,
        [LEASE_KEY_PARKED] = LEASE_SUFFIX_PARKED,
        [LEASE_KEY_SEQ] = LEASE_SUFFIX_SEQ,
        [LEASE_KEY_POOLS] = LEASE_SUFFIX_POOLS,
        [LEASE_KEY_WAKE] = LEASE_SUFFIX_WAKE,
        [LEASE_KEY_EVENTS] = LEASE_SUFFIX_EVENTS,
        [LEASE_KEY_RELAY] = LEASE_SUFFIX_RELAY,
        [LEASE_KEY_UNCONFIRMED] = LEASE_SUFFIX_UNCONFIRMED,
        [LEASE_KEY_SEEN] = LEASE_SUFFIX_SEEN,
    };
    if (!lease_policy_ns_valid(ns) || !lease_queue_valid((int)q)) return -1;
    if ((int)kind < LEASE_KEY_BASE || kind > LEASE_KEY_SEEN) return -1;
    bool with_id = kind >= LEASE_KEY_POOL && kind <= LEASE_KEY_PAYLOAD;
    if (with_id) {
        lease_queue_t lq;
        bool ok = kind == LEASE_KEY_POOL    ? lease_policy_pool_valid(id)
                  : kind == LEASE_KEY_LEASE ? lease_policy_lease_id_queue(id, &lq) == 0 && lq == q
                                            : lease_policy_id_valid(id);
        if (!ok) return -1;
    } else if (id != NULL) {
        return -1;
    }
    int n = snprintf(buf, len, "{%s:q:%s}%s%s", ns, lease_queue_names[q], suffix[kind],
                     with_id ? id : "");
    return n < 0 || (size_t)n >= len ? -1 : n;
}
