/* test_staging_sched.c - the host-side model of the staging-slot pipeline:
 * overlap with K = 2, serialization with K = 1, steady state, and the slot
 * invariants checked from the event trace (independently of the simulator's
 * own bookkeeping). */
#include "ns_test.h"
#include "staging_sched.h"

#define MAXU 256

static void uniform(ns_stage_unit *u, uint32_t n, double c, double p) {
    for (uint32_t i = 0; i < n; i++) {
        u[i].streamed = true;
        u[i].copy_s = c;
        u[i].compute_s = p;
    }
}

static void cold_pass(uint32_t K, const ns_stage_unit *u, uint32_t n, ns_stage_pass *out, ns_stage_event *tr) {
    ns_stage_sim s;
    ASSERT_OK(ns_stage_sim_init(&s, K, true, 0.0));
    ASSERT_OK(ns_stage_sim_pass(&s, u, n, tr, out));
}

static void test_overlap_and_serial(void) {
    ns_stage_unit u[MAXU];
    ns_stage_pass p;
    const uint32_t n = 8;
    /* PCIe-bound: copy 1, compute 0.5. K=2: fill (1) + 7 more copies + last compute. */
    uniform(u, n, 1.0, 0.5);
    cold_pass(2, u, n, &p, NULL);
    ASSERT_NEAR(p.step_s, 1.0 + 7 * 1.0 + 0.5, 1e-12);
    ASSERT_NEAR(p.copy_s, 8.0, 1e-12);
    ASSERT_NEAR(p.efficiency, 8.0 / 8.5, 1e-12);
    ASSERT_TRUE(p.max_inflight <= 2);
    /* Compute-bound: copy 1, compute 2 -> first copy + 8 computes. */
    uniform(u, n, 1.0, 2.0);
    cold_pass(2, u, n, &p, NULL);
    ASSERT_NEAR(p.step_s, 1.0 + 8 * 2.0, 1e-12);
    /* Step ~ max(sum copy, sum compute) + pipeline fill, for any balance. */
    for (double c = 0.1; c < 3.0; c += 0.37) {
        for (double q = 0.1; q < 3.0; q += 0.41) {
            uniform(u, n, c, q);
            cold_pass(2, u, n, &p, NULL);
            double ideal = (c > q ? c : q) * n;
            ASSERT_TRUE(p.step_s >= ideal - 1e-12);
            ASSERT_NEAR(p.step_s, ideal + (c < q ? c : q), 1e-9);
        }
    }
    /* K=1 serializes: every copy waits for the previous compute. */
    uniform(u, n, 1.0, 0.5);
    cold_pass(1, u, n, &p, NULL);
    ASSERT_NEAR(p.step_s, n * 1.5, 1e-12);
    ASSERT_EQ(p.max_inflight, 1);
    /* K=3 is no faster than K=2 for uniform layers. */
    ns_stage_pass p3;
    cold_pass(3, u, n, &p3, NULL);
    ASSERT_NEAR(p3.step_s, 8.5, 1e-12);
}

static void test_steady_state(void) {
    ns_stage_unit u[MAXU];
    ns_stage_pass p;
    const uint32_t n = 40;
    const double gap = 0.3;
    /* PCIe-bound with a host gap: copies run through the gap, step = sum copy. */
    uniform(u, n, 1.0, 0.6);
    ASSERT_OK(ns_stage_sim_steady(2, true, gap, u, n, 5, &p));
    ASSERT_NEAR(p.step_s, n * 1.0, 1e-9);
    ASSERT_NEAR(p.efficiency, 1.0, 1e-9);
    /* Without prefetch the copy engine idles during the gap and the fill. */
    ns_stage_pass q;
    ASSERT_OK(ns_stage_sim_steady(2, false, gap, u, n, 5, &q));
    ASSERT_NEAR(q.step_s, n * 1.0 + 0.6 + gap, 1e-9);
    ASSERT_TRUE(q.efficiency < p.efficiency);
    /* Compute-bound: step = sum compute + gap. */
    uniform(u, n, 0.5, 1.0);
    ASSERT_OK(ns_stage_sim_steady(2, true, gap, u, n, 5, &p));
    ASSERT_NEAR(p.step_s, n * 1.0 + gap, 1e-9);
    /* K=1 steady state stays serial. */
    ASSERT_OK(ns_stage_sim_steady(1, true, 0.0, u, n, 5, &p));
    ASSERT_NEAR(p.step_s, n * 1.5, 1e-9);
}

