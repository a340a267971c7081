/* publish: see publish.h. */
#include "publish.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/metric.pb-c.h"
#include "contrib.h"
#include "stats.h"

void publish_event_id(const rollup_row_t *row, char out[EVENT_ID_LEN]) {
    char cause[SERIES_METRIC_MAX + SERIES_GV_MAX + SERIES_LABELS_MAX + 64], purpose[48];
    snprintf(cause, sizeof(cause), "%s|%s|%lld|%s|%s", row->metric, window_kind_name(row->window.kind),
             (long long)row->window.start_ms, row->gv, row->labels);
    snprintf(purpose, sizeof(purpose), "metric r%lld%s", (long long)row->revision, row->final ? " final" : "");
    event_id_derive(out, cause, purpose);
}

static Annot__V1__WindowKind window_kind_proto(window_kind_t k) {
    switch (k) {
    case WINDOW_HOUR: return ANNOT__V1__WINDOW_KIND__WINDOW_KIND_HOUR;
    case WINDOW_DAY: return ANNOT__V1__WINDOW_KIND__WINDOW_KIND_DAY;
    default: return ANNOT__V1__WINDOW_KIND__WINDOW_KIND_ALL_TIME;
    }
}

static int enum_parse(const ProtobufCEnumDescriptor *desc, const char *name) {
    char buf[48];
    for (unsigned i = 0; i < desc->n_values; i++) {
        if (strcmp(contrib_enum_name(desc, desc->values[i].value, buf, sizeof(buf)), name) == 0)
            return desc->values[i].value;
    }
    return 0;
}

typedef struct labels {
    size_t n;
    Annot__V1__Label items[4];
    Annot__V1__Label *ptrs[4];
    json_t *json;
} labels_t;

static const char *labels_get(const labels_t *l, const char *key) {
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key, key) == 0) return l->items[i].value;
    }
    return "";
}

