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
#define MAX_HEAD_CHUNKS 64u
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

/* ---- activations ---------------------------------------------------------- */

static const char *const g_act_names[NS_ACTBUF_COUNT] = {
    "x",      "xb",   "xh",     "q",      "k",   "v",   "att",      "scores", "ffn_gate",
    "ffn_up", "wdeq", "logits", "tokens", "pos", "seq", "out_rows", "pages",  "embd_rows",
};

const char *ns_actbuf_name(ns_actbuf b) {
    return (unsigned)b < NS_ACTBUF_COUNT ? g_act_names[b] : "?";
}

/* bytes = align(a * b * c); false on overflow. */
static bool sz3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out) {
    uint64_t t;
    if (!ns_mul_u64(a, b, &t) || !ns_mul_u64(t, c, &t) || t > UINT64_MAX - NS_MSIZE_ALIGN) {
        return false;
    }
    *out = ns_msize_align(t);
    return true;
}

static uint64_t max4(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t m = a > b ? a : b;
    m = m > c ? m : c;
    return m > d ? m : d;
}

ns_status ns_plan_act_layout(const ns_model_hparams *hp, const ns_act_config *cfg, ns_act_layout *out) {
    memset(out, 0, sizeof *out);
    if (hp == NULL || cfg == NULL || cfg->n_tokens == 0 || cfg->n_seqs == 0 || cfg->n_ctx == 0 ||
        cfg->kv_block_tokens == 0) {
        return NS_ERR_INVALID_ARG;
    }
    const uint64_t T = cfg->n_tokens, S = cfg->n_seqs;
    const uint64_t E = hp->n_embd, F = hp->n_ff;
    const uint64_t qd = (uint64_t)hp->n_head * hp->head_dim_k;
    const uint64_t kd = (uint64_t)hp->n_head_kv * hp->head_dim_k;
    const uint64_t vd = (uint64_t)hp->n_head_kv * hp->head_dim_v;
    const uint64_t ad = (uint64_t)hp->n_head * hp->head_dim_v;
    const uint64_t pages = (cfg->n_ctx + (uint64_t)cfg->kv_block_tokens - 1) / cfg->kv_block_tokens;
    bool ok = true;
    ok = ok && sz3(T, E, 4, &out->bytes[NS_ACTBUF_X]);
    ok = ok && sz3(T, E, 4, &out->bytes[NS_ACTBUF_XB]);
    ok = ok && sz3(T, max4(E, F, ad, qd), 2, &out->bytes[NS_ACTBUF_XH]);
    ok = ok && sz3(T, qd, 4, &out->bytes[NS_ACTBUF_Q]);
    ok = ok && sz3(T, kd, 4, &out->bytes[NS_ACTBUF_K]);
    ok = ok && sz3(T, vd, 4, &out->bytes[NS_ACTBUF_V]);
    ok = ok && sz3(T, ad, 4, &out->bytes[NS_ACTBUF_ATT]);
    ok = ok && sz3((uint64_t)cfg->attn_q_tile * hp->n_head, cfg->n_ctx, 4, &out->bytes[NS_ACTBUF_SCORES]);
    ok = ok && sz3(T, F, 4, &out->bytes[NS_ACTBUF_FFN_GATE]);
    ok = ok && sz3(T, F, 4, &out->bytes[NS_ACTBUF_FFN_UP]);
    ok = ok && sz3(cfg->dequant_elems, 1, 2, &out->bytes[NS_ACTBUF_WDEQ]);
    ok = ok && sz3(S, hp->n_vocab, 4, &out->bytes[NS_ACTBUF_LOGITS]);
    ok = ok && sz3(T, 1, 4, &out->bytes[NS_ACTBUF_TOKENS]);
    ok = ok && sz3(T, 1, 4, &out->bytes[NS_ACTBUF_POS]);
    ok = ok && sz3(T, 1, 4, &out->bytes[NS_ACTBUF_SEQ]);
    ok = ok && sz3(S, 1, 4, &out->bytes[NS_ACTBUF_OUT_ROWS]);
    ok = ok && sz3(S, pages, 4, &out->bytes[NS_ACTBUF_PAGES]);
    ok = ok && sz3(T, cfg->embd_row_bytes, 1, &out->bytes[NS_ACTBUF_EMBD_ROWS]);
    if (!ok) {
        memset(out, 0, sizeof *out);
        return NS_ERR_RANGE;
    }
    uint64_t off = 0;
    for (int b = 0; b < NS_ACTBUF_COUNT; b++) {
        out->offset[b] = off;
        if (!ns_add_u64(off, out->bytes[b], &off)) {
            memset(out, 0, sizeof *out);
            return NS_ERR_RANGE;
        }
    }
    out->total = off;
    return NS_OK;
}

