/* The dispatcher's HTTP API through libcurl.  See api.h. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

struct api {
    CURL *curl;
    char *base;
    struct curl_slist *headers;
};

typedef struct body {
    char *p;
    size_t len;
} body_t;

static size_t on_data(char *data, size_t size, size_t n, void *opaque) {
    body_t *b = opaque;
    size_t add = size * n;
    char *p = realloc(b->p, b->len + add + 1);
    if (p == NULL) return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

api_t *api_new(const char *base_url, const char *token) {
    api_t *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->curl = curl_easy_init()) == NULL) abort();
    a->base = strdup(base_url);
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    a->headers = curl_slist_append(NULL, auth);
    a->headers = curl_slist_append(a->headers, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before large bodies. */
    a->headers = curl_slist_append(a->headers, "Expect:");
    return a;
}

void api_free(api_t *a) {
    if (a == NULL) return;
    curl_slist_free_all(a->headers);
    curl_easy_cleanup(a->curl);
    free(a->base);
    free(a);
}

int api_call(api_t *a, const char *method, const char *path, const char *body, size_t len, json_t **out) {
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", a->base, path);
    body_t resp = {NULL, 0};
    CURL *c = a->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, a->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L); /* above the longest long poll (30 s) */
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (out) *out = resp.p && status > 0 ? json_loadb(resp.p, resp.len, 0, NULL) : NULL;
    free(resp.p);
    return (int)status;
}

int api_call_json(api_t *a, const char *method, const char *path, const json_t *body, json_t **out) {
    char *text = json_dumps(body, JSON_COMPACT);
    if (text == NULL) abort();
    int rc = api_call(a, method, path, text, strlen(text), out);
    free(text);
    return rc;
}
