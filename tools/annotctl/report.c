/* annotctl report: the operation's report, read from annot-metrics' SQL
 * views (docs/METRICS.md): the funnel by stage, quality against the target,
 * throughput and latency, lease health, validator agreement, auto-check
 * precision and guideline hot spots.  All time by default; --day
 * YYYY-MM-DD restricts the windowed sections to that UTC day (the funnel
 * then shows that day's cohort), --version V to one guideline version. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annotctl.h"
#include "pg.h"

typedef struct report {
    pg_t *pg;
    const char *version; /* "" = every version */
    const char *day;     /* NULL = all time */
    int rc;
} report_t;

/* Runs sql with $1 = version, $2 = day-or-NULL and prints each row through
 * fmt's columns; a header line first.  Returns the number of rows. */
static int report_rows(report_t *r, const char *title, const char *header, const char *sql,
                       void (*row)(PGresult *res, int i)) {
    char err[1024];
    const char *params[2] = {r->version, r->day};
    PGresult *res = pg_query(r->pg, PGRES_TUPLES_OK, sql, 2, params, err, sizeof(err));
    printf("\n== %s\n", title);
    if (res == NULL) {
        printf("   (unavailable: %s)\n", err);
        r->rc = 1;
        return 0;
    }
    int n = PQntuples(res);
    if (n == 0) {
        printf("   (no data)\n");
    } else {
        printf("%s\n", header);
        for (int i = 0; i < n; i++) row(res, i);
    }
    PQclear(res);
    return n;
}

static const char *v(PGresult *res, int i, int c) { return PQgetisnull(res, i, c) ? "-" : PQgetvalue(res, i, c); }
static double d(PGresult *res, int i, int c) { return PQgetisnull(res, i, c) ? 0.0 : strtod(PQgetvalue(res, i, c), NULL); }

/* The window condition every windowed section shares. */
#define WINDOW_OF(a)                                                                                              \
    " " a "guideline_version = $1 AND (($2::text IS NULL AND " a "window_kind = 'all') OR (" a                     \
    "window_kind = 'day' AND " a "window_start = $2::date::timestamp AT TIME ZONE 'UTC')) "
#define WINDOW_WHERE WINDOW_OF("")

static void row_funnel(PGresult *res, int i) {
    printf("   %-10s %8s %8s %8s %9.1f %%  %s\n", v(res, i, 0), v(res, i, 1), v(res, i, 2), v(res, i, 3),
           100 * d(res, i, 4), PQgetisnull(res, i, 5) ? "-" : v(res, i, 5));
}

static void row_quality(PGresult *res, int i) {
    printf("   %-10s %-24.24s %9s %8s %8s %9.2f %%  %6.2f %%  %s\n", v(res, i, 0), v(res, i, 1), v(res, i, 2),
           v(res, i, 3), v(res, i, 4), 100 * d(res, i, 5), 100 * d(res, i, 6),
           PQgetvalue(res, i, 7)[0] == 't' ? "on target" : "BELOW");
}

/* A whole number of milliseconds, or "-" when the step has no latency. */
static const char *ms(PGresult *res, int i, int c, char *buf, size_t len) {
    if (PQgetisnull(res, i, c)) return "-";
    snprintf(buf, len, "%.0f", d(res, i, c));
    return buf;
}

static void row_throughput(PGresult *res, int i) {
    char a[32], b[32], c[32], e[32];
    printf("   %-24s %10s %12s %10s %10s %10s\n", v(res, i, 0), v(res, i, 1), ms(res, i, 2, a, sizeof(a)),
           ms(res, i, 3, b, sizeof(b)), ms(res, i, 4, c, sizeof(c)), ms(res, i, 5, e, sizeof(e)));
}

static void row_leases(PGresult *res, int i) {
    printf("   %-11s %8s %8s %8.1f %% %9s %9s %7s %10s %12.0f %12.0f\n", v(res, i, 0), v(res, i, 1), v(res, i, 2),
           100 * d(res, i, 3), v(res, i, 4), v(res, i, 5), v(res, i, 6), v(res, i, 7), d(res, i, 8), d(res, i, 9));
}