static void test_placement_first_vs_last(void) {
    /* 10 resident + 30 streamed layers, PCIe-bound (copy 1.0, compute 0.4).
     * With K = 2 the copy engine can run only two layers ahead, so a
     * contiguous block of resident layers (first or last) leaves it idle
     * while the block computes; spreading the resident layers evenly keeps it
     * busy and reaches the copy-bound ideal of 30. */
    ns_stage_unit first[40], last[40], spread[40];
    for (uint32_t i = 0; i < 40; i++) {
        first[i].streamed = i >= 10;
        last[i].streamed = i < 30;
        spread[i].streamed = !(((i + 1) * 10) / 40 > (i * 10) / 40);
        first[i].copy_s = first[i].streamed ? 1.0 : 0.0;
        last[i].copy_s = last[i].streamed ? 1.0 : 0.0;
        spread[i].copy_s = spread[i].streamed ? 1.0 : 0.0;
        first[i].compute_s = last[i].compute_s = spread[i].compute_s = 0.4;
    }
    ns_stage_pass a, b, c;
    cold_pass(2, first, 40, &a, NULL);
    cold_pass(2, last, 40, &b, NULL);
    cold_pass(2, spread, 40, &c, NULL);
    /* first: 2 copies prefetched under 4.0 s of resident compute; the 28
     * others wait for a slot, which frees when layer 10 computes (4.4). */
    ASSERT_NEAR(a.step_s, 10 * 0.4 + 0.4 + 28 * 1.0 + 0.4, 1e-9);
    /* last: 30 copies back to back, then the resident block computes. */
    ASSERT_NEAR(b.step_s, 30.0 + 0.4 + 10 * 0.4, 1e-9);
    /* spread: copy-bound from the first byte; the last unit is resident. */
    ASSERT_NEAR(c.step_s, 30.0 + 0.4 + 0.4, 1e-9);
    ASSERT_TRUE(c.step_s < a.step_s && a.step_s < b.step_s);
    ASSERT_OK(ns_stage_sim_steady(2, true, 0.2, first, 40, 6, &a));
    ASSERT_OK(ns_stage_sim_steady(2, true, 0.2, last, 40, 6, &b));
    ASSERT_OK(ns_stage_sim_steady(2, true, 0.2, spread, 40, 6, &c));
    ASSERT_NEAR(a.step_s, b.step_s, 1e-9); /* the same cycle, rotated */
    ASSERT_NEAR(a.step_s, 33.0, 1e-9);
    ASSERT_NEAR(c.step_s, 30.0, 1e-9);
    ASSERT_NEAR(c.efficiency, 1.0, 1e-9);
    /* With enough slots to cover the resident block, the block stops mattering. */
    ASSERT_OK(ns_stage_sim_steady(6, true, 0.2, first, 40, 6, &a));
    ASSERT_NEAR(a.step_s, 30.0, 1e-9);
}

/* Check the trace of many passes: each slot is reused only after its previous
 * unit computed; never more than K streamed units in flight; computes are in
 * order and after their copies; copies are in order on one engine. */
