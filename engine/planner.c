/* planner.c - see planner.h and docs/memory.md (formulas, placement, cost model). */
#include "planner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ns_util.h"
#include "staging_sched.h"

#define MIB (1024ull * 1024ull)
#define DEFAULT_WORKSPACE (32ull * MIB)
#define DEFAULT_STEP_TOKENS 512u
#define DEFAULT_BLOCK 16u
#define MAX_BLOCK 256u
#define MAX_CTX (1u << 24)
#define MAX_PAGES ((uint64_t)INT32_MAX) /* ns_kv_params.n_pages is an int32_t */
#define STEADY_PASSES 4u
#define NEAR_TIE 0.01 /* predictions this close (relative) count as equal */

/* ---- workloads ------------------------------------------------------------ */

static const ns_workload g_workloads[] = {
    {"summarize", 256, 1024, 128},
    {"label", 2048, 512 + 128, 8},
    {"single", 1, 128, 128},
};

ns_status ns_workload_get(const char *name, ns_workload *out) {
    for (size_t i = 0; name != NULL && i < sizeof g_workloads / sizeof g_workloads[0]; i++) {
        if (strcmp(g_workloads[i].name, name) == 0) {
            *out = g_workloads[i];
            return NS_OK;
        }
    }
    return NS_ERR_NOT_FOUND;
}

/* ---- params --------------------------------------------------------------- */

void ns_plan_params_default(ns_plan_params *p) {
    memset(p, 0, sizeof *p);
    ns_workload_get("summarize", &p->workload);
    p->dev = ns_gpu_profile_default()->p;
    p->resident_layers = -1;
    p->n_slots = 2;
    p->kv_block_tokens = DEFAULT_BLOCK;
    p->max_step_tokens = 0;
    p->workspace_bytes = DEFAULT_WORKSPACE;
}

static bool pos_finite(double v) {
    return v > 0.0 && isfinite(v);
}

/* Resolved parameters (defaults applied). */
typedef struct plan_ctx {
    const ns_model_sizes *ms;
    ns_plan_params p;
    uint32_t T;              /* step token budget */
    uint32_t block;          /* KV page size */
    uint32_t n_ctx;          /* longest sequence */
    uint64_t kv_block_bytes; /* one page, K and V, all layers */
    uint64_t ctx_blocks;     /* pages of one n_ctx sequence */
    uint64_t job_blocks;     /* pages of one workload job */
    uint32_t seq_cap;        /* most sequences worth supporting: min(T, n_jobs) */
} plan_ctx;

static ns_status resolve(const ns_model_sizes *ms, const ns_plan_params *in, plan_ctx *c, ns_err *err) {
    memset(c, 0, sizeof *c);
    c->ms = ms;
    c->p = *in;
    ns_plan_params *p = &c->p;
    if (ms == NULL || ms->layers == NULL || ms->hp.n_layer == 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: no model accounting");
    }
    if (p->vram_budget == 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: vram_budget is 0");
    }
    if (p->n_slots == 0) {
        p->n_slots = 2;
    }
    if (p->n_slots < 2 || p->n_slots > NS_ARENA_MAX_SLOTS) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: n_slots %u outside 2..%u", p->n_slots, NS_ARENA_MAX_SLOTS);
    }
    c->block = p->kv_block_tokens ? p->kv_block_tokens : DEFAULT_BLOCK;
    if (c->block > MAX_BLOCK) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: kv_block_tokens %u above %u", c->block, MAX_BLOCK);
    }
    c->T = p->max_step_tokens ? p->max_step_tokens : DEFAULT_STEP_TOKENS; /* ns_plan_compute may search */
    if (p->workspace_bytes == 0) {
        p->workspace_bytes = DEFAULT_WORKSPACE;
    }
    if (!pos_finite(p->dev.pcie_gbps) || !pos_finite(p->dev.hbm_gbps) || !pos_finite(p->dev.tflops) ||
        !(p->dev.layer_overhead_s >= 0.0) || !(p->dev.step_overhead_s >= 0.0) || !isfinite(p->dev.layer_overhead_s) ||
        !isfinite(p->dev.step_overhead_s)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: device bandwidths and TFLOP/s must be positive");
    }
    const ns_workload *w = &p->workload;
    if (w->n_jobs == 0 || w->prompt_tokens == 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: workload needs at least one job and one prompt token");
    }
    uint64_t need = (uint64_t)w->prompt_tokens + w->output_tokens;
    c->n_ctx = p->n_ctx ? p->n_ctx : (need > MAX_CTX ? MAX_CTX : (uint32_t)need);
    if (c->n_ctx > MAX_CTX) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: ctx %u above %u", c->n_ctx, MAX_CTX);
    }
    if (need > c->n_ctx) {
        return ns__err_set(err, NS_ERR_INVALID_ARG,
                           "plan: workload '%s' needs %llu tokens per sequence (prompt + output) but ctx is %u",
                           w->name, (unsigned long long)need, c->n_ctx);
    }
    if (p->resident_layers > (int32_t)ms->hp.n_layer || p->resident_layers < -1) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: resident_layers %d outside -1..%u", p->resident_layers,
                           ms->hp.n_layer);
    }
    if (ms->hp.head_dim_v != ms->hp.head_dim_k) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "plan: key length %u != value length %u", ms->hp.head_dim_k,
                           ms->hp.head_dim_v);
    }
    c->kv_block_bytes = ns_arena_kv_page_bytes(ms, c->block);
    if (c->kv_block_bytes == 0) {
        return ns__err_set(err, NS_ERR_RANGE, "plan: KV page size overflows");
    }
    c->ctx_blocks = (c->n_ctx + (uint64_t)c->block - 1) / c->block;
    c->job_blocks = (need + c->block - 1) / c->block;
    c->seq_cap = w->n_jobs < c->T ? w->n_jobs : c->T;
    return NS_OK;
}

