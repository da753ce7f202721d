/*
 * planner.h - the exact VRAM budget: arena layout, layer placement, KV
 * capacity, admission control and a throughput cost model.
 *
 * Given a model's accounting (model_sizes.h), a device (bandwidths, FLOP/s),
 * a VRAM budget and a workload, ns_plan_compute() decides how many layers stay
 * resident in VRAM (N of them, spread evenly among the others, which stream
 * through K staging slots from pinned host memory), where the output head
 * lives, and how the one device
 * arena is cut into components:
 *
 *   resident weights | staging slots | KV page pool | activations | workspace | sampling
 *
 * Every component is a multiple of NS_MSIZE_ALIGN and they sum exactly to
 * arena_bytes <= budget. The CUDA backend allocates arena_bytes once and
 * sub-allocates at the offsets recorded in the plan; it sizes its activation
 * buffers with ns_plan_act_layout() on plan->act, the same function the
 * planner used. docs/memory.md explains every formula.
 *
 * Ownership: plans and layouts are plain data; nothing here allocates memory
 * that outlives a call. Thread safety: all functions are reentrant; the
 * profile table is immutable.
 */
#ifndef NS_PLANNER_H
#define NS_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model_sizes.h"
#include "ns_status.h"

/* ---- devices -------------------------------------------------------------- */

/* Throughput inputs of the cost model. Bandwidths are in GB/s (1e9 bytes/s),
 * GEMM throughput in TFLOP/s (1e12 FLOP/s). */
typedef struct ns_device_params {
    char name[32];           /* profile name, "custom" or "measured" */
    double pcie_gbps;        /* effective pinned host->device copy bandwidth */
    double hbm_gbps;         /* device memory bandwidth */
    double tflops;           /* fp16-input, fp32-accumulate dense tensor GEMM throughput */
    uint32_t n_sm;           /* streaming multiprocessors (0 = unknown; informational) */
    uint64_t vram_bytes;     /* total device memory (informational; the budget is separate) */
    double layer_overhead_s; /* fixed per-unit cost (kernel launches, norms, RoPE); default 20 us */
    double step_overhead_s;  /* host time between passes (sync, sampling, batch build); default 200 us */
} ns_device_params;

/* A named GPU profile: nominal numbers from the vendor's data sheets. */
typedef struct ns_gpu_profile {
    const char *name;   /* "rtx3060-12gb" */
    const char *desc;   /* "GeForce RTX 3060 12 GB, PCIe 4.0 x16" */
    ns_device_params p; /* the numbers; name copied from `name` */
} ns_gpu_profile;

/* The profile called `name` (exact, case-insensitive), or NULL. */
const ns_gpu_profile *ns_gpu_profile_find(const char *name);
/* Number of profiles and the i-th (NULL when out of range). */
size_t ns_gpu_profile_count(void);
const ns_gpu_profile *ns_gpu_profile_at(size_t i);
/* The profile assumed when nothing is given or measured: rtx3060-12gb. */
const ns_gpu_profile *ns_gpu_profile_default(void);

/* ---- workloads ------------------------------------------------------------ */

/* A batch workload of identical jobs (BENCH.md's standard workloads). */
typedef struct ns_workload {
    char name[16];
    uint32_t n_jobs;
    uint32_t prompt_tokens; /* per job, including any shared prefix */
    uint32_t output_tokens; /* per job (fixed length: EOS ignored) */
} ns_workload;

/* "summarize" (256 x 1024 -> 128), "label" (2048 x 640 -> 8), "single"
 * (1 x 128 -> 128). NS_ERR_NOT_FOUND for other names. Prefix sharing of the
 * label workload is not modelled (every job pays its full prompt's KV). */
ns_status ns_workload_get(const char *name, ns_workload *out);

/* ---- activations and sampling buffers ------------------------------------- */

/* What the activation buffers must hold in one forward pass. */
typedef struct ns_act_config {
    uint32_t n_tokens;        /* most tokens in one pass (the step token budget) */
    uint32_t n_seqs;          /* most sequences in one pass (rows of logits) */
    uint32_t n_ctx;           /* longest sequence (KV positions one token may attend) */
    uint32_t kv_block_tokens; /* KV page size, for the per-sequence page tables */
    uint32_t attn_q_tile;     /* query tokens whose full score rows exist at once; 0 = fused kernel, no score buffer */
    uint64_t dequant_elems;   /* elements of the largest weight dequantized to f16 at once (cuBLAS path); 0 = none */
    uint64_t embd_row_bytes;  /* one token_embd row as stored (rows are gathered from host memory) */
} ns_act_config;

