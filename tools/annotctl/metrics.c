/* annotctl metrics tail: prints the metrics topic, one metric event per
 * line: readable by default, the whole event as a JSON object with --json.
 * It follows the topic from its end (new points, as they are published)
 * unless --from-beginning; --once stops at the end of the topic instead of
 * following (for scripts).  A message that is not a MetricEvent is reported
 * on stderr and skipped. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "annot/v1/metric.pb-c.h"
#include "annotctl.h"
#include "kafka.h"
#include "shutdown.h"

/* Lower-case enum value without its prefix, as the HTTP API spells enums. */
static const char *enum_text(const ProtobufCEnumDescriptor *desc, int value, char *out, size_t len) {
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, value);
    const ProtobufCEnumValue *u = protobuf_c_enum_descriptor_get_value(desc, 0);
    if (v == NULL || u == NULL) {
        snprintf(out, len, "%d", value);
        return out;
    }
    const char *cut = strstr(u->name, "UNSPECIFIED");
    size_t skip = cut ? (size_t)(cut - u->name) : 0;
    snprintf(out, len, "%s", strlen(v->name) > skip ? v->name + skip : v->name);
    for (char *p = out; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    return out;
}

static json_t *metric_detail_json(const Annot__V1__MetricEvent *ev) {
    char e[48];
    switch (ev->detail_case) {
    case ANNOT__V1__METRIC_EVENT__DETAIL_DISTRIBUTION: {
        const Annot__V1__Distribution *d = ev->distribution;
        return json_pack("{s:{s:I, s:f, s:f, s:f, s:f, s:f, s:f}}", "distribution", "count", (json_int_t)d->count,
                         "sum", d->sum, "min", d->min, "max", d->max, "p50", d->p50, "p90", d->p90, "p99", d->p99);
    }
    case ANNOT__V1__METRIC_EVENT__DETAIL_QUALITY: {
        const Annot__V1__QualityStats *q = ev->quality;
        return json_pack("{s:{s:I, s:I, s:I, s:f, s:f, s:I}}", "quality", "validated", (json_int_t)q->validated,
                         "accepted", (json_int_t)q->accepted, "rejected", (json_int_t)q->rejected, "mean_score",
                         q->mean_score, "target", q->target, "critical_errors", (json_int_t)q->critical_errors);
    }
    case ANNOT__V1__METRIC_EVENT__DETAIL_FUNNEL: {
        const Annot__V1__FunnelStageStats *f = ev->funnel;
        return json_pack("{s:{s:s, s:s, s:I, s:I, s:I, s:f}}", "funnel", "cohort_day", f->cohort_day, "stage",
                         enum_text(&annot__v1__funnel_stage__descriptor, f->stage, e, sizeof(e)), "entered",
                         (json_int_t)f->entered, "passed", (json_int_t)f->passed, "failed", (json_int_t)f->failed,
                         "pass_rate", f->pass_rate);
    }
    case ANNOT__V1__METRIC_EVENT__DETAIL_LEASES: {
        const Annot__V1__LeaseStats *l = ev->leases;
        return json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:f}}", "leases", "granted", (json_int_t)l->granted, "expired",
                         (json_int_t)l->expired, "released", (json_int_t)l->released, "submitted",
                         (json_int_t)l->submitted, "parked", (json_int_t)l->parked, "expiry_rate", l->expiry_rate);
    }
    case ANNOT__V1__METRIC_EVENT__DETAIL_AGREEMENT: {
        const Annot__V1__AgreementStats *a = ev->agreement;
        return json_pack("{s:{s:I, s:I, s:f, s:f}}", "agreement", "pairs", (json_int_t)a->pairs, "agreed",
                         (json_int_t)a->agreed, "kappa", a->kappa, "mean_abs_score_diff", a->mean_abs_score_diff);
    }
    case ANNOT__V1__METRIC_EVENT__DETAIL_CHECK_PRECISION: {
        const Annot__V1__CheckPrecisionStats *p = ev->check_precision;
        return json_pack("{s:{s:s, s:I, s:I, s:I, s:f, s:f}}", "check_precision", "rule", p->rule, "flagged",
                         (json_int_t)p->flagged, "confirmed", (json_int_t)p->confirmed, "missed",
                         (json_int_t)p->missed, "precision", p->precision, "recall", p->recall);
    }
    case ANNOT__V1__METRIC_EVENT__DETAIL_HOT_SPOT: {
        const Annot__V1__HotSpotStats *h = ev->hot_spot;
        return json_pack("{s:{s:s, s:s, s:I, s:I}}", "hot_spot", "section", h->section, "kind",
                         enum_text(&annot__v1__feedback_kind__descriptor, h->kind, e, sizeof(e)), "feedback_count",
                         (json_int_t)h->feedback_count, "error_count", (json_int_t)h->error_count);
    }
    default:
        return json_object();
    }
}