uint64_t ns_plan_activation_bytes(const ns_model_hparams *hp, const ns_act_config *cfg) {
    ns_act_layout l;
    return ns_plan_act_layout(hp, cfg, &l) == NS_OK ? l.total : 0;
}

uint64_t ns_plan_sampling_bytes(uint32_t n_vocab, uint32_t n_seqs) {
    uint64_t probs, idx, per_seq, t;
    if (!sz3(n_seqs, n_vocab, 4, &probs) || !sz3(n_seqs, n_vocab, 4, &idx) || !sz3(n_seqs, 64, 1, &per_seq)) {
        return 0;
    }
    if (!ns_add_u64(probs, idx, &t) || !ns_add_u64(t, per_seq, &t)) {
        return 0;
    }
    return t;
}

/* ---- params --------------------------------------------------------------- */

void ns_plan_params_default(ns_plan_params *p) {
    memset(p, 0, sizeof *p);
    ns_workload_get("summarize", &p->workload);
    p->dev = ns_gpu_profile_default()->p;
    p->resident_layers = -1;
    p->output = NS_PLAN_OUTPUT_AUTO;
    p->n_slots = 2;
    p->kv_block_tokens = DEFAULT_BLOCK;
    p->max_step_tokens = 0;
    p->attn_q_tile = 0;
    p->dequant_scratch = true;
    p->workspace_bytes = DEFAULT_WORKSPACE;
}

static const char *const g_comp_names[NS_PLAN_COMP_COUNT] = {
    "resident weights", "staging slots", "KV page pool", "activations", "cuBLAS workspace", "sampling buffers",
};

const char *ns_plan_comp_name(ns_plan_comp c) {
    return (unsigned)c < NS_PLAN_COMP_COUNT ? g_comp_names[c] : "?";
}

static bool pos_finite(double v) {
    return v > 0.0 && isfinite(v);
}

/* Resolved parameters (defaults applied). */
typedef struct plan_ctx {
    const ns_model_sizes *ms;
    ns_plan_params p;
    uint32_t T;     /* step token budget */
    uint32_t block; /* KV page size */
    uint32_t n_ctx; /* longest sequence */
    uint64_t kv_block_bytes;
    uint64_t ctx_blocks; /* pages of one n_ctx sequence */
    uint64_t job_blocks; /* pages of one workload job */
    uint32_t seq_cap;    /* most sequences worth supporting: min(T, n_jobs) */
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
    if (p->n_slots < 2 || p->n_slots > NS_STAGE_MAX_SLOTS) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "plan: n_slots %u outside 2..%u", p->n_slots, NS_STAGE_MAX_SLOTS);
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
    if (!ns_mul_u64(c->block, ms->kv_bytes_per_token, &c->kv_block_bytes) || c->kv_block_bytes == 0) {
        return ns__err_set(err, NS_ERR_RANGE, "plan: KV page size overflows");
    }
    c->ctx_blocks = (c->n_ctx + (uint64_t)c->block - 1) / c->block;
    c->job_blocks = (need + c->block - 1) / c->block;
    c->seq_cap = w->n_jobs < c->T ? w->n_jobs : c->T;
    return NS_OK;
}

/* ---- candidates ----------------------------------------------------------- */