/* Buffers of the activation component, in arena order. Shapes are
 * [rows, cols] with cols contiguous; f32 unless noted. */
typedef enum ns_actbuf {
    NS_ACTBUF_X = 0,     /* f32 [n_tokens, n_embd]    residual stream */
    NS_ACTBUF_XB,        /* f32 [n_tokens, n_embd]    norm output / projection output */
    NS_ACTBUF_XH,        /* f16 [n_tokens, max(n_embd, n_ff, n_head*hd_v)] GEMM input */
    NS_ACTBUF_Q,         /* f32 [n_tokens, n_head*hd_k] */
    NS_ACTBUF_K,         /* f32 [n_tokens, n_head_kv*hd_k] new keys before the f16 page write */
    NS_ACTBUF_V,         /* f32 [n_tokens, n_head_kv*hd_v] */
    NS_ACTBUF_ATT,       /* f32 [n_tokens, n_head*hd_v] attention output */
    NS_ACTBUF_SCORES,    /* f32 [attn_q_tile * n_head, n_ctx] (0 bytes when fused) */
    NS_ACTBUF_FFN_GATE,  /* f32 [n_tokens, n_ff] */
    NS_ACTBUF_FFN_UP,    /* f32 [n_tokens, n_ff] */
    NS_ACTBUF_WDEQ,      /* f16 [dequant_elems] dequantized weight */
    NS_ACTBUF_LOGITS,    /* f32 [n_seqs, n_vocab] */
    NS_ACTBUF_TOKENS,    /* i32 [n_tokens] token ids */
    NS_ACTBUF_POS,       /* i32 [n_tokens] positions */
    NS_ACTBUF_SEQ,       /* i32 [n_tokens] sequence slot of each token */
    NS_ACTBUF_OUT_ROWS,  /* i32 [n_seqs] token index whose logits each sequence needs */
    NS_ACTBUF_PAGES,     /* i32 [n_seqs, ceil(n_ctx / kv_block_tokens)] page tables */
    NS_ACTBUF_EMBD_ROWS, /* u8 [n_tokens, embd_row_bytes] gathered token_embd rows */
    NS_ACTBUF_COUNT
} ns_actbuf;

typedef struct ns_act_layout {
    uint64_t offset[NS_ACTBUF_COUNT]; /* from the start of the activation component */
    uint64_t bytes[NS_ACTBUF_COUNT];  /* each a multiple of NS_MSIZE_ALIGN */
    uint64_t total;                /* sum of bytes */
} ns_act_layout;

/* Name of an activation buffer ("x", "scores"...). */
const char *ns_actbuf_name(ns_actbuf b);

/* Lay out the activation buffers for `hp` and `cfg`. NS_ERR_RANGE on
 * overflow, NS_ERR_INVALID_ARG on a zero n_tokens/n_seqs/n_ctx/block. */
ns_status ns_plan_act_layout(const ns_model_hparams *hp, const ns_act_config *cfg, ns_act_layout *out);

/* Total of ns_plan_act_layout (0 on error). */
uint64_t ns_plan_activation_bytes(const ns_model_hparams *hp, const ns_act_config *cfg);

/* Device sampling buffers for n_seqs sequences: probabilities f32 [n_seqs,
 * n_vocab], sort indices i32 [n_seqs, n_vocab], and 64 bytes per sequence of
 * parameters, RNG state and results; each part aligned. 0 on overflow. */
uint64_t ns_plan_sampling_bytes(uint32_t n_vocab, uint32_t n_seqs);

/* ---- the plan ------------------------------------------------------------- */

typedef enum ns_plan_output {
    NS_PLAN_OUTPUT_AUTO = 0, /* let the planner choose */
    NS_PLAN_OUTPUT_DEVICE,   /* the head is resident */
    NS_PLAN_OUTPUT_HOST      /* the head streams through the staging slots, in row chunks */
} ns_plan_output;