/* ---- candidates ----------------------------------------------------------- */

/* The arena configuration of a candidate with `pages` KV pages. */
static ns_arena_config arena_cfg(const plan_ctx *c, uint32_t R, uint64_t pages) {
    ns_arena_config a;
    memset(&a, 0, sizeof a);
    a.max_tokens = c->T;
    a.n_pages = pages;
    a.page_size = c->block;
    a.max_seq_len = c->n_ctx;
    a.n_resident = R;
    a.n_slots = c->p.n_slots;
    a.embd_on_host = true; /* ignored (kept on the device) when the head is tied to it */
    a.cublas_ws_bytes = c->p.workspace_bytes;
    return a;
}

/* Record layout `lay` (configuration `cfg`) in `pl`. */
static void fill(const plan_ctx *c, const ns_arena_config *cfg, const ns_arena_layout *lay, ns_plan *pl) {
    const uint64_t budget = c->p.vram_budget, pages = cfg->n_pages;
    pl->arena_cfg = *cfg;
    pl->layout = *lay;
    memcpy(pl->comp_offset, lay->comp_offset, sizeof pl->comp_offset);
    memcpy(pl->comp_bytes, lay->comp_bytes, sizeof pl->comp_bytes);
    pl->arena_bytes = lay->total;
    pl->budget_bytes = budget;
    pl->n_layer = c->ms->hp.n_layer;
    pl->n_resident = lay->n_resident;
    pl->output_resident = true;
    pl->embd_on_host = lay->embd_on_host;
    pl->n_slots = lay->n_slots;
    pl->slot_bytes = lay->n_slots ? lay->slot_bytes : 0;
    pl->resident_weight_bytes = lay->comp_bytes[NS_PLAN_RESIDENT];
    pl->host_bytes_per_pass = lay->host_layer_bytes;
    pl->kv_block_tokens = c->block;
    pl->kv_block_bytes = c->kv_block_bytes;
    pl->kv_blocks = pages;
    pl->kv_capacity_tokens = pages * c->block;
    pl->kv_bytes_per_token = c->ms->kv_bytes_per_token;
    pl->n_ctx = c->n_ctx;
    pl->blocks_per_job = (uint32_t)c->job_blocks;
    pl->max_step_tokens = c->T;
    pl->workload = c->p.workload;
    pl->dev = c->p.dev;
}

/* Lay out a candidate with R resident layers: everything but the KV pool
 * is fixed; every byte left goes to KV pages. False when not even one
 * n_ctx sequence fits (min_arena_bytes is still set) or on overflow. */
