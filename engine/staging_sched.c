/* staging_sched.c - see staging_sched.h. */
#include "staging_sched.h"

#include <math.h>
#include <string.h>

static double maxd(double a, double b) {
    return a > b ? a : b;
}

ns_status ns_stage_sim_init(ns_stage_sim *s, uint32_t n_slots, bool prefetch, double host_gap_s) {
    if (s == NULL || n_slots == 0 || n_slots > NS_STAGE_MAX_SLOTS || !(host_gap_s >= 0.0) || !isfinite(host_gap_s)) {
        return NS_ERR_INVALID_ARG;
    }
    memset(s, 0, sizeof *s);
    s->n_slots = n_slots;
    s->prefetch = prefetch;
    s->host_gap_s = host_gap_s;
    return NS_OK;
}

ns_status ns_stage_sim_pass(ns_stage_sim *s, const ns_stage_unit *units, uint32_t n, ns_stage_event *trace,
                            ns_stage_pass *out) {
    if (s == NULL || (units == NULL && n > 0) || s->n_slots == 0 || s->n_slots > NS_STAGE_MAX_SLOTS) {
        return NS_ERR_INVALID_ARG;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!(units[i].compute_s >= 0.0) || !isfinite(units[i].compute_s) ||
            (units[i].streamed && (!(units[i].copy_s >= 0.0) || !isfinite(units[i].copy_s)))) {
            return NS_ERR_INVALID_ARG;
        }
    }
    const uint32_t ring = s->n_slots + 1;
    /* The host issues this pass after the previous one finished plus its gap. */
    double issue = s->n_passes == 0 ? 0.0 : s->last_end + s->host_gap_s;
    double copy_issue = s->prefetch ? s->last_issue : issue;
    ns_stage_pass pass;
    memset(&pass, 0, sizeof pass);
    pass.issue = issue;

    for (uint32_t i = 0; i < n; i++) {
        const ns_stage_unit *u = &units[i];
        ns_stage_event ev;
        ev.unit = i;
        if (u->streamed) {
            uint32_t slot = (uint32_t)(s->n_streamed % s->n_slots);
            ev.slot = (int32_t)slot;
            ev.copy_start = maxd(maxd(s->copy_free, s->slot_free[slot]), copy_issue);
            ev.copy_end = ev.copy_start + u->copy_s;
            s->copy_free = ev.copy_end;
            ev.compute_start = maxd(maxd(s->compute_free, ev.copy_end), issue);
            ev.compute_end = ev.compute_start + u->compute_s;
            s->slot_free[slot] = ev.compute_end;
            /* Units in flight when this copy starts: this one plus every
             * recent streamed unit whose compute has not ended yet. */
            uint32_t inflight = 1;
            uint64_t back = s->n_streamed < ring ? s->n_streamed : ring;
            for (uint64_t k = 1; k <= back; k++) {
                if (s->recent_end[(s->n_streamed - k) % ring] > ev.copy_start) {
                    inflight++;
                }
            }
            if (inflight > pass.max_inflight) {
                pass.max_inflight = inflight;
            }
            s->recent_end[s->n_streamed % ring] = ev.compute_end;
            s->n_streamed++;
            pass.copy_s += u->copy_s;
        } else {
            ev.slot = -1;
            ev.compute_start = maxd(s->compute_free, issue);
            ev.copy_start = ev.copy_end = ev.compute_start;
            ev.compute_end = ev.compute_start + u->compute_s;
        }
        s->compute_free = ev.compute_end;
        pass.compute_s += u->compute_s;
        if (trace != NULL) {
            trace[i] = ev;
        }
    }
    pass.end = maxd(s->compute_free, issue);
    pass.step_s = pass.end - (s->n_passes == 0 ? 0.0 : s->last_end);
    pass.efficiency = pass.step_s > 0.0 ? pass.copy_s / pass.step_s : 0.0;
    s->last_issue = issue;
    s->last_end = pass.end;
    s->n_passes++;
    if (out != NULL) {
        *out = pass;
    }
    return NS_OK;
}

ns_status ns_stage_sim_steady(uint32_t n_slots, bool prefetch, double host_gap_s, const ns_stage_unit *units,
                              uint32_t n, uint32_t n_passes, ns_stage_pass *out) {
    ns_stage_sim s;
    ns_stage_pass last;
    if (n_passes == 0) {
        return NS_ERR_INVALID_ARG;
    }
    NS_TRY(ns_stage_sim_init(&s, n_slots, prefetch, host_gap_s));
    for (uint32_t p = 0; p < n_passes; p++) {
        NS_TRY(ns_stage_sim_pass(&s, units, n, NULL, &last));
    }
    if (out != NULL) {
        *out = last;
    }
    return NS_OK;
}
