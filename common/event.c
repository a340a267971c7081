/* event: see event.h. */
#include "event.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

#include "utf8.h"

/* The project's UUID namespace for derived ids (a fixed random v4). */
static const uuid_t event_namespace = {0x6b, 0x1e, 0x4a, 0x52, 0x93, 0x0c, 0x4f, 0x7e,
                                       0x9d, 0x31, 0x2c, 0x58, 0xa0, 0x47, 0xe2, 0x19};

/* 16 bytes from getrandom(2), stamped as a v4 UUID (RFC 4122 4.4): one
 * system call, where libuuid's uuid_generate_random makes six (it stirs
 * its own PRNG with getpid, getppid, gettid and getuid besides), about
 * 3 us against 0.7 us here.  A lease id is made on every lease, on the
 * lease latency's critical path.  Without getrandom (ENOSYS), libuuid. */
void event_id_new(char out[EVENT_ID_LEN]) {
    uuid_t u;
    size_t got = 0;
    while (got < sizeof(u)) {
        ssize_t n = getrandom(u + got, sizeof(u) - got, 0);
        if (n > 0) got += (size_t)n;
        else if (n == 0 || errno != EINTR) break;
    }
    if (got < sizeof(u)) uuid_generate_random(u);
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    uuid_unparse_lower(u, out);
}

void event_id_derive(char out[EVENT_ID_LEN], const char *cause, const char *purpose) {
    /* The whole of both strings is hashed: cutting them to a fixed buffer
     * gave long inputs that differ at the end the same id (and a cause
     * longer than the buffer overflowed it). */
    char stack[512];
    size_t cl = strlen(cause), pl = strlen(purpose);
    char *name = cl + 1 + pl <= sizeof(stack) ? stack : malloc(cl + 1 + pl);
    if (name == NULL) abort();
    memcpy(name, cause, cl);
    name[cl] = '/'; /* a separator no UUID contains */
    memcpy(name + cl + 1, purpose, pl);
    uuid_t u;
    uuid_generate_sha1(u, event_namespace, name, cl + 1 + pl);
    uuid_unparse_lower(u, out);
    if (name != stack) free(name);
}

bool event_id_valid(const char *s) {
    /* Canonical means lower case too: the id is a dedupe key, and "A" and
     * "a" would be two keys for one event. */
    uuid_t u;
    if (s == NULL || strlen(s) != 36 || uuid_parse(s, u) != 0) return false;
    for (const char *c = s; *c; c++) {
        if (*c >= 'A' && *c <= 'F') return false;
    }
    return true;
}

int64_t event_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void event_header_fill(Annot__V1__EventHeader *hdr, const char *event_id, const char *source,
                       const char *causation_id, const char *guideline_version) {
    annot__v1__event_header__init(hdr);
    hdr->event_id = (char *)event_id;
    hdr->occurred_at_ms = event_now_ms();
    hdr->source = (char *)source;
    hdr->causation_id = (char *)(causation_id ? causation_id : "");
    hdr->guideline_version = (char *)(guideline_version ? guideline_version : "");
}

ProtobufCMessage *event_unpack(const ProtobufCMessageDescriptor *desc, const void *payload, size_t len, char *errstr,
                               size_t errlen) {
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, payload);
    if (msg == NULL) {
        snprintf(errstr, errlen, "not a %s", desc->short_name);
        return NULL;
    }
    if (utf8_proto_strings_valid(msg, errstr, errlen) != 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return NULL;
    }
    return msg;
}

Annot__V1__EventEnvelope *event_envelope_decode(const void *payload, size_t len, char *errstr, size_t errlen) {
    Annot__V1__EventEnvelope *env = annot__v1__event_envelope__unpack(NULL, len, payload);
    if (env == NULL || env->header == NULL) {
        snprintf(errstr, errlen, "not a protobuf message with an event header");
        if (env) annot__v1__event_envelope__free_unpacked(env, NULL);
        return NULL;
    }
    /* The other fields are unknown to the envelope: their strings are the
     * consumer's event_unpack's to check. */
    if (utf8_proto_strings_valid(&env->base, errstr, errlen) != 0) {
        annot__v1__event_envelope__free_unpacked(env, NULL);
        return NULL;
    }
    return env;
}

void event_envelope_free(Annot__V1__EventEnvelope *env) {
    if (env) annot__v1__event_envelope__free_unpacked(env, NULL);
}
