/* api: one simulated person's HTTP client of the dispatcher (libcurl, one
 * easy handle per person, kept alive between calls). */
#ifndef SIM_API_H
#define SIM_API_H

#include <jansson.h>
#include <stddef.h>

typedef struct api api_t;

api_t *api_new(const char *base_url, const char *token);
void api_free(api_t *api);

/* method path with body (len bytes, NULL for none).  Returns the HTTP
 * status, or -1 when no answer came (connection refused, timeout); *out
 * (when not NULL) gets the answer's JSON or NULL. */
int api_call(api_t *api, const char *method, const char *path, const char *body, size_t len, json_t **out);
/* The same with a JSON body (not stolen). */
int api_call_json(api_t *api, const char *method, const char *path, const json_t *body, json_t **out);

#endif