static bool size_arena(const plan_ctx *c, uint32_t R, ns_plan *pl) {
    const uint64_t budget = c->p.vram_budget;
    ns_arena_layout fixed, lay;
    memset(pl, 0, sizeof *pl);
    ns_arena_config cfg = arena_cfg(c, R, 0);
    if (ns_arena_layout_compute(c->ms, &cfg, &fixed) != NS_OK) {
        return false;
    }
    fill(c, &cfg, &fixed, pl); /* what an error message reports when nothing fits */
    /* Both pools round up to 256: 2 * align(pages * page_bytes / 2). */
    const uint64_t pool_page = c->kv_block_bytes / 2;
    uint64_t need_kv;
    if (!ns_mul_u64(c->ctx_blocks, pool_page, &need_kv) || need_kv > UINT64_MAX / 4 ||
        !ns_add_u64(fixed.total, 2 * ns_msize_align(need_kv), &pl->min_arena_bytes)) {
        return false;
    }
    if (pl->min_arena_bytes > budget) {
        return false;
    }
    uint64_t pool_max = ((budget - fixed.total) / 2) & ~(uint64_t)(NS_MSIZE_ALIGN - 1);
    uint64_t pages = pool_max / pool_page;
    pages = pages > MAX_PAGES ? MAX_PAGES : pages;
    cfg.n_pages = pages;
    if (ns_arena_layout_compute(c->ms, &cfg, &lay) != NS_OK || lay.total > budget || pages < c->ctx_blocks) {
        return false;
    }
    fill(c, &cfg, &lay, pl);
    uint64_t seqs = pages / c->job_blocks;
    pl->max_seqs = (uint32_t)(seqs < c->seq_cap ? seqs : c->seq_cap);
    if (pl->max_seqs == 0) {
        pl->max_seqs = 1; /* ctx_blocks >= job_blocks, so one job always fits */
    }
    NS_ASSERT(pl->arena_bytes <= budget);
    return true;
}

/* ---- cost model ----------------------------------------------------------- */

typedef struct pass_shape {
    double n_tokens, attn_pairs, kv_read, n_logits;
} pass_shape;

static double maxd(double a, double b) {
    return a > b ? a : b;
}

static double layer_compute(const ns_model_sizes *ms, const ns_device_params *d, uint32_t i, const pass_shape *s) {
    const double H = d->hbm_gbps * 1e9, F = d->tflops * 1e12;
    const ns_msize_hparams *hp = &ms->hp;
    const ns_layer_size *L = &ms->layers[i];
    double t_mm = maxd((double)L->bytes / H, 2.0 * s->n_tokens * (double)L->matmul_params / F);
    double kv_layer = (double)ms->kv_bytes_per_token / hp->n_layer;
    double att_flops = 2.0 * hp->n_head * ((double)hp->head_dim_k + hp->head_dim_v) * s->attn_pairs;
    double t_att = maxd(s->kv_read * kv_layer / H, att_flops / F);
    return t_mm + t_att + d->layer_overhead_s;
}

static double head_compute(const ns_model_sizes *ms, const ns_device_params *d, const pass_shape *s) {
    const double H = d->hbm_gbps * 1e9, F = d->tflops * 1e12;
    return maxd((double)ms->head_bytes / H, 2.0 * s->n_logits * (double)ms->head_params / F) + d->layer_overhead_s;
}

/* Token embedding rows gathered from host memory over PCIe. */
static double gather_time(const ns_model_sizes *ms, const ns_plan *pl, const pass_shape *s) {
    return pl->embd_on_host ? s->n_tokens * (double)ms->embd_row_bytes / (pl->dev.pcie_gbps * 1e9) : 0.0;
}

static void closed_form(const ns_model_sizes *ms, const ns_plan *pl, const pass_shape *s, double *copy,
                        double *compute) {
    const ns_device_params *d = &pl->dev;
    double cp = (double)pl->host_bytes_per_pass / (d->pcie_gbps * 1e9) + gather_time(ms, pl, s);
    double cm = 0.0;
    for (uint32_t i = 0; i < ms->hp.n_layer; i++) {
        cm += layer_compute(ms, d, i, s);
    }
    double hc = head_compute(ms, d, s);
    cm += hc; /* the head is resident */
    *copy = cp;
    *compute = cm;
}

static double closed_step(const ns_model_sizes *ms, const ns_plan *pl, const pass_shape *s) {
    double cp, cm;
    closed_form(ms, pl, s, &cp, &cm);
    return maxd(cp, cm + pl->dev.step_overhead_s);
}

