/* redis: one hiredis connection with reconnect, and Lua scripts run by
 * EVALSHA.  A NULL reply from hiredis means the connection is dead: the call
 * returns NULL and the next call reconnects first.  Nothing is retried
 * behind the caller's back, since a command may have run before the
 * connection broke; the one exception is NOSCRIPT, which proves the script
 * did not run.  Not thread-safe: one redis_t per thread. */
#ifndef ANNOT_REDIS_H
#define ANNOT_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct redis redis_t;

typedef struct redis_script {
    const char *source;
    char sha[41]; /* filled in by the first load */
} redis_script_t;

/* Parses redis://[[user]:password@]host:port[/db] (user and password
 * %XX-escaped; with a user, AUTH user password for a Redis 6 ACL user) and
 * connects (timeout 2 s).  hiredis 0.14 has no TLS: a rediss:// URL fails
 * here saying so; the images' entrypoint (docker/entrypoint.sh) serves it
 * through stunnel, see docs/OPERATIONS.md. */
redis_t *redis_connect(const char *url, char *errstr, size_t errlen);
void redis_close(redis_t *r);

/* Runs a command (hiredis format); NULL when the connection failed, with
 * errstr set.  The caller freeReplyObject()s the reply. */
redisReply *redis_command(redis_t *r, char *errstr, size_t errlen, const char *fmt, ...);
redisReply *redis_command_argv(redis_t *r, int argc, const char **argv, const size_t *lens,
                               char *errstr, size_t errlen);
/* Runs script with nkeys keys followed by the arguments in argv. */
redisReply *redis_script_run(redis_t *r, redis_script_t *script, int nkeys, int argc,
                             const char **argv, const size_t *lens, char *errstr, size_t errlen);
/* The hiredis context, for what this module does not wrap (SUBSCRIBE);
 * NULL when not connected. */
redisContext *redis_context(redis_t *r);
/* 0 when PING answers PONG. */
int redis_ping(redis_t *r);

#endif
