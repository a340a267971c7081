/* utf8: see utf8.h.  Event strings are checked by walking the message by
 * its descriptor. */
#include "utf8.h"

#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

/* The length of the valid UTF-8 character at s[0..len), or -1. */
static utf8proc_ssize_t char_len(const char *s, size_t len) {
    utf8proc_int32_t cp;
    return utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &cp);
}

bool utf8_valid(const char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_ssize_t n = char_len(s + i, len - i);
        if (n <= 0) return false;
        i += (size_t)n;
    }
    return true;
}

static int walk(const ProtobufCMessage *msg, char *path, size_t plen, size_t cap, char *errstr, size_t errlen) {
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        /* A oneof member that is not the one set shares its storage with
         * the one that is: skip it. */
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t set = *(const uint32_t *)((const char *)msg + fd->quantifier_offset);
            if (set != fd->id) continue;
        }
        const char *member = (const char *)msg + fd->offset;
        size_t count = 1;
        const void *const *items = (const void *const *)member;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *)((const char *)msg + fd->quantifier_offset);
            items = *(const void *const *const *)member;
        }
        for (size_t i = 0; i < count; i++) {
            const void *item = items[i];
            if (item == NULL) continue;
            int n = fd->label == PROTOBUF_C_LABEL_REPEATED
                        ? snprintf(path + plen, cap - plen, "%s%s[%zu]", plen ? "." : "", fd->name, i)
                        : snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", fd->name);
            size_t sub = n > 0 && (size_t)n < cap - plen ? plen + (size_t)n : cap - 1;
            if (fd->type == PROTOBUF_C_TYPE_STRING) {
                if (!utf8_valid(item, strlen(item))) {
                    snprintf(errstr, errlen, "%s is not valid UTF-8", path);
                    return -1;
                }
            } else if (walk(item, path, sub, cap, errstr, errlen) != 0) {
                return -1;
            }
            path[plen] = '\0';
        }
    }
    return 0;
}

int utf8_proto_strings_valid(const ProtobufCMessage *msg, char *errstr, size_t errlen) {
    char path[512] = "";
    return walk(msg, path, 0, sizeof(path), errstr, errlen);
}

const char *utf8_quote(char *out, size_t outlen, const char *s) {
    static const char more[] = "...";
    size_t limit = outlen - 1 < UTF8_QUOTE_MAX ? outlen - 1 : UTF8_QUOTE_MAX;
    size_t len = strnlen(s, limit + 1);
    if (len <= limit && utf8_valid(s, len)) {
        memcpy(out, s, len);
        out[len] = '\0';
        return out;
    }
    /* Whole characters only, up to the first invalid byte. */
    size_t room = limit - (sizeof(more) - 1), o = 0;
    while (o < room && s[o] != '\0') {
        utf8proc_ssize_t n = (unsigned char)s[o] < 0x80 ? 1 : char_len(s + o, strnlen(s + o, 4));
        if (n <= 0 || o + (size_t)n > room) break;
        o += (size_t)n;
    }
    memcpy(out, s, o);
    memcpy(out + o, more, sizeof(more));
    return out;
}
