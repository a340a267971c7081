/* event: event ids and headers.  Originals get random (v4) UUIDs; an event
 * derived from another gets a name-based (v5) UUID of its cause and a
 * purpose, so a replay after a crash re-emits byte-identical ids that
 * downstream ledgers drop as duplicates. */
#ifndef ANNOT_EVENT_H
#define ANNOT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "annot/v1/header.pb-c.h"

#define EVENT_ID_LEN 37 /* 36 characters and the NUL */

void event_id_new(char out[EVENT_ID_LEN]);
/* v5 UUID of (cause, purpose) in the project's namespace. */
void event_id_derive(char out[EVENT_ID_LEN], const char *cause, const char *purpose);
/* true when s is a UUID in canonical text form. */
bool event_id_valid(const char *s);

int64_t event_now_ms(void);

/* Fills hdr (initialised here) pointing at the caller's strings; nothing is
 * copied, so they must outlive the packing. */
void event_header_fill(Annot__V1__EventHeader *hdr, const char *event_id, const char *source,
                       const char *causation_id, const char *guideline_version);

/* Decodes a message of type desc from a topic, and checks what protobuf-c
 * does not: that every string in it, nested messages and repeated fields
 * included, is valid UTF-8 (utf8_proto_strings_valid: proto3 requires it,
 * and PostgreSQL, jansson and the logs refuse anything else, so such an
 * event would fail its batch on every retry and stall the consumer).
 * Returns NULL with errstr "not a <Type>" or naming the first bad field as
 * a path ("applied.name is not valid UTF-8"): the caller dead-letters the
 * message.  Free with protobuf_c_message_free_unpacked or the type's own
 * free function. */
ProtobufCMessage *event_unpack(const ProtobufCMessageDescriptor *desc, const void *payload, size_t len, char *errstr,
                               size_t errlen);
/* Decodes only the header of any top-level message (every one has it as
 * field 1), checking its strings as event_unpack does.  Returns NULL with
 * errstr when the bytes are not protobuf, carry no header or a header
 * string is not UTF-8; free with event_envelope_free. */
Annot__V1__EventEnvelope *event_envelope_decode(const void *payload, size_t len, char *errstr, size_t errlen);
void event_envelope_free(Annot__V1__EventEnvelope *env);

#endif
