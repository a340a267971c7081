/* config: table-driven configuration.  Each binary declares its keys in a
 * table (type, default, environment variable, bounds, help); values are
 * applied defaults -> files -> environment -> command line, the last one
 * wins, and every value is validated when it is set, so a bad value stops the
 * binary at start with the key and where it came from.  Keys under "kafka."
 * are not declared: they pass straight to librdkafka, as kcat's -X does. */
#ifndef ANNOT_CONFIG_H
#define ANNOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    CONFIG_STRING = 0,
    CONFIG_INT,
    CONFIG_DOUBLE,
    CONFIG_BOOL,
} config_type_t;

typedef struct config_def {
    const char *key;
    config_type_t type;
    const char *default_value; /* NULL: no default */
    const char *env;           /* environment variable, or NULL */
    double min, max;           /* bounds for INT and DOUBLE when min < max */
    bool required;             /* must have a value once everything is loaded */
    const char *help;
} config_def_t;

typedef struct config config_t;

/* The keys every binary has (database, Redis, Kafka, log level, ...). */
extern const config_def_t config_common_defs[];

/* Builds a configuration from the common keys plus the binary's own table
 * (terminated by an entry with key NULL; may be NULL) with their defaults. */
config_t *config_new(const config_def_t *defs);
void config_destroy(config_t *cfg);

/* Sets one key; origin says where the value came from, for errors.  Returns
 * 0, or -1 with errstr naming the key. */
int config_set(config_t *cfg, const char *key, const char *value,
               const char *origin, char *errstr, size_t errlen);
/* Sets "key=value". */
int config_set_pair(config_t *cfg, const char *pair, const char *origin,
                    char *errstr, size_t errlen);
/* Loads "key = value" lines (a line starting with '#' is a comment; a '#'
 * later in a line belongs to the value).  A missing file is an
 * error unless optional is true. */
int config_load_file(config_t *cfg, const char *path, bool optional,
                     char *errstr, size_t errlen);
/* Applies every declared key whose environment variable is set.  VAR_FILE
 * names a file holding the value instead (Docker and compose secrets mount
 * them under /run/secrets), its trailing line breaks dropped; setting both
 * VAR and VAR_FILE is an error. */
int config_load_env(config_t *cfg, char *errstr, size_t errlen);
/* Checks that every required key has a value. */
int config_check_required(const config_t *cfg, char *errstr, size_t errlen);

/* Getters of declared keys; asking for an undeclared key or the wrong type is
 * a programming error and aborts. */
const char *config_str(const config_t *cfg, const char *key); /* NULL if unset */
long long config_int(const config_t *cfg, const char *key);
double config_double(const config_t *cfg, const char *key);
bool config_bool(const config_t *cfg, const char *key);
/* Where the current value of key came from ("default", "file:line", ...). */
const char *config_origin(const config_t *cfg, const char *key);

/* Calls fn for every key under "kafka." with the prefix removed. */
typedef int (*config_kafka_fn)(void *opaque, const char *name, const char *value,
                               char *errstr, size_t errlen);
int config_kafka_foreach(const config_t *cfg, config_kafka_fn fn, void *opaque,
                         char *errstr, size_t errlen);

/* Writes the declared keys, their defaults, environment names and help. */
void config_print_help(const config_t *cfg, void *file);

#endif
