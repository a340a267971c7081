/* annotctl annotators show ID and annotctl annotators reinstate ID.
 *
 * show: an annotator's standing as the funnel keeps it (the funnel's
 * schema): status, locale and skills, the rolling quality over the last K
 * validated submissions since the window last started (K: standing.window,
 * the funnel's key), how many are validated in all, when a suspension
 * began, and every status change with its reason (promotion, probation,
 * suspension, reinstatement) and every refused reinstatement; one JSON
 * document.
 *
 * reinstate: the way back from suspension before the retraining period
 * (standing.retraining.ms) is over, once the annotator was retrained.  The
 * funnel owns standing, so this does not write its tables: it checks that
 * the annotator is suspended, puts a ReinstatementRequested on the
 * candidates topic (key: the annotator id), waits for the delivery report,
 * then for the funnel to apply it (up to admin.timeout.ms), and prints the
 * outcome.  The funnel brings them back on probation with an empty window
 * and announces it with an AnnotatorStatusEvent, which the dispatcher
 * enforces. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "annot/v1/candidate.pb-c.h"
#include "annotctl.h"
#include "event.h"
#include "kafka.h"
#include "pg.h"

/* The funnel's schema, or NULL (with a message) when it has no annotators
 * table yet. */
static pg_t *standing_db_open(service_t *svc) {
    char err[1024];
    const char *schema = config_str(svc->cfg, "funnel.schema");
    pg_t *pg = pg_connect(config_str(svc->cfg, "database.url"), schema, 5, err, sizeof(err));
    if (pg == NULL) {
        fprintf(stderr, "annotctl: postgresql: %s\n", err);
        return NULL;
    }
    const char *p[1] = {schema};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND "
                             "table_name = 'annotator_history'",
                             1, p, err, sizeof(err));
    bool there = res != NULL && PQntuples(res) == 1;
    PQclear(res);
    if (!there) {
        fprintf(stderr, "annotctl: the funnel's schema '%s' has no annotators yet (is annot-funnel running?)\n",
                schema);
        pg_close(pg);
        return NULL;
    }
    return pg;
}

/* The annotator's status, or "" when the funnel does not know them; -1 on
 * a database error. */
static int status_of(pg_t *pg, const char *id, char *status, size_t len) {
    char err[512];
    const char *p[1] = {id};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT status FROM annotators WHERE annotator_id = $1", 1, p, err,
                             sizeof(err));
    if (res == NULL) {
        fprintf(stderr, "annotctl: postgresql: %s\n", err);
        return -1;
    }
    snprintf(status, len, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return 0;
}

int annotctl_annotators_show(service_t *svc, int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "annotctl: annotators show ANNOTATOR_ID\n");
        return 2;
    }
    pg_t *pg = standing_db_open(svc);
    if (pg == NULL) return 1;
    char k[16];
    snprintf(k, sizeof(k), "%lld", (long long)config_int(svc->cfg, "standing.window"));
    const char *p[2] = {argv[0], k};
    /* The window as the funnel judges it: scores validated since the
     * window started, the latest K. */
    int rc = annotctl_show_record(
        pg,
        "SELECT json_build_object('annotator_id', a.annotator_id, 'status', a.status, 'locale', a.locale, 'skills', "
        "a.skills, 'candidate_id', a.candidate_id, 'rolling_quality', w.quality, 'window_count', w.n, "
        "'window_size', $2::int, 'window_start_ms', a.window_start_ms, 'validated_total', "
        "(SELECT count(*) FROM annotator_scores s WHERE s.annotator_id = a.annotator_id), 'suspended_at_ms', "
        "a.suspended_at_ms, 'updated_at_ms', a.updated_at_ms)::text FROM annotators a CROSS JOIN LATERAL "
        "(SELECT avg(score) AS quality, count(*) AS n FROM (SELECT score FROM annotator_scores s WHERE "
        "s.annotator_id = a.annotator_id AND s.validated_at_ms >= a.window_start_ms ORDER BY validated_at_ms DESC, "
        "submission_id DESC LIMIT $2::int) last_k) w WHERE a.annotator_id = $1",
        2, p,
        "SELECT coalesce(json_agg(json_build_object('at_ms', occurred_at_ms, 'kind', kind, 'status', "
        "status, 'previous', previous, 'reason', reason, 'rolling_quality', rolling_quality, "
        "'window_count', window_count, 'event_id', event_id) ORDER BY id), '[]')::text FROM "
        "annotator_history WHERE annotator_id = $1",
        "annotator %s in the funnel's standing");
    pg_close(pg);
    return rc;
}

/* Waits for the funnel's answer to the request cause_id: 0 reinstated, 1
 * refused (its reason printed), -1 not applied within timeout_ms. */