/* The per-placement part of a candidate: weights, slots, head chunks. */
static bool place(const plan_ctx *c, uint32_t R, bool out_res, ns_plan *pl) {
    const ns_model_sizes *ms = c->ms;
    const uint32_t L = ms->hp.n_layer;
    uint64_t resident = ms->globals_dev_bytes, slot = 0, host = 0, layer_matrix = 0;
    memset(pl, 0, sizeof *pl);
    for (uint32_t i = 0; i < L; i++) {
        layer_matrix = ms->layers[i].max_matrix_elems > layer_matrix ? ms->layers[i].max_matrix_elems : layer_matrix;
        if (ns_plan_spread_resident(i, R, L)) {
            if (!ns_add_u64(resident, ms->layers[i].dev_bytes, &resident)) {
                return false;
            }
        } else {
            slot = ms->layers[i].dev_bytes > slot ? ms->layers[i].dev_bytes : slot;
            host += ms->layers[i].bytes;
        }
    }
    pl->head_chunks = 0;
    if (out_res) {
        if (!ns_add_u64(resident, ms->head_dev_bytes, &resident)) {
            return false;
        }
    } else {
        /* The head streams in row chunks that fit a slot. */
        const uint64_t row = ms->head_row_bytes, V = ms->hp.n_vocab;
        if (slot == 0) {
            slot = ns_msize_align((V + 3) / 4 * row);
        }
        uint64_t rpc = slot / row;
        if (rpc == 0) {
            rpc = 1;
            slot = ns_msize_align(row);
        }
        if ((V + rpc - 1) / rpc > MAX_HEAD_CHUNKS) {
            rpc = (V + MAX_HEAD_CHUNKS - 1) / MAX_HEAD_CHUNKS;
            uint64_t need = ns_msize_align(rpc * row);
            slot = need > slot ? need : slot;
        }
        pl->head_chunks = (uint32_t)((V + rpc - 1) / rpc);
        host += ms->head_bytes;
    }
    pl->n_layer = L;
    pl->n_resident = R;
    pl->output_resident = out_res;
    pl->embd_on_host = !(ms->output_tied && out_res);
    pl->n_slots = slot ? c->p.n_slots : 0;
    pl->slot_bytes = slot;
    pl->resident_weight_bytes = resident;
    pl->host_bytes_per_pass = host;
    pl->comp_bytes[NS_PLAN_RESIDENT] = resident;
    uint64_t st;
    if (!ns_mul_u64(slot, pl->n_slots, &st)) {
        return false;
    }
    pl->comp_bytes[NS_PLAN_STAGING] = st;
    pl->comp_bytes[NS_PLAN_WORKSPACE] = ns_msize_align(c->p.workspace_bytes);
    pl->kv_block_tokens = c->block;
    pl->kv_block_bytes = c->kv_block_bytes;
    pl->kv_bytes_per_token = ms->kv_bytes_per_token;
    pl->n_ctx = c->n_ctx;
    pl->blocks_per_job = (uint32_t)c->job_blocks;
    pl->max_step_tokens = c->T;
    pl->act.n_tokens = c->T;
    pl->act.n_ctx = c->n_ctx;
    pl->act.kv_block_tokens = c->block;
    pl->act.attn_q_tile = c->p.attn_q_tile;
    /* The head is multiplied in row chunks of at most this many elements, so
     * the largest layer matrix bounds the scratch (docs/memory.md). */
    pl->act.dequant_elems = c->p.dequant_scratch ? layer_matrix : 0;
    pl->act.embd_row_bytes = pl->embd_on_host ? ms->embd_row_bytes : 0;
    pl->budget_bytes = c->p.vram_budget;
    pl->workload = c->p.workload;
    pl->dev = c->p.dev;
    return true;
}

/* Bytes of everything but the KV pool for S sequences (UINT64_MAX on overflow). */
static uint64_t fixed_bytes(const plan_ctx *c, const ns_plan *pl, uint32_t S, uint64_t *act_out, uint64_t *samp_out) {
    ns_act_config a = pl->act;
    a.n_seqs = S;
    uint64_t act = ns_plan_activation_bytes(&c->ms->hp, &a);
    uint64_t samp = ns_plan_sampling_bytes(c->ms->hp.n_vocab, S);
    uint64_t t = pl->comp_bytes[NS_PLAN_RESIDENT];
    if (act == 0 || samp == 0 || !ns_add_u64(t, pl->comp_bytes[NS_PLAN_STAGING], &t) ||
        !ns_add_u64(t, pl->comp_bytes[NS_PLAN_WORKSPACE], &t) || !ns_add_u64(t, act, &t) || !ns_add_u64(t, samp, &t)) {
        return UINT64_MAX;
    }
    if (act_out) {
        *act_out = act;
    }
    if (samp_out) {
        *samp_out = samp;
    }
    return t;
}

static uint64_t kv_comp(const plan_ctx *c, uint64_t blocks) {
    uint64_t b;
    if (!ns_mul_u64(blocks, c->kv_block_bytes, &b) || b > UINT64_MAX - NS_MSIZE_ALIGN) {
        return UINT64_MAX;
    }
    return ns_msize_align(b);
}

/* Total for S sequences with their pages (at least one n_ctx sequence). */
static uint64_t need_for(const plan_ctx *c, const ns_plan *pl, uint32_t S) {
    uint64_t f = fixed_bytes(c, pl, S, NULL, NULL);
    uint64_t blocks = (uint64_t)S * c->job_blocks;
    blocks = blocks > c->ctx_blocks ? blocks : c->ctx_blocks;
    uint64_t k = kv_comp(c, blocks), t;
    if (f == UINT64_MAX || k == UINT64_MAX || !ns_add_u64(f, k, &t)) {
        return UINT64_MAX;
    }
    return t;
}

/* Size the candidate: the largest S that fits, then every spare byte to KV.
 * False when not even one sequence fits. */