typedef struct ns_plan_params {
    uint64_t vram_budget;     /* bytes; the arena never exceeds it */
    uint32_t n_ctx;           /* longest sequence; 0 = workload prompt + output */
    ns_workload workload;     /* what to optimize for */
    ns_device_params dev;     /* cost-model inputs */
    int32_t resident_layers;  /* -1 = choose; else force this many (spread evenly) */
    ns_plan_output output;    /* head placement */
    uint32_t n_slots;         /* staging slots K (2..NS_STAGE_MAX_SLOTS); 0 = 2 */
    uint32_t kv_block_tokens; /* KV page size; 0 = 16 */
    uint32_t max_step_tokens; /* token budget of one pass; 0 = choose from 256..4096 */
    uint32_t attn_q_tile;     /* see ns_act_config; default 0 (fused paged attention) */
    bool dequant_scratch;     /* reserve an f16 buffer for the largest layer matrix (cuBLAS path); default true */
    uint64_t workspace_bytes; /* cuBLAS workspace; 0 = 32 MiB */
} ns_plan_params;

/* Arena components, in arena order. */
typedef enum ns_plan_comp {
    NS_PLAN_RESIDENT = 0, /* resident layers + head (if resident) + small globals */
    NS_PLAN_STAGING,      /* n_slots * slot_bytes */
    NS_PLAN_KV,           /* kv_blocks * kv_block_bytes (rounded up to the alignment) */
    NS_PLAN_ACTIVATIONS,  /* ns_plan_act_layout(act).total */
    NS_PLAN_WORKSPACE,    /* cuBLAS workspace */
    NS_PLAN_SAMPLING,     /* ns_plan_sampling_bytes(n_vocab, max_seqs) */
    NS_PLAN_COMP_COUNT
} ns_plan_comp;

/* Predicted cost of one kind of pass. */
typedef struct ns_plan_perf {
    uint32_t n_tokens;   /* tokens in the pass */
    uint32_t n_seqs;     /* sequences in the pass */
    double copy_s;       /* host bytes / PCIe bandwidth */
    double compute_s;    /* sum of the units' compute times */
    double step_s;       /* steady-state pass time from the staging simulation */
    double tokens_per_s; /* n_tokens / step_s */
    double stream_frac;  /* copy_s / step_s: the streaming efficiency */
} ns_plan_perf;

typedef struct ns_plan {
    uint64_t budget_bytes; /* the budget planned for */
    uint64_t arena_bytes;  /* sum of comp_bytes; <= budget_bytes */
    uint64_t comp_offset[NS_PLAN_COMP_COUNT];
    uint64_t comp_bytes[NS_PLAN_COMP_COUNT];

    uint32_t n_layer;
    uint32_t n_resident;            /* resident layers, spread evenly (ns_plan_layer_resident) */
    bool output_resident;           /* the head matrix is in the arena */
    bool embd_on_host;              /* token_embd stays in host memory; rows are gathered per step */
    uint32_t n_slots;               /* K (0 when nothing streams) */
    uint64_t slot_bytes;            /* each slot (>= largest streamed layer) */
    uint32_t head_chunks;           /* head streamed in this many row chunks (0 when resident) */
    uint64_t resident_weight_bytes; /* == comp_bytes[NS_PLAN_RESIDENT] */
    uint64_t host_bytes_per_pass;   /* weight bytes copied over PCIe in every forward pass */

    uint32_t kv_block_tokens;
    uint64_t kv_block_bytes;     /* one page over all layers, K and V */
    uint64_t kv_blocks;          /* pages in the pool */
    uint64_t kv_capacity_tokens; /* kv_blocks * kv_block_tokens */
    uint64_t kv_bytes_per_token;
    uint32_t n_ctx;          /* longest sequence planned for */
    uint32_t blocks_per_job; /* ceil((prompt + output) / block) */
    uint32_t max_seqs;       /* concurrent sequences (KV- and token-budget-bound) */
    uint32_t max_step_tokens;

    ns_act_config act;        /* what the activation component was sized for */
    uint64_t min_arena_bytes; /* the smallest arena that could run this model at all */

    ns_plan_perf prefill;      /* a pass of max_step_tokens prompt tokens */
    ns_plan_perf decode;       /* a pass of one token for each of min(max_seqs, n_jobs) sequences */
    double workload_s;         /* predicted time for the whole workload */
    double workload_tok_s;     /* (prompt + output tokens) / workload_s */
    double workload_out_tok_s; /* output tokens / workload_s */
    ns_workload workload;
    ns_device_params dev;
    bool forced;           /* resident_layers was given */
    uint32_t n_candidates; /* placements evaluated */
} ns_plan;

