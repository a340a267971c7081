/* validate: every string of a decoded event must be valid UTF-8 before it
 * reaches PostgreSQL.  protobuf-c does not check proto3 strings, and
 * PostgreSQL refuses invalid UTF-8 in text and jsonb: such a value would
 * fail the batch's transaction on every retry and stall the consumer.
 * Checked up front, the event is dead-lettered instead, naming the field. */
#ifndef METRICS_VALIDATE_H
#define METRICS_VALIDATE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* 0 when every string field of msg (nested messages and repeated fields
 * included) is valid UTF-8; -1 with errstr naming the first bad field as a
 * path, e.g. "result.errors[1].section". */
int validate_strings(const ProtobufCMessage *msg, char *errstr, size_t errlen);

#endif