static void check_trace(uint32_t K, const ns_stage_event *ev, const ns_stage_unit *units, uint32_t n_units,
                        uint32_t n_events) {
    double last_slot_end[NS_STAGE_MAX_SLOTS];
    int slot_used[NS_STAGE_MAX_SLOTS] = {0};
    double prev_compute_end = 0.0, prev_copy_end = 0.0;
    for (uint32_t i = 0; i < n_events; i++) {
        const ns_stage_event *e = &ev[i];
        const ns_stage_unit *u = &units[i % n_units];
        ASSERT_TRUE(e->compute_start >= prev_compute_end - 1e-12);
        ASSERT_NEAR(e->compute_end - e->compute_start, u->compute_s, 1e-9);
        prev_compute_end = e->compute_end;
        if (!u->streamed) {
            ASSERT_EQ(e->slot, -1);
            continue;
        }
        ASSERT_TRUE(e->slot >= 0 && (uint32_t)e->slot < K);
        ASSERT_TRUE(e->copy_start >= prev_copy_end - 1e-12);
        ASSERT_TRUE(e->compute_start >= e->copy_end - 1e-12);
        prev_copy_end = e->copy_end;
        if (slot_used[e->slot]) {
            /* Never overwritten before the previous occupant finished computing. */
            ASSERT_TRUE(e->copy_start >= last_slot_end[e->slot] - 1e-12);
        }
        slot_used[e->slot] = 1;
        last_slot_end[e->slot] = e->compute_end;
        /* In flight at this copy's start: streamed units with copy started and compute not ended. */
        uint32_t inflight = 0;
        for (uint32_t j = 0; j <= i; j++) {
            if (units[j % n_units].streamed && ev[j].copy_start <= e->copy_start + 1e-12 &&
                ev[j].compute_end > e->copy_start + 1e-12) {
                inflight++;
            }
        }
        ASSERT_TRUE(inflight <= K);
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static void test_random_invariants(void) {
    static ns_stage_event trace[4 * 64];
    ns_stage_unit u[64];
    for (int iter = 0; iter < 300; iter++) {
        uint32_t n = 1 + (uint32_t)(frand() * 63);
        uint32_t K = 1 + (uint32_t)(frand() * 4);
        bool prefetch = frand() < 0.5;
        double gap = frand() < 0.3 ? 0.0 : frand();
        double sum_copy = 0, sum_compute = 0;
        for (uint32_t i = 0; i < n; i++) {
            u[i].streamed = frand() < 0.7;
            u[i].copy_s = u[i].streamed ? frand() * 2.0 : 0.0;
            u[i].compute_s = frand() * 2.0;
            sum_copy += u[i].copy_s;
            sum_compute += u[i].compute_s;
        }
        ns_stage_sim s;
        ASSERT_OK(ns_stage_sim_init(&s, K, prefetch, gap));
        for (uint32_t pass = 0; pass < 4; pass++) {
            ns_stage_pass p;
            ASSERT_OK(ns_stage_sim_pass(&s, u, n, trace + pass * n, &p));
            ASSERT_TRUE(p.max_inflight <= K);
            /* No pass beats either engine's total work. */
            ASSERT_TRUE(p.step_s >= sum_compute - 1e-9);
            if (!prefetch) {
                ASSERT_TRUE(p.step_s >= sum_copy - 1e-9);
            }
            ASSERT_TRUE(p.step_s <= sum_copy + sum_compute + gap + 1e-9);
        }
        check_trace(K, trace, u, n, 4 * n);
    }
}

static void test_bad_args(void) {
    ns_stage_sim s;
    ns_stage_unit u = {-1.0, 1.0, true};
    ASSERT_EQ(ns_stage_sim_init(&s, 0, true, 0.0), NS_ERR_INVALID_ARG);
    ASSERT_EQ(ns_stage_sim_init(&s, NS_STAGE_MAX_SLOTS + 1, true, 0.0), NS_ERR_INVALID_ARG);
    ASSERT_EQ(ns_stage_sim_init(&s, 2, true, -1.0), NS_ERR_INVALID_ARG);
    ASSERT_OK(ns_stage_sim_init(&s, 2, true, 0.0));
    ASSERT_EQ(ns_stage_sim_pass(&s, &u, 1, NULL, NULL), NS_ERR_INVALID_ARG);
    u.copy_s = NAN;
    ASSERT_EQ(ns_stage_sim_pass(&s, &u, 1, NULL, NULL), NS_ERR_INVALID_ARG);
    ASSERT_EQ(ns_stage_sim_steady(2, true, 0.0, &u, 1, 0, NULL), NS_ERR_INVALID_ARG);
}

int main(void) {
    test_overlap_and_serial();
    test_steady_state();
    test_placement_first_vs_last();
    test_random_invariants();
    test_bad_args();
    printf("test_staging_sched: ok\n");
    return 0;
}