static int labels_parse(labels_t *l, const char *text, char *errstr, size_t errlen) {
    json_error_t jerr;
    l->n = 0;
    l->json = json_loads(text, 0, &jerr);
    if (l->json == NULL || !json_is_object(l->json) || json_object_size(l->json) > 4) {
        snprintf(errstr, errlen, "labels '%s' are not a JSON object of at most 4 strings", text);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(l->json, k, v) {
        Annot__V1__Label *lb = &l->items[l->n];
        annot__v1__label__init(lb);
        lb->key = (char *)k;
        lb->value = (char *)(json_is_string(v) ? json_string_value(v) : "");
        l->ptrs[l->n] = lb;
        l->n++;
    }
    /* Sorted by key, as the proto asks (PostgreSQL orders jsonb keys by
     * length first). */
    for (size_t i = 1; i < l->n; i++) {
        for (size_t j = i; j > 0 && strcmp(l->ptrs[j - 1]->key, l->ptrs[j]->key) > 0; j--) {
            Annot__V1__Label *t = l->ptrs[j];
            l->ptrs[j] = l->ptrs[j - 1];
            l->ptrs[j - 1] = t;
        }
    }
    return 0;
}

int publish_pack(const rollup_row_t *row, const publish_opts_t *opts, uint8_t **out, size_t *len, char *errstr,
                 size_t errlen) {
    labels_t labels;
    if (labels_parse(&labels, row->labels, errstr, errlen) != 0) {
        json_decref(labels.json);
        return -1;
    }
    const series_value_t *v = &row->value;
    const int64_t *c = v->c;
    char id[EVENT_ID_LEN];
    publish_event_id(row, id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, opts->source, "", row->gv);
    hdr.occurred_at_ms = opts->computed_at_ms;

    Annot__V1__MetricWindow win = ANNOT__V1__METRIC_WINDOW__INIT;
    win.kind = window_kind_proto(row->window.kind);
    win.start_ms = row->window.start_ms;
    win.end_ms = row->window.kind == WINDOW_ALL ? 0 : row->window.end_ms;

    Annot__V1__MetricEvent ev = ANNOT__V1__METRIC_EVENT__INIT;
    ev.header = &hdr;
    ev.name = (char *)row->metric;
    ev.window = &win;
    ev.guideline_version = (char *)row->gv;
    ev.n_labels = labels.n;
    ev.labels = labels.ptrs;
    ev.final = row->final;
    ev.computed_at_ms = opts->computed_at_ms;
    ev.revision = row->revision;
    ev.labels_json = (char *)row->labels;

    Annot__V1__QualityStats quality = ANNOT__V1__QUALITY_STATS__INIT;
    Annot__V1__FunnelStageStats funnel = ANNOT__V1__FUNNEL_STAGE_STATS__INIT;
    Annot__V1__LeaseStats lease = ANNOT__V1__LEASE_STATS__INIT;
    Annot__V1__AgreementStats agree = ANNOT__V1__AGREEMENT_STATS__INIT;
    Annot__V1__CheckPrecisionStats prec = ANNOT__V1__CHECK_PRECISION_STATS__INIT;
    Annot__V1__HotSpotStats hot = ANNOT__V1__HOT_SPOT_STATS__INIT;
    Annot__V1__Distribution dist = ANNOT__V1__DISTRIBUTION__INIT;
    char cohort[11] = "";
    const char *m = row->metric;

    if (strcmp(m, METRIC_QUALITY) == 0) {
        quality.validated = c[0];
        quality.accepted = c[1];
        quality.rejected = c[2];
        quality.critical_errors = c[3];
        quality.mean_score = stats_ratio(v->sum, (double)c[0]);
        quality.target = opts->quality_target;
        ev.value = quality.mean_score;
        ev.count = c[0];
        ev.unit = "ratio";
        ev.detail_case = ANNOT__V1__METRIC_EVENT__DETAIL_QUALITY;
        ev.quality = &quality;
    } else if (strcmp(m, METRIC_FUNNEL) == 0) {
        if (row->window.kind == WINDOW_DAY) window_day_string(row->window.start_ms, cohort);
        funnel.cohort_day = cohort;
        funnel.stage = enum_parse(&annot__v1__funnel_stage__descriptor, labels_get(&labels, "stage"));
        funnel.entered = c[0];
        funnel.passed = c[1];
        funnel.failed = c[2];
        funnel.pass_rate = stats_ratio((double)c[1], (double)(c[1] + c[2]));
        ev.value = funnel.pass_rate;
        ev.count = c[1] + c[2];
        ev.unit = "ratio";
        ev.detail_case = ANNOT__V1__METRIC_EVENT__DETAIL_FUNNEL;
        ev.funnel = &funnel;
    } else if (strcmp(m, METRIC_THROUGHPUT) == 0 || strcmp(m, METRIC_ANNOTATORS) == 0) {
        ev.value = (double)c[0];
        ev.count = c[0];
        ev.unit = "count";
    } else if (strcmp(m, METRIC_LATENCY) == 0 || strcmp(m, METRIC_TIME_TO_SUBMIT) == 0 ||
               strcmp(m, METRIC_HEARTBEAT_GAP) == 0) {
        static const int64_t empty[STATS_HIST_BUCKETS];
        const int64_t *h = v->hist ? v->hist : empty;
        double lo = isnan(v->vmin) ? 0 : v->vmin, hi = isnan(v->vmax) ? 0 : v->vmax;
        dist.count = c[0];
        dist.sum = v->sum;
        dist.min = lo;
        dist.max = hi;
        dist.p50 = stats_hist_quantile(h, 0.50, lo, hi);
        dist.p90 = stats_hist_quantile(h, 0.90, lo, hi);
        dist.p99 = stats_hist_quantile(h, 0.99, lo, hi);
        ev.value = stats_ratio(v->sum, (double)c[0]);
        ev.count = c[0];
        ev.unit = "ms";
        ev.detail_case = ANNOT__V1__METRIC_EVENT__DETAIL_DISTRIBUTION;
        ev.distribution = &dist;
    } else if (strcmp(m, METRIC_LEASE) == 0) {
        lease.granted = c[0];
        lease.expired = c[1];
        lease.released = c[2];
        lease.submitted = c[3];
        lease.parked = c[4];
        lease.expiry_rate = stats_ratio((double)c[1], (double)c[0]);
        ev.value = lease.expiry_rate;
        ev.count = c[0];
        ev.unit = "ratio";
        ev.detail_case = ANNOT__V1__METRIC_EVENT__DETAIL_LEASES;
        ev.leases = &lease;
    } else if (strcmp(m, METRIC_AGREEMENT) == 0) {
        agree.pairs = c[0];
        agree.agreed = c[1];
        agree.kappa = stats_kappa(c[2], c[3], c[4], c[5]);
        agree.mean_abs_score_diff = stats_ratio(v->sum, (double)c[0]);
        ev.value = agree.kappa;
        ev.count = c[0];
        ev.unit = "kappa";
        ev.detail_case = ANNOT__V1__METRIC_EVENT__DETAIL_AGREEMENT;
        ev.agreement = &agree;
    } else if (strcmp(m, METRIC_PRECISION) == 0) {
        prec.rule = (char *)labels_get(&labels, "rule");
        prec.flagged = c[0];
        prec.confirmed = c[1];
        prec.missed = c[2];
        prec.precision = stats_ratio((double)c[1], (double)c[0]);
        prec.recall = stats_ratio((double)c[1], (double)(c[1] + c[2]));
        ev.value = prec.precision;
        ev.count = c[0];
        ev.unit = "ratio";
        ev.detail_case = ANNOT__V1__METRIC_EVENT__DETAIL_CHECK_PRECISION;
        ev.check_precision = &prec;
    } else if (strcmp(m, METRIC_HOTSPOT) == 0) {
        hot.section = (char *)labels_get(&labels, "section");
        hot.kind = enum_parse(&annot__v1__feedback_kind__descriptor, labels_get(&labels, "kind"));
        hot.feedback_count = c[0];
        hot.error_count = c[1];
        ev.value = (double)c[0];
        ev.count = c[0] + c[1];
        ev.unit = "count";
        ev.detail_case = ANNOT__V1__METRIC_EVENT__DETAIL_HOT_SPOT;
        ev.hot_spot = &hot;
    } else {
        snprintf(errstr, errlen, "unknown metric '%s'", m);
        json_decref(labels.json);
        return -1;
    }
    *len = annot__v1__metric_event__get_packed_size(&ev);
    *out = malloc(*len ? *len : 1);
    if (*out == NULL) abort();
    annot__v1__metric_event__pack(&ev, *out);
    json_decref(labels.json);
    return 0;
}