/* Units of one pass for the staging simulation (n_layer + head units). */
static uint32_t build_units(const ns_model_sizes *ms, const ns_plan *pl, const pass_shape *s, ns_stage_unit *u) {
    const ns_device_params *d = &pl->dev;
    const double pcie = d->pcie_gbps * 1e9;
    uint32_t n = 0;
    for (uint32_t i = 0; i < ms->hp.n_layer; i++, n++) {
        u[n].streamed = !ns_plan_layer_resident(pl, i);
        u[n].copy_s = u[n].streamed ? (double)ms->layers[i].dev_bytes / pcie : 0.0;
        u[n].compute_s = layer_compute(ms, d, i, s);
    }
    /* The gathered embedding rows must arrive before the first layer runs. */
    u[0].compute_s += gather_time(ms, pl, s);
    /* The head is resident: one more compute unit. */
    u[n].streamed = false;
    u[n].copy_s = 0.0;
    u[n].compute_s = head_compute(ms, d, s);
    n++;
    return n;
}

static void perf_fill(const ns_model_sizes *ms, const ns_plan *pl, const pass_shape *s, uint32_t n_seqs,
                      ns_stage_unit *units, ns_plan_perf *out) {
    memset(out, 0, sizeof *out);
    out->n_tokens = (uint32_t)s->n_tokens;
    out->n_seqs = n_seqs;
    if (s->n_tokens <= 0.0) {
        return;
    }
    closed_form(ms, pl, s, &out->copy_s, &out->compute_s);
    out->step_s = maxd(out->copy_s, out->compute_s + pl->dev.step_overhead_s);
    if (units != NULL) {
        ns_stage_pass sp;
        uint32_t n = build_units(ms, pl, s, units);
        if (ns_stage_sim_steady(pl->n_slots ? pl->n_slots : 2, true, pl->dev.step_overhead_s, units, n, STEADY_PASSES,
                                &sp) == NS_OK) {
            out->step_s = sp.step_s;
        }
    }
    out->tokens_per_s = out->step_s > 0.0 ? s->n_tokens / out->step_s : 0.0;
    out->stream_frac = out->step_s > 0.0 ? out->copy_s / out->step_s : 0.0;
}

void ns_plan_pass_cost(const ns_model_sizes *ms, const ns_plan *plan, uint32_t n_tokens, uint32_t n_seqs,
                       uint64_t attn_pairs, uint64_t kv_read, uint32_t n_logits, ns_plan_perf *out) {
    pass_shape s = {(double)n_tokens, (double)attn_pairs, (double)kv_read, (double)n_logits};
    perf_fill(ms, plan, &s, n_seqs, NULL, out);
}

/* Fluid model of the whole workload under continuous batching (see
 * docs/memory.md): steps = max(tokens / T, jobs * lifetime / B), every step
 * carrying an equal share of tokens, attention and logits. */
static double workload_time(const plan_ctx *c, const ns_plan *pl) {
    const ns_workload *w = &c->p.workload;
    const double J = w->n_jobs, P = w->prompt_tokens, O = w->output_tokens, T = c->T;
    const double B = pl->max_seqs < w->n_jobs ? pl->max_seqs : w->n_jobs;
    const double fed = P + (O > 0 ? O - 1 : 0); /* tokens run through the model per job */
    const double chunks = ceil(P / T);
    const double lifetime = chunks + (O > 0 ? O - 1 : 0);
    double steps = maxd(J * fed / T, J * lifetime / B);
    steps = maxd(steps, lifetime);
    pass_shape s;
    s.n_tokens = J * fed / steps;
    s.attn_pairs = J * (fed * (fed + 1.0) / 2.0) / steps;
    /* Prefill chunk k reads the k*T positions before its end; decode step reads the context. */
    double kv_prefill = T * chunks * (chunks - 1.0) / 2.0 + P;
    double kv_decode = O > 1 ? (O - 1.0) * P + (O - 1.0) * O / 2.0 : 0.0;
    s.kv_read = J * (kv_prefill + kv_decode) / steps;
    s.n_logits = J * (O > 0 ? O : 1) / steps;
    return steps * closed_step(c->ms, pl, &s);
}

