/* auth: see auth.h. */
#include "auth.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

#define AUTH_PREFIX "at_"
#define AUTH_RAW_LEN 32

int auth_init(void) { return sodium_init() < 0 ? -1 : 0; }

static void auth_hash_raw(const char *token, size_t len, uint8_t hash[AUTH_HASH_LEN]) {
    crypto_generichash(hash, AUTH_HASH_LEN, (const unsigned char *)token, len, NULL, 0);
}

void auth_token_new(char token[AUTH_TOKEN_LEN], uint8_t hash[AUTH_HASH_LEN]) {
    unsigned char raw[AUTH_RAW_LEN];
    randombytes_buf(raw, sizeof(raw));
    memcpy(token, AUTH_PREFIX, strlen(AUTH_PREFIX));
    sodium_bin2base64(token + strlen(AUTH_PREFIX), AUTH_TOKEN_LEN - strlen(AUTH_PREFIX), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    auth_hash_raw(token, strlen(token), hash);
}

int auth_token_hash(const char *token, uint8_t hash[AUTH_HASH_LEN]) {
    size_t len = token ? strlen(token) : 0;
    /* "at_" + 43 characters of URL-safe base64 without padding. */
    if (len != strlen(AUTH_PREFIX) + 43 || strncmp(token, AUTH_PREFIX, strlen(AUTH_PREFIX)) != 0) return -1;
    for (size_t i = strlen(AUTH_PREFIX); i < len; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return -1;
    }
    auth_hash_raw(token, len, hash);
    return 0;
}

bool auth_hash_equal(const uint8_t a[AUTH_HASH_LEN], const uint8_t b[AUTH_HASH_LEN]) {
    return sodium_memcmp(a, b, AUTH_HASH_LEN) == 0;
}

const char *auth_bearer(const char *header) {
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0) return NULL;
    header += 7;
    while (*header == ' ') header++;
    return *header ? header : NULL;
}
