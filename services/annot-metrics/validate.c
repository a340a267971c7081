/* validate: see validate.h.  Walks the message by its descriptor. */
#include "validate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

static bool utf8_valid(const char *s) {
    utf8proc_ssize_t len = (utf8proc_ssize_t)strlen(s);
    for (utf8proc_ssize_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i, len - i, &cp);
        if (n <= 0) return false;
        i += n;
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
                if (!utf8_valid(item)) {
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

int validate_strings(const ProtobufCMessage *msg, char *errstr, size_t errlen) {
    char path[512] = "";
    return walk(msg, path, 0, sizeof(path), errstr, errlen);
}
