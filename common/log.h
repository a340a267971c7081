/* log: one logger for every binary.  JSON lines on stdout, one write(2) per
 * line so lines from several threads never interleave, the level checked
 * before anything is formatted (as serverLog does in Redis). */
#ifndef ANNOT_LOG_H
#define ANNOT_LOG_H

#include <jansson.h>

typedef enum {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_FATAL,
} log_level_t;

extern log_level_t log_min_level;

/* Sets the service name every line carries and the lowest level written. */
void log_init(const char *service, log_level_t min_level);
/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int log_level_parse(const char *name, log_level_t *out);
const char *log_level_name(log_level_t level);
/* Redirects the lines to fd (tests); stdout by default. */
void log_set_fd(int fd);

void log_write(log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes msg with extra structured fields; takes ownership of fields (a JSON
 * object, may be NULL). */
void log_write_fields(log_level_t level, json_t *fields, const char *msg);

#define LOG_AT(level, ...)                                                   \
    do {                                                                     \
        if ((level) >= log_min_level) log_write((level), __VA_ARGS__);       \
    } while (0)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_fatal(...) LOG_AT(LOG_LEVEL_FATAL, __VA_ARGS__)

#endif