static void row_agreement(PGresult *res, int i) {
    printf("   %-38.38s %7s %7s %8.3f %10.3f\n", v(res, i, 0), v(res, i, 1), v(res, i, 2), d(res, i, 3), d(res, i, 4));
}

/* A rate over nothing is shown as "-", not as 0 %. */
static void percent(char *out, size_t len, double value, int defined) {
    if (defined) snprintf(out, len, "%.1f %%", 100 * value);
    else snprintf(out, len, "-");
}

static void row_precision(PGresult *res, int i) {
    char p[32], rc[32];
    long flagged = atol(v(res, i, 1)), confirmed = atol(v(res, i, 2)), missed = atol(v(res, i, 3));
    percent(p, sizeof(p), d(res, i, 4), flagged > 0);
    percent(rc, sizeof(rc), d(res, i, 5), confirmed + missed > 0);
    printf("   %-28s %8s %10s %7s %11s %9s\n", v(res, i, 0), v(res, i, 1), v(res, i, 2), v(res, i, 3), p, rc);
}

static void row_hotspot(PGresult *res, int i) {
    printf("   %-9s %9s %7s   %s\n", v(res, i, 0), v(res, i, 1), v(res, i, 2), v(res, i, 3));
}

int annotctl_report(service_t *svc, int argc, char **argv) {
    static const struct option opts[] = {
        {"version", required_argument, NULL, 'v'},
        {"day", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    report_t r = {NULL, "", NULL, 0};
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc + 1, argv - 1, "+", opts, NULL)) != -1) {
        switch (opt) {
        case 'v': r.version = optarg; break;
        case 'd': r.day = optarg; break;
        default:
            fprintf(stderr, "annotctl: report [--version V] [--day YYYY-MM-DD]\n");
            return 2;
        }
    }
    if (optind - 1 < argc) {
        fprintf(stderr, "annotctl: report [--version V] [--day YYYY-MM-DD]\n");
        return 2;
    }
    char err[1024];
    r.pg = pg_connect(config_str(svc->cfg, "database.url"), config_str(svc->cfg, "metrics.schema"), 5, err,
                      sizeof(err));
    if (r.pg == NULL) {
        fprintf(stderr, "annotctl: postgresql: %s\n", err);
        return 1;
    }
    /* A database annot-metrics never ran against has no views: say so once
     * rather than failing every section. */
    PGresult *res = pg_query(r.pg, PGRES_TUPLES_OK, "SELECT to_regclass('quality') IS NOT NULL", 0, NULL, err,
                             sizeof(err));
    int has_views = res && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!has_views) {
        fprintf(stderr, "annotctl: schema '%s' has no metric views; has annot-metrics run against this database?\n",
                config_str(svc->cfg, "metrics.schema"));
        pg_close(r.pg);
        return 1;
    }
    printf("Annotation operation report: %s, guideline version %s\n", r.day ? r.day : "all time",
           r.version[0] ? r.version : "(all)");

    report_rows(&r, "Funnel by stage (candidates)",
                "   stage       entered   passed   failed  pass rate  mean time in stage (s)",
                "SELECT stage, entered, passed, failed, pass_rate, round(mean_time_in_stage_s::numeric, 0) "
                "FROM funnel WHERE guideline_version = $1 AND cohort_day = coalesce($2, '') "
                "ORDER BY array_position(ARRAY['applied','screening','training','exam1','exam2','approved',"
                "'rejected'], stage)",
                row_funnel);
    report_rows(&r, "Quality level against target",
                "   dimension  value                    validated accepted rejected   quality   target",
                "SELECT dimension, value, validated, accepted, rejected, quality_level, target, on_target "
                "FROM quality WHERE" WINDOW_WHERE
                "AND (dimension <> 'annotator' OR value IN (SELECT value FROM quality q2 WHERE q2.dimension = "
                "'annotator' AND q2.guideline_version = quality.guideline_version AND q2.window_kind = "
                "quality.window_kind AND q2.window_start = quality.window_start ORDER BY q2.quality_level, "
                "q2.value LIMIT 10)) "
                "ORDER BY array_position(ARRAY['all','task_kind','locale','annotator'], dimension), "
                "quality_level, value",
                row_quality);
    report_rows(&r, "Throughput and latency by step (ms)",
                "   step                          items      mean ms        p50        p90        p99",
                "SELECT t.step, t.items, l.mean_ms, l.p50_ms, l.p90_ms, l.p99_ms FROM throughput t "
                "LEFT JOIN latency l ON l.metric = 'latency_ms' AND l.step = t.step AND l.window_kind = "
                "t.window_kind AND l.window_start = t.window_start AND l.guideline_version = t.guideline_version "
                "WHERE" WINDOW_OF("t.") " UNION ALL "
                "SELECT 'end_to_end (latency)', observations, mean_ms, p50_ms, p90_ms, p99_ms FROM latency "
                "WHERE metric = 'latency_ms' AND step = 'end_to_end' AND" WINDOW_WHERE
                "ORDER BY 1",
                row_throughput);
    report_rows(&r, "Lease health",
                "   queue        granted  expired  expiry  released submitted  parked heartbeats  submit p50 ms "
                "   hb gap p50",
                "SELECT h.queue, h.granted, h.expired, h.expiry_rate, h.released, h.submitted, h.parked, "
                "h.heartbeats, s.p50_ms, g.p50_ms FROM lease_health h "
                "LEFT JOIN latency s ON s.metric = 'lease.time_to_submit_ms' AND s.step = h.queue AND "
                "s.window_kind = h.window_kind AND s.window_start = h.window_start AND s.guideline_version = "
                "h.guideline_version "
                "LEFT JOIN latency g ON g.metric = 'lease.heartbeat_gap_ms' AND g.step = h.queue AND "
                "g.window_kind = h.window_kind AND g.window_start = h.window_start AND g.guideline_version = "
                "h.guideline_version "
                "WHERE" WINDOW_OF("h.") "ORDER BY h.queue",
                row_leases);
    report_rows(&r, "Validator agreement (double-validated pairs)",
                "   validator                                pairs  agreed    kappa  mean |diff|",
                "SELECT CASE WHEN validator = '' THEN '(all pairs)' ELSE validator END, pairs, agreed, kappa, "
                "mean_abs_score_diff FROM validator_agreement WHERE" WINDOW_WHERE "ORDER BY validator <> '', kappa",
                row_agreement);
    report_rows(&r, "Auto-check precision against validators",
                "   rule                          flagged  confirmed  missed   precision    recall",
                "SELECT CASE WHEN rule = '' THEN '(all rules)' ELSE rule END, flagged, confirmed, missed, precision, "
                "recall FROM autocheck_precision WHERE" WINDOW_WHERE "ORDER BY rule <> '', rule",
                row_precision);
    report_rows(&r, "Guideline hot spots (top 10 sections)",
                "   section    feedback  errors   by kind",
                "SELECT CASE WHEN s.section = '' THEN '(none)' ELSE s.section END, s.feedback_count, s.error_count, "
                "coalesce((SELECT string_agg(k.kind || ' ' || k.feedback_count, ', ' ORDER BY k.feedback_count DESC) "
                "FROM guideline_hotspots k WHERE k.kind <> '' AND k.section = s.section AND k.window_kind = "
                "s.window_kind AND k.window_start = s.window_start AND k.guideline_version = s.guideline_version), "
                "'') FROM guideline_hotspots s WHERE s.kind = '' AND" WINDOW_OF("s.")
                "ORDER BY s.feedback_count + s.error_count DESC, s.section LIMIT 10",
                row_hotspot);
    pg_close(r.pg);
    return r.rc;
}