static void predict(const plan_ctx *c, ns_plan *pl, ns_stage_unit *units) {
    const ns_workload *w = &c->p.workload;
    const double P = w->prompt_tokens, O = w->output_tokens, T = c->T;
    pass_shape s;
    /* Prefill: a full pass of prompt tokens (packed prompts when T > P). */
    double ptok = fmin(T, (double)w->n_jobs * P);
    s.n_tokens = ptok;
    s.attn_pairs = ptok * (P + 1.0) / 2.0;
    s.kv_read = T < P ? (P + T) / 2.0 : ptok;
    s.n_logits = T >= P ? floor(ptok / P) : 1.0;
    perf_fill(c->ms, pl, &s, (uint32_t)ceil(ptok / P), units, &pl->prefill);
    /* Decode: one token for each concurrent sequence at the mean context. */
    uint32_t B = pl->max_seqs < w->n_jobs ? pl->max_seqs : w->n_jobs;
    if (O > 0) {
        s.n_tokens = B;
        s.attn_pairs = s.kv_read = B * (P + O / 2.0);
        s.n_logits = B;
        perf_fill(c->ms, pl, &s, B, units, &pl->decode);
    } else {
        memset(&pl->decode, 0, sizeof pl->decode);
    }
    pl->workload_s = workload_time(c, pl);
    double J = w->n_jobs;
    pl->workload_tok_s = pl->workload_s > 0 ? J * (P + O) / pl->workload_s : 0.0;
    pl->workload_out_tok_s = pl->workload_s > 0 ? J * O / pl->workload_s : 0.0;
}

/* ---- the plan ------------------------------------------------------------- */

static void fmt(uint64_t b, char *buf, size_t n) {
    ns_format_size(b, buf, n);
}

ns_status ns_plan_compute(const ns_model_sizes *ms, const ns_plan_params *p, ns_plan *out, ns_err *err) {
    plan_ctx c;
    ns_stage_unit *units = NULL;
    ns_plan best, cand, smallest;
    bool have_best = false, have_smallest = false;
    memset(out, 0, sizeof *out);
    memset(&best, 0, sizeof best);
    memset(&smallest, 0, sizeof smallest);
    if (p == NULL) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: NULL parameters");
    }
    NS_TRY(resolve(ms, p, &c, err));
    const uint32_t L = ms->hp.n_layer;
    units = malloc(((size_t)L + 1) * sizeof *units);
    if (units == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "plan: cannot allocate %u units", L + 1);
    }
    uint32_t r_lo = 0, r_hi = L;
    if (c.p.resident_layers >= 0) {
        r_lo = r_hi = (uint32_t)c.p.resident_layers;
    }
    /* The step token budget: given, or chosen from a few sizes (a bigger
     * budget amortizes the weight stream over more prefill tokens but costs
     * activation memory that would otherwise hold KV pages). */
    static const uint32_t t_auto[] = {256, 512, 1024, 2048, 4096};
    const uint32_t n_t = c.p.max_step_tokens ? 1 : (uint32_t)(sizeof t_auto / sizeof t_auto[0]);
    uint32_t n_cand = 0;
    double best_time = INFINITY;
    /* Pass 0 finds the best predicted time. Pass 1 picks, among candidates
     * within NEAR_TIE of it, the fewest streamed bytes per pass, then the
     * smaller token budget, then more sequences: the model cannot tell such
     * candidates apart, and less PCIe traffic is the robust choice. */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t ti = 0; ti < n_t; ti++) {
            c.T = c.p.max_step_tokens ? c.p.max_step_tokens : t_auto[ti];
            c.seq_cap = c.p.workload.n_jobs < c.T ? c.p.workload.n_jobs : c.T;
            for (uint32_t R = r_lo; R <= r_hi; R++) {
                bool fits = size_arena(&c, R, &cand);
                if (pass == 0 && cand.min_arena_bytes != 0) {
                    n_cand++;
                    if (!have_smallest || cand.min_arena_bytes < smallest.min_arena_bytes) {
                        smallest = cand;
                        have_smallest = true;
                    }
                }
                if (!fits) {
                    continue;
                }
                cand.workload_s = workload_time(&c, &cand);
                if (pass == 0) {
                    best_time = cand.workload_s < best_time ? cand.workload_s : best_time;
                    continue;
                }
                if (cand.workload_s > best_time * (1.0 + NEAR_TIE)) {
                    continue;
                }
                bool better = !have_best || cand.host_bytes_per_pass < best.host_bytes_per_pass ||
                              (cand.host_bytes_per_pass == best.host_bytes_per_pass &&
                               (cand.max_step_tokens < best.max_step_tokens ||
                                (cand.max_step_tokens == best.max_step_tokens && cand.max_seqs > best.max_seqs)));
                if (better) {
                    best = cand;
                    have_best = true;
                }
            }
        }
        if (!isfinite(best_time)) {
            break; /* nothing fits */
        }
    }
    if (!have_best) {
        char b0[32], b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
        ns_status st;
        if (!have_smallest) {
            st = ns__err_set(err, NS_ERR_RANGE, "plan: model sizes overflow");
        } else {
            ns_plan *s = &smallest;
            fmt(p->vram_budget, b0, sizeof b0);
            fmt(s->min_arena_bytes, b1, sizeof b1);
            fmt(s->comp_bytes[NS_PLAN_RESIDENT], b2, sizeof b2);
            fmt(s->comp_bytes[NS_PLAN_STAGING], b3, sizeof b3);
            fmt(s->comp_bytes[NS_PLAN_ACTIVATIONS], b4, sizeof b4);
            fmt(s->min_arena_bytes - s->arena_bytes, b5, sizeof b5); /* the candidate holds no pages */
            fmt(s->comp_bytes[NS_PLAN_WORKSPACE] + s->comp_bytes[NS_PLAN_SAMPLING], b6, sizeof b6);
            if (c.p.resident_layers >= 0) {
                st = ns__err_set(err, NS_ERR_CAPACITY,
                                 "plan: %d resident layers need %s but the budget is %s (resident %s, staging %s, "
                                 "activations %s, KV for one %u-token sequence %s, workspace %s)",
                                 c.p.resident_layers, b1, b0, b2, b3, b4, c.n_ctx, b5, b6);
            } else {
                st = ns__err_set(err, NS_ERR_CAPACITY,
                                 "plan: budget %s is too small; this model needs at least %s (resident globals %s, "
                                 "%u staging slots %s, activations %s, KV for one %u-token sequence %s, "
                                 "workspace %s)",
                                 b0, b1, b2, s->n_slots, b3, b4, c.n_ctx, b5, b6);
            }
        }
        free(units);
        return st;
    }
    best.min_arena_bytes = smallest.min_arena_bytes;
    best.forced = c.p.resident_layers >= 0;
    best.n_candidates = n_cand;
    c.T = best.max_step_tokens;
    c.seq_cap = c.p.workload.n_jobs < c.T ? c.p.workload.n_jobs : c.T;
    predict(&c, &best, units);
    free(units);
    *out = best;
    return NS_OK;
}