static bool size_arena(const plan_ctx *c, ns_plan *pl) {
    const uint64_t budget = c->p.vram_budget;
    pl->min_arena_bytes = need_for(c, pl, 1);
    if (pl->min_arena_bytes > budget) {
        return false;
    }
    uint32_t lo = 1, hi = c->seq_cap;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (need_for(c, pl, mid) <= budget) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    uint64_t act = 0, samp = 0;
    uint64_t fixed = fixed_bytes(c, pl, lo, &act, &samp);
    uint64_t avail = budget - fixed;
    uint64_t blocks = avail / c->kv_block_bytes;
    while (blocks > 0 && kv_comp(c, blocks) > avail) {
        blocks--;
    }
    pl->max_seqs = lo;
    pl->act.n_seqs = lo;
    pl->kv_blocks = blocks;
    pl->kv_capacity_tokens = blocks * c->block;
    pl->comp_bytes[NS_PLAN_KV] = kv_comp(c, blocks);
    pl->comp_bytes[NS_PLAN_ACTIVATIONS] = act;
    pl->comp_bytes[NS_PLAN_SAMPLING] = samp;
    uint64_t off = 0;
    for (int i = 0; i < NS_PLAN_COMP_COUNT; i++) {
        pl->comp_offset[i] = off;
        off += pl->comp_bytes[i];
    }
    pl->arena_bytes = off;
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
    const ns_model_hparams *hp = &ms->hp;
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
    /* A streamed head pays the fixed overhead once per chunk. */
    cm += pl->output_resident ? hc : hc + (pl->head_chunks - 1) * d->layer_overhead_s;
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
        u[n].copy_s = u[n].streamed ? (double)ms->layers[i].bytes / pcie : 0.0;
        u[n].compute_s = layer_compute(ms, d, i, s);
    }
    /* The gathered embedding rows must arrive before the first layer runs. */
    u[0].compute_s += gather_time(ms, pl, s);
    double hc = head_compute(ms, d, s);
    if (pl->output_resident) {
        u[n].streamed = false;
        u[n].copy_s = 0.0;
        u[n].compute_s = hc;
        n++;
    } else {
        double per = (hc - d->layer_overhead_s) / pl->head_chunks;
        for (uint32_t k = 0; k < pl->head_chunks; k++, n++) {
            u[n].streamed = true;
            u[n].copy_s = (double)ms->head_bytes / pl->head_chunks / pcie;
            u[n].compute_s = per + d->layer_overhead_s;
        }
    }
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
    units = malloc(((size_t)L + MAX_HEAD_CHUNKS + 1) * sizeof *units);
    if (units == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "plan: cannot allocate %u units", L + MAX_HEAD_CHUNKS + 1);
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
                for (int o = 0; o < 2; o++) {
                    bool out_res = (o == 1);
                    if ((c.p.output == NS_PLAN_OUTPUT_DEVICE && !out_res) ||
                        (c.p.output == NS_PLAN_OUTPUT_HOST && out_res)) {
                        continue;
                    }
                    if (!place(&c, R, out_res, &cand)) {
                        continue;
                    }
                    bool fits = size_arena(&c, &cand);
                    if (pass == 0) {
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
            ns_act_config a = s->act;
            a.n_seqs = 1;
            fmt(p->vram_budget, b0, sizeof b0);
            fmt(s->min_arena_bytes, b1, sizeof b1);
            fmt(s->comp_bytes[NS_PLAN_RESIDENT], b2, sizeof b2);
            fmt(s->comp_bytes[NS_PLAN_STAGING], b3, sizeof b3);
            fmt(ns_plan_activation_bytes(&ms->hp, &a), b4, sizeof b4);
            fmt(kv_comp(&c, c.ctx_blocks), b5, sizeof b5);
            fmt(s->comp_bytes[NS_PLAN_WORKSPACE] + ns_plan_sampling_bytes(ms->hp.n_vocab, 1), b6, sizeof b6);
            if (c.p.resident_layers >= 0) {
                st = ns__err_set(err, NS_ERR_CAPACITY,
                                 "plan: %d resident layers need %s but the budget is %s (resident %s, staging %s, "
                                 "activations %s, KV for one %u-token sequence %s, workspace+sampling %s)",
                                 c.p.resident_layers, b1, b0, b2, b3, b4, c.n_ctx, b5, b6);
            } else {
                st = ns__err_set(err, NS_ERR_CAPACITY,
                                 "plan: budget %s is too small; this model needs at least %s (resident globals %s, "
                                 "%u staging slots %s, activations %s, KV for one %u-token sequence %s, "
                                 "workspace+sampling %s)",
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

bool ns_plan_spread_resident(uint32_t il, uint32_t n_resident, uint32_t n_layer) {
    if (il >= n_layer || n_resident == 0) {
        return false;
    }
    if (n_resident >= n_layer) {
        return true;
    }
    return ((uint64_t)il + 1) * n_resident / n_layer > (uint64_t)il * n_resident / n_layer;
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
