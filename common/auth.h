/* auth: bearer tokens.  A token is 32 random bytes from libsodium, shown to
 * its owner once as "at_" + URL-safe base64; only its BLAKE2b-256 hash is
 * stored.  With 256 bits of entropy a fast unsalted hash is enough (nothing
 * to brute-force), and it lets the server find the user by the hash; the
 * final comparison is constant-time. */
#ifndef ANNOT_AUTH_H
#define ANNOT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_TOKEN_LEN 64  /* text, with the NUL */
#define AUTH_HASH_LEN 32

/* 0, or -1 when libsodium cannot start. */
int auth_init(void);
/* A new token and its hash. */
void auth_token_new(char token[AUTH_TOKEN_LEN], uint8_t hash[AUTH_HASH_LEN]);
/* The hash of a presented token; -1 when it is not shaped like one of ours
 * (no database lookup needed for garbage). */
int auth_token_hash(const char *token, uint8_t hash[AUTH_HASH_LEN]);
/* Constant-time equality of two hashes. */
bool auth_hash_equal(const uint8_t a[AUTH_HASH_LEN], const uint8_t b[AUTH_HASH_LEN]);
/* The token of an "Authorization: Bearer <token>" header value, or NULL. */
const char *auth_bearer(const char *header);

#endif