bool ns_plan_layer_resident(const ns_plan *plan, uint32_t il) {
    return ns_plan_spread_resident(il, plan->n_resident, plan->n_layer);
}

/* ---- admission control ---------------------------------------------------- */

ns_status ns_kv_admission_init(ns_kv_admission *a, uint64_t total_blocks, uint32_t block_tokens, uint32_t max_seqs,
                               uint32_t max_seq_len) {
    if (a == NULL || block_tokens == 0) {
        return NS_ERR_INVALID_ARG;
    }
    memset(a, 0, sizeof *a);
    a->block_tokens = block_tokens;
    a->total_blocks = total_blocks;
    a->free_blocks = total_blocks;
    a->max_seqs = max_seqs;
    a->max_seq_len = max_seq_len;
    return NS_OK;
}

uint64_t ns_kv_admission_blocks(const ns_kv_admission *a, uint64_t prompt_tokens, uint64_t max_tokens) {
    uint64_t n;
    if (!ns_add_u64(prompt_tokens, max_tokens, &n) || n > UINT64_MAX - a->block_tokens) {
        return UINT64_MAX;
    }
    return (n + a->block_tokens - 1) / a->block_tokens;
}

ns_admit ns_kv_admission_try(ns_kv_admission *a, uint64_t prompt_tokens, uint64_t max_tokens, uint64_t *blocks) {
    uint64_t need = ns_kv_admission_blocks(a, prompt_tokens, max_tokens);
    uint64_t len = prompt_tokens + max_tokens;
    if (need == UINT64_MAX || need > a->total_blocks || (a->max_seq_len != 0 && len > a->max_seq_len) ||
        len < prompt_tokens) {
        return NS_ADMIT_NEVER;
    }
    if (need > a->free_blocks || (a->max_seqs != 0 && a->n_running >= a->max_seqs)) {
        return NS_ADMIT_WAIT;
    }
    a->free_blocks -= need;
    a->n_running++;
    if (blocks != NULL) {
        *blocks = need;
    }
    return NS_ADMIT_OK;
}

ns_status ns_kv_admission_release(ns_kv_admission *a, uint64_t blocks) {
    if (a->n_running == 0 || blocks > a->total_blocks - a->free_blocks) {
        return NS_ERR_STATE;
    }
    a->free_blocks += blocks;
    a->n_running--;
    return NS_OK;
}
