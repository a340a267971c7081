/* utf8: text from outside checked before it goes where only valid UTF-8
 * may go.  PostgreSQL refuses invalid UTF-8 in text and jsonb, so an event
 * holding some would fail its transaction on every retry and stall the
 * consumer: its strings are checked up front and the event dead-lettered
 * instead, naming the field (protobuf-c does not check proto3 strings).
 * And a name from a request (an unknown JSON key, say) is quoted in an
 * error message only in part: short, and cut on a code point boundary, so
 * that the message stays valid UTF-8 whatever the name was. */
#ifndef ANNOT_UTF8_H
#define ANNOT_UTF8_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..len) is valid UTF-8 (NUL bytes count as valid). */
bool utf8_valid(const char *s, size_t len);

/* 0 when every string field of msg (nested messages and repeated fields
 * included) is valid UTF-8; -1 with errstr naming the first bad field as a
 * path, e.g. "result.errors[1].section". */
int utf8_proto_strings_valid(const ProtobufCMessage *msg, char *errstr, size_t errlen);

/* The longest name utf8_quote copies whole, in bytes. */
#define UTF8_QUOTE_MAX 64

/* Copies into out (UTF8_QUOTE_MAX + 1 bytes at least) the part of s to
 * quote in a message: s itself when it is valid UTF-8 of at most
 * UTF8_QUOTE_MAX bytes; otherwise its longest valid prefix that leaves room
 * for "..." within UTF8_QUOTE_MAX bytes, then "...".  Returns out. */
const char *utf8_quote(char *out, size_t outlen, const char *s);

#endif