static int outcome_wait(pg_t *pg, const char *id, const char *cause_id, int64_t timeout_ms) {
    char err[512];
    const char *p[2] = {id, cause_id};
    int64_t deadline = event_now_ms() + timeout_ms;
    for (;;) {
        PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                                 "SELECT kind, status, reason FROM annotator_history WHERE annotator_id = $1 AND "
                                 "cause_id = $2 ORDER BY id DESC LIMIT 1",
                                 2, p, err, sizeof(err));
        if (res == NULL) {
            fprintf(stderr, "annotctl: postgresql: %s\n", err);
            return -1;
        }
        if (PQntuples(res) == 1) {
            bool refused = strcmp(PQgetvalue(res, 0, 0), "refused") == 0;
            json_t *o = json_pack("{s:s, s:s, s:s}", "annotator_id", id, "status", PQgetvalue(res, 0, 1), "reason",
                                  PQgetvalue(res, 0, 2));
            char *text = json_dumps(o, JSON_COMPACT);
            if (refused) fprintf(stderr, "annotctl: the funnel refused: %s\n", PQgetvalue(res, 0, 2));
            else printf("%s\n", text);
            free(text);
            json_decref(o);
            PQclear(res);
            return refused ? 1 : 0;
        }
        PQclear(res);
        if (event_now_ms() > deadline) return -1;
        usleep(100 * 1000);
    }
}

int annotctl_annotators_reinstate(service_t *svc, int argc, char **argv) {
    static const struct option opts[] = {
        {"reason", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    const char *reason = NULL;
    int opt;
    /* The command's own options, before or after the id (GNU getopt moves
     * the id to the end): argv[-1] stands in for the program name. */
    optind = 0;
    while ((opt = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
        if (opt != 'r') return 2;
        reason = optarg;
    }
    int rest = argc + 1 - optind;
    if (rest != 1 || reason == NULL || reason[0] == '\0') {
        fprintf(stderr, "annotctl: annotators reinstate ANNOTATOR_ID --reason TEXT\n");
        return 2;
    }
    const char *id = argv[optind - 1];
    if (!event_id_valid(id)) {
        fprintf(stderr, "annotctl: ANNOTATOR_ID: not a user id (UUID): '%s'\n", id);
        return 2;
    }
    pg_t *pg = standing_db_open(svc);
    if (pg == NULL) return 1;
    int rc = 1;
    kafka_producer_t *p = NULL;
    char status[32], err[1024];
    if (status_of(pg, id, status, sizeof(status)) != 0) goto out;
    if (status[0] == '\0') {
        fprintf(stderr, "annotctl: no annotator %s in the funnel's standing\n", id);
        goto out;
    }
    if (strcmp(status, "suspended") != 0) {
        fprintf(stderr, "annotctl: annotator %s is %s, not suspended: nothing to reinstate\n", id, status);
        goto out;
    }
    char event_id[EVENT_ID_LEN];
    event_id_new(event_id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, event_id, "annotctl", "", "");
    Annot__V1__ReinstatementRequested rr = ANNOT__V1__REINSTATEMENT_REQUESTED__INIT;
    rr.reason = (char *)reason;
    rr.requested_at_ms = hdr.occurred_at_ms;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.header = &hdr;
    ev.candidate_id = (char *)id;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_REINSTATEMENT_REQUESTED;
    ev.reinstatement_requested = &rr;
    uint8_t buf[2048];
    if (annot__v1__candidate_event__get_packed_size(&ev) > sizeof(buf)) {
        fprintf(stderr, "annotctl: --reason: too long\n");
        rc = 2;
        goto out;
    }
    size_t len = annot__v1__candidate_event__pack(&ev, buf);
    const char *topic = service_topic(svc, "candidates");
    if (topic == NULL) goto out;
    if ((p = kafka_producer_new(svc->cfg, "annotctl", err, sizeof(err))) == NULL) {
        fprintf(stderr, "annotctl: %s\n", err);
        goto out;
    }
    kafka_delivery_t d;
    if (kafka_produce(p, topic, id, strlen(id), buf, len, &d, err, sizeof(err)) != 0 ||
        kafka_producer_wait(p, &d, 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "annotctl: kafka: %s: nothing requested\n", err);
        goto out;
    }
    int out_rc = outcome_wait(pg, id, event_id, config_int(svc->cfg, "admin.timeout.ms"));
    if (out_rc < 0)
        fprintf(stderr, "annotctl: request %s delivered; the funnel has not applied it yet (see annotators show)\n",
                event_id);
    rc = out_rc == 0 ? 0 : 1;
out:
    kafka_producer_destroy(p, 10000);
    pg_close(pg);
    return rc;
}
