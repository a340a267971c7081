/* The run's report as one HTML page, no scripts and no external files:
 * the funnel by stage (annot-metrics' funnel view) and the quality of each
 * simulated day against the 95 % target as inline SVG charts, then the
 * whole of `annotctl report`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "sim.h"

static void html_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *const stage_order[] = {"applied", "screening", "training", "exam1", "exam2", "approved"};
#define NSTAGES 6

/* Bars of entered (light) and passed (dark) per stage. */
static void funnel_chart(FILE *f, long entered[NSTAGES], long passed[NSTAGES]) {
    long max = 1;
    for (int i = 0; i < NSTAGES; i++) max = entered[i] > max ? entered[i] : max;
    int w = 640, row = 34, left = 110;
    fprintf(f, "<svg width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"funnel by stage\">\n", w + 60,
            row * NSTAGES + 10);
    for (int i = 0; i < NSTAGES; i++) {
        int y = 5 + i * row;
        double we = (double)(w - left) * (double)entered[i] / (double)max;
        double wp = (double)(w - left) * (double)passed[i] / (double)max;
        fprintf(f, "<text x=\"0\" y=\"%d\" font-size=\"13\">%s</text>\n", y + 18, stage_order[i]);
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"24\" fill=\"#c6dbef\"/>\n", left, y, we);
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"24\" fill=\"#2171b5\"/>\n", left, y, wp);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">%ld entered, %ld passed</text>\n", left + we + 6, y + 17,
                entered[i], passed[i]);
    }
    fputs("</svg>\n", f);
}

/* One bar per simulated day, the target as a red line. */
static void quality_chart(FILE *f, const sim_t *s) {
    int w = 640, h = 220, bottom = h - 25, n = s->days < SIM_DAYS_MAX ? s->days : SIM_DAYS_MAX;
    double lo = 0.5; /* the axis starts at 50 % so differences near the target show */
    double slot = (double)(w - 50) / n;
    fprintf(f, "<svg width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"quality by day\">\n", w, h);
    for (int pct = 50; pct <= 100; pct += 10) {
        double y = bottom - (pct / 100.0 - lo) / (1 - lo) * (bottom - 10);
        fprintf(f, "<text x=\"0\" y=\"%.1f\" font-size=\"11\">%d %%</text>"
                   "<line x1=\"40\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", y + 4, pct, w, y, y);
    }
    for (int d = 0; d < n; d++) {
        double x = 50 + d * slot;
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">day %d</text>\n", x + slot / 2 - 16, h - 5, d + 1);
        if (s->day_verdicts[d] == 0) continue;
        double q = s->day_score[d] / (double)s->day_verdicts[d];
        double top = bottom - ((q < lo ? lo : q) - lo) / (1 - lo) * (bottom - 10);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%.1f %% (%ld)</text>\n",
                x + slot * 0.15, top, slot * 0.7, bottom - top, q >= 0.95 ? "#41ab5d" : "#fd8d3c", x + slot * 0.15,
                top - 4, 100 * q, s->day_verdicts[d]);
    }
    double ty = bottom - (0.95 - lo) / (1 - lo) * (bottom - 10);
    fprintf(f, "<line x1=\"40\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#cb181d\" stroke-dasharray=\"6 3\"/>"
               "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" fill=\"#cb181d\" text-anchor=\"end\">target 95 %%</text>\n",
            w, ty, ty, w, ty - 3);
    fputs("</svg>\n", f);
}

int report_html(sim_t *s, const char *path, const char *report_text, const char *db_url, const char *metrics_schema,
                char *errstr, size_t errlen) {
    long entered[NSTAGES] = {0}, passed[NSTAGES] = {0};
    pg_t *pg = pg_connect(db_url, metrics_schema, 5, errstr, errlen);
    if (pg == NULL) return -1;
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT stage, entered, passed FROM funnel WHERE guideline_version = '' AND "
                             "cohort_day = ''",
                             0, NULL, errstr, errlen);
    if (res == NULL) {
        pg_close(pg);
        return -1;
    }
    for (int r = 0; r < PQntuples(res); r++)
        for (int i = 0; i < NSTAGES; i++)
            if (strcmp(PQgetvalue(res, r, 0), stage_order[i]) == 0)
                entered[i] = atol(PQgetvalue(res, r, 1)), passed[i] = atol(PQgetvalue(res, r, 2));
    PQclear(res);
    pg_close(pg);
    /* Reaching "approved" is passing it. */
    passed[NSTAGES - 1] = entered[NSTAGES - 1];
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        snprintf(errstr, errlen, "%s: cannot write", path);
        return -1;
    }
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<title>Annotation operation report</title>\n<style>body{font-family:sans-serif;max-width:60em;"
               "margin:2em auto;color:#222}pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:12px}"
               "h2{margin-top:1.6em}</style></head><body>\n");
    fprintf(f, "<h1>Annotation operation report</h1>\n<p>annot-sim, seed %llu: %d simulated day(s) from %s, "
               "%ld production tasks, %ld candidates.</p>\n",
            (unsigned long long)s->seed, s->days, s->start_day, atomic_load(&s->n.tasks_imported),
            atomic_load(&s->n.candidates_imported));
    fputs("<h2>Funnel by stage</h2>\n<p>Candidates who entered each stage (light) and passed it (dark), all "
          "cohorts, from annot-metrics.</p>\n", f);
    funnel_chart(f, entered, passed);
    fputs("<h2>Quality over time</h2>\n<p>Mean score of the production verdicts given on each simulated day, "
          "against the 95 % target.</p>\n", f);
    quality_chart(f, s);
    fputs("<h2>The full report (annotctl report)</h2>\n<pre>", f);
    html_text(f, report_text);
    fputs("</pre>\n</body></html>\n", f);
    if (fclose(f) != 0) {
        snprintf(errstr, errlen, "%s: write failed", path);
        return -1;
    }
    return 0;
}
