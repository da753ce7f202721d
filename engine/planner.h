/*
 * planner.h - the exact VRAM budget: layer placement, KV capacity, step token
 * budget, admission control and a throughput cost model.
 *
 * Given a model's accounting (model_sizes.h), a device (bandwidths, FLOP/s),
 * a VRAM budget and a workload, ns_plan_compute() decides how many layers stay
 * resident in VRAM (N of them, spread evenly among the others, which stream
 * through K staging slots from pinned host memory), the token budget of one
 * forward pass and the number of KV pages, and so how the one device arena
 * is cut into components:
 *
 *   resident weights | staging slots | KV page pool | activations | workspace | sampling
 *
 * Every size comes from ns_arena_layout_compute (arena_layout.h), the
 * function the CUDA backend sizes and carves its arena with; plan->arena_cfg
 * is exactly the configuration to create the backend with
 * (ns_backend_cuda_params_from_plan), and plan->arena_bytes is then exactly
 * what the backend allocates. docs/memory.md explains every formula.
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

#include "arena_layout.h"
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

/* ---- the plan ------------------------------------------------------------- */

typedef struct ns_plan_params {
    uint64_t vram_budget;     /* bytes; the arena never exceeds it */
    uint32_t n_ctx;           /* longest sequence; 0 = workload prompt + output */
    ns_workload workload;     /* what to optimize for */
    ns_device_params dev;     /* cost-model inputs */
    int32_t resident_layers;  /* -1 = choose; else force this many (spread evenly) */
    uint32_t n_slots;         /* staging slots K (2..NS_ARENA_MAX_SLOTS); 0 = 2 */
    uint32_t kv_block_tokens; /* KV page size; 0 = 16 */
    uint32_t max_step_tokens; /* token budget of one pass; 0 = choose from 256..4096 */
    uint64_t workspace_bytes; /* cuBLAS workspace; 0 = 32 MiB */
} ns_plan_params;

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

    ns_arena_config arena_cfg; /* create the CUDA backend with exactly this (ns_backend_cuda_params_from_plan) */
    ns_arena_layout layout;    /* ns_arena_layout_compute(model, arena_cfg): every buffer's offset and size */

    uint32_t n_layer;
    uint32_t n_resident;            /* resident layers, spread evenly (ns_plan_layer_resident) */
    bool output_resident;           /* the head matrix is in the arena (always: the backend keeps it resident) */
    bool embd_on_host;              /* token_embd stays in host memory; rows are gathered per step */
    uint32_t n_slots;               /* K (0 when nothing streams) */
    uint64_t slot_bytes;            /* each slot (>= largest streamed layer) */
    uint64_t resident_weight_bytes; /* == comp_bytes[NS_PLAN_RESIDENT] */
    uint64_t host_bytes_per_pass;   /* weight bytes copied over PCIe in every forward pass (aligned packages) */

    uint32_t kv_block_tokens;
    uint64_t kv_block_bytes;     /* one page over all layers, K and V */
    uint64_t kv_blocks;          /* pages in the pool (<= INT32_MAX) */
    uint64_t kv_capacity_tokens; /* kv_blocks * kv_block_tokens */
    uint64_t kv_bytes_per_token;
    uint32_t n_ctx;          /* longest sequence planned for */
    uint32_t blocks_per_job; /* ceil((prompt + output) / block) */
    uint32_t max_seqs;       /* concurrent sequences (KV- and token-budget-bound) */
    uint32_t max_step_tokens;

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
 * resident_layers -1, K 2, block 16, step tokens chosen, 32 MiB cuBLAS
 * workspace. */
void ns_plan_params_default(ns_plan_params *p);

/* Plan `ms` under `p`. NS_ERR_CAPACITY (with how much is needed) when the
 * budget cannot hold the resident globals, two staging slots, activations,
 * KV for one n_ctx sequence and the workspace; or when a forced resident
 * count does not fit. NS_ERR_INVALID_ARG on bad parameters (the message names the
 * field). On error `out` is zeroed. */
ns_status ns_plan_compute(const ns_model_sizes *ms, const ns_plan_params *p, ns_plan *out, ns_err *err);

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