/* Defaults: budget 0 (must be set), workload summarize, device rtx3060-12gb,
 * resident_layers -1, output AUTO, K 2, block 16, step tokens chosen,
 * dequant scratch on, 32 MiB workspace. */
void ns_plan_params_default(ns_plan_params *p);

/* Name of a component ("resident weights", ...). */
const char *ns_plan_comp_name(ns_plan_comp c);

/* Plan `ms` under `p`. NS_ERR_CAPACITY (with how much is needed) when the
 * budget cannot hold two staging slots, activations, KV for one n_ctx
 * sequence, the workspace and sampling; or when a forced resident count does
 * not fit. NS_ERR_INVALID_ARG on bad parameters (the message names the
 * field). On error `out` is zeroed. */
ns_status ns_plan_compute(const ns_model_sizes *ms, const ns_plan_params *p, ns_plan *out, ns_err *err);

/* Whether layer `il` is resident when n_resident of n_layer layers are:
 * the resident layers are spread evenly (layer il is resident when
 * floor((il+1)*R/L) > floor(il*R/L), so R=1 of 4 is layer 3, R=2 of 4 are 1
 * and 3). Spreading lets the copy engine keep filling slots while resident
 * layers compute; a contiguous block of resident layers stalls it once the
 * K slots are full (docs/memory.md, tests/planner/test_staging_sched.c). */
bool ns_plan_spread_resident(uint32_t il, uint32_t n_resident, uint32_t n_layer);

/* Whether layer `il` is resident in `plan` (ns_plan_spread_resident). */
bool ns_plan_layer_resident(const ns_plan *plan, uint32_t il);

/* Cost of one pass under `plan`: n_tokens tokens from n_seqs sequences;
 * attn_pairs (query token, KV position) pairs attended per layer; kv_read
 * KV positions read from the pool per layer; n_logits rows of logits. Fills
 * every field of `out`; step_s is the closed form max(copy_s, compute_s +
 * step overhead), the steady state of K >= 2 slots with prefetch (the
 * staging simulation agrees on uniform layers; see tests/planner). */
void ns_plan_pass_cost(const ns_model_sizes *ms, const ns_plan *plan, uint32_t n_tokens, uint32_t n_seqs,
                       uint64_t attn_pairs, uint64_t kv_read, uint32_t n_logits, ns_plan_perf *out);

/* ---- admission control ---------------------------------------------------- */

/* Page-reservation admission: a job is admitted only when the pool has the
 * pages for its whole life (prompt + max_tokens), which it reserves at once,
 * so no step can ever run out of KV. Plain data, one per scheduler. */
typedef struct ns_kv_admission {
    uint32_t block_tokens; /* tokens per page */
    uint64_t total_blocks; /* pages in the pool */
    uint64_t free_blocks;  /* pages not reserved */
    uint32_t max_seqs;     /* concurrent sequences allowed (0 = unlimited) */
    uint32_t n_running;    /* admitted and not released */
    uint32_t max_seq_len;  /* longest sequence a page table holds (0 = unlimited) */
} ns_kv_admission;

typedef enum ns_admit {
    NS_ADMIT_OK = 0, /* admitted: pages reserved */
    NS_ADMIT_WAIT,   /* not now: wait for running jobs to release pages or a sequence slot */
    NS_ADMIT_NEVER   /* can never run here: longer than max_seq_len or the whole pool */
} ns_admit;

/* Start with every page free. NS_ERR_INVALID_ARG on block_tokens 0. */
ns_status ns_kv_admission_init(ns_kv_admission *a, uint64_t total_blocks, uint32_t block_tokens, uint32_t max_seqs,
                               uint32_t max_seq_len);

/* Pages a job of prompt + max_tokens tokens reserves: ceil(sum / block). */
uint64_t ns_kv_admission_blocks(const ns_kv_admission *a, uint64_t prompt_tokens, uint64_t max_tokens);

/* Decide; on NS_ADMIT_OK the pages (also written to *blocks, may be NULL)
 * are reserved and n_running grows. */
ns_admit ns_kv_admission_try(ns_kv_admission *a, uint64_t prompt_tokens, uint64_t max_tokens, uint64_t *blocks);

/* Return a finished job's reservation. NS_ERR_STATE when more pages or jobs
 * are released than were reserved (a scheduler bug; nothing changes). */
ns_status ns_kv_admission_release(ns_kv_admission *a, uint64_t blocks);

#endif /* NS_PLANNER_H */
