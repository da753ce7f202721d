/*
 * staging_sched.h - host-side model of the weight-streaming pipeline.
 *
 * A forward pass is a sequence of units (layers, then the output head). A
 * resident unit only computes. A streamed unit is first copied from pinned
 * host memory into one of K staging slots on the copy stream, then computed
 * on the compute stream. The CUDA backend implements exactly these rules with
 * streams and events; this module replays them with times instead of
 * transfers, so the planner can predict step times and the tests can check
 * the schedule's invariants without a GPU:
 *
 *   - one copy engine: copies run one at a time, in unit order;
 *   - streamed units take slots round-robin (the n-th streamed unit of the
 *     whole run uses slot n mod K);
 *   - a copy into a slot starts only after the unit previously held by that
 *     slot has finished computing (the "slot free" event);
 *   - a unit computes after the previous unit computed and, if streamed,
 *     after its copy finished (the "copy done" event);
 *   - pass p is issued by the host `host_gap_s` after pass p-1 finished
 *     computing (sampling, batch building). With `prefetch` on, the backend
 *     enqueues pass p's copies when it issues pass p-1, so copies may run
 *     through the host gap and under the previous pass's resident layers;
 *     with it off, copies of pass p wait for pass p's issue.
 *
 * Ownership: ns_stage_sim is plain data owned by the caller; trace arrays are
 * caller-provided. Thread safety: none (one simulator per thread).
 */
#ifndef NS_STAGING_SCHED_H
#define NS_STAGING_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "ns_status.h"

/* Most slots a simulator tracks; planners use 2..4. */
#define NS_STAGE_MAX_SLOTS 16

typedef struct ns_stage_unit {
    double copy_s;    /* host->device copy time (streamed units only) */
    double compute_s; /* compute time on the compute stream */
    bool streamed;    /* true: needs a staging slot and a copy */
} ns_stage_unit;

/* Times of one unit in one pass (seconds since the simulator started). */
typedef struct ns_stage_event {
    uint32_t unit;     /* index in the pass */
    int32_t slot;      /* staging slot, -1 for resident units */
    double copy_start; /* == copy_end == compute_start for resident units */
    double copy_end;
    double compute_start;
    double compute_end;
} ns_stage_event;

/* Summary of one pass. */
typedef struct ns_stage_pass {
    double issue;          /* when the host issued the pass */
    double end;            /* when its last unit finished computing */
    double step_s;         /* end - previous pass's end (end for the first pass): the throughput-relevant time */
    double copy_s;         /* sum of the pass's copy times (host bytes / PCIe) */
    double compute_s;      /* sum of the pass's compute times */
    double efficiency;     /* copy_s / step_s: 1.0 means the copy engine never idles */
    uint32_t max_inflight; /* most streamed units copied-or-copying but not yet computed at once */
} ns_stage_pass;

typedef struct ns_stage_sim {
    uint32_t n_slots;                          /* K */
    bool prefetch;                             /* copies run ahead into the next pass (see above) */
    double host_gap_s;                         /* host time between passes */
    double slot_free[NS_STAGE_MAX_SLOTS];      /* when the slot's last unit finished computing */
    uint64_t n_streamed;                       /* streamed units so far (slot = n mod K) */
    double copy_free;                          /* when the copy engine is next idle */
    double compute_free;                       /* when the compute stream is next idle */
    double last_issue;                         /* issue time of the previous pass */
    double last_end;                           /* end of the previous pass */
    uint64_t n_passes;                         /* passes simulated */
    double recent_end[NS_STAGE_MAX_SLOTS + 1]; /* compute end of the last K+1 streamed units (ring) */
} ns_stage_sim;

/* Start an idle simulator at time 0. NS_ERR_INVALID_ARG when n_slots is 0 or
 * above NS_STAGE_MAX_SLOTS, or host_gap_s is negative. */
ns_status ns_stage_sim_init(ns_stage_sim *s, uint32_t n_slots, bool prefetch, double host_gap_s);

/* Simulate one pass over `units[0..n)`. `trace` (may be NULL) receives n
 * events. `out` (may be NULL) the pass summary. NS_ERR_INVALID_ARG on a
 * negative or non-finite time. */
ns_status ns_stage_sim_pass(ns_stage_sim *s, const ns_stage_unit *units, uint32_t n, ns_stage_event *trace,
                            ns_stage_pass *out);

/* Run `n_passes` identical passes from a fresh simulator and report the last
 * one (its step_s is the steady-state step time once n_passes >= 3). */
ns_status ns_stage_sim_steady(uint32_t n_slots, bool prefetch, double host_gap_s, const ns_stage_unit *units,
                              uint32_t n, uint32_t n_passes, ns_stage_pass *out);

#endif /* NS_STAGING_SCHED_H */