/* The event as one JSON object (NULL when a string is not UTF-8). */
static json_t *metric_json(const Annot__V1__MetricEvent *ev) {
    char kind[32];
    json_t *labels = json_object();
    for (size_t i = 0; i < ev->n_labels; i++)
        json_object_set_new(labels, ev->labels[i]->key, json_string(ev->labels[i]->value));
    json_t *j = json_pack("{s:s, s:s, s:{s:s, s:I, s:I}, s:s, s:o, s:f, s:I, s:s, s:b, s:I, s:I}", "event_id",
                          ev->header ? ev->header->event_id : "", "name", ev->name, "window", "kind",
                          enum_text(&annot__v1__window_kind__descriptor, ev->window ? ev->window->kind : 0, kind,
                                    sizeof(kind)),
                          "start_ms", (json_int_t)(ev->window ? ev->window->start_ms : 0), "end_ms",
                          (json_int_t)(ev->window ? ev->window->end_ms : 0), "guideline_version",
                          ev->guideline_version, "labels", labels, "value", ev->value, "count",
                          (json_int_t)ev->count, "unit", ev->unit, "final", ev->final, "computed_at_ms",
                          (json_int_t)ev->computed_at_ms, "revision", (json_int_t)ev->revision);
    if (j == NULL) return NULL;
    json_t *detail = metric_detail_json(ev);
    if (detail) {
        json_object_update(j, detail);
        json_decref(detail);
    }
    return j;
}

static void iso_time(int64_t ms, char *out, size_t len) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%MZ", &tm);
}

static void metric_print_text(const Annot__V1__MetricEvent *ev) {
    char kind[32], start[32];
    enum_text(&annot__v1__window_kind__descriptor, ev->window ? ev->window->kind : 0, kind, sizeof(kind));
    iso_time(ev->window ? ev->window->start_ms : 0, start, sizeof(start));
    printf("%-24s %-8s %s %s %s value=%.6g %s count=%" PRId64 " rev=%" PRId64 "%s\n", ev->name, kind,
           ev->window && ev->window->kind == ANNOT__V1__WINDOW_KIND__WINDOW_KIND_ALL_TIME ? "-" : start,
           ev->guideline_version[0] ? ev->guideline_version : "*", ev->labels_json[0] ? ev->labels_json : "{}",
           ev->value, ev->unit, ev->count, ev->revision, ev->final ? " final" : "");
}

int annotctl_metrics_tail(service_t *svc, int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"from-beginning", no_argument, NULL, 'b'},
        {"once", no_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    int as_json = 0, from_beginning = 0, once = 0, opt;
    optind = 0;
    while ((opt = getopt_long(argc + 1, argv - 1, "+", opts, NULL)) != -1) {
        switch (opt) {
        case 'j': as_json = 1; break;
        case 'b': from_beginning = 1; break;
        case 'o': once = 1; break;
        default:
            fprintf(stderr, "annotctl: metrics tail [--json] [--from-beginning] [--once]\n");
            return 2;
        }
    }
    if (optind - 1 < argc) {
        fprintf(stderr, "annotctl: metrics tail [--json] [--from-beginning] [--once]\n");
        return 2;
    }
    const topic_def_t *t = topics_find(&svc->topics, "metrics");
    if (t == NULL) {
        fprintf(stderr, "annotctl: the topic table has no 'metrics' role\n");
        return 1;
    }
    char err[512];
    const char *const defaults[] = {"group.id", "annotctl-metrics", "enable.partition.eof", "true",
                                    "enable.auto.commit", "false", NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(svc->cfg, "annotctl", defaults, err, sizeof(err));
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)) : NULL;
    if (rk == NULL) {
        if (conf) rd_kafka_conf_destroy(conf);
        fprintf(stderr, "annotctl: %s\n", err);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partitions);
    for (int i = 0; i < t->partitions; i++)
        rd_kafka_topic_partition_list_add(parts, t->name, i)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int eofs = 0, rc = 0;
    while (!shutdown_requested() && rc == 0 && !(once && eofs >= t->partitions)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            fprintf(stderr, "annotctl: %s: %s\n", t->name, rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) rc = 1;
        } else {
            Annot__V1__MetricEvent *ev = annot__v1__metric_event__unpack(NULL, m->len, m->payload);
            if (ev == NULL || ev->name == NULL) {
                fprintf(stderr, "annotctl: %s [%d] offset %lld is not a MetricEvent; skipped\n", t->name,
                        (int)m->partition, (long long)m->offset);
            } else if (as_json) {
                json_t *j = metric_json(ev);
                char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
                if (text) puts(text);
                free(text);
                json_decref(j);
            } else {
                metric_print_text(ev);
            }
            if (ev) annot__v1__metric_event__free_unpacked(ev, NULL);
            fflush(stdout);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
