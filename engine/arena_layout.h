/*
 * arena_layout.h - the byte-exact layout of the CUDA backend's one device
 * arena: the single source of truth for its size.
 *
 * Both sides call ns_arena_layout_compute: the planner (planner.h) to size
 * candidate plans under a budget, and the CUDA backend (engine/cuda/) to
 * size the cudaMalloc and to carve it. The backend checks at creation that
 * what it carves adds up to `total` and that the kernels' own scratch sizing
 * (ns_cuda_scratch_bytes) agrees with the workspace component, so the two
 * can never drift apart silently (docs/memory.md section 1).
 *
 * The arena holds, in this order, each piece starting on an NS_MSIZE_ALIGN
 * boundary (so a piece costs its size rounded up to 256 and the order of
 * pieces inside a component does not change the sum):
 *
 *   resident weights | staging slots | KV pools | activations | workspace | sampling
 *
 * Ownership: plain data; nothing here allocates memory that outlives a call.
 * Thread safety: reentrant.
 */
#ifndef NS_ARENA_LAYOUT_H
#define NS_ARENA_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "model_sizes.h"
#include "ns_status.h"

/* Kernel scratch defaults (kernels/context.cu's scratch_defaults). */
#define NS_ARENA_DEFAULT_CUBLAS_WS (32ull << 20)
#define NS_ARENA_DEFAULT_GEMM_DEQUANT (64ull << 20)
#define NS_ARENA_DEFAULT_ATTN_PARTIAL (16ull << 20)
/* The f16 weight-chunk scratch holds at least this many rows of the widest K. */
#define NS_ARENA_GEMM_MIN_ROWS 64u
/* Staging slots the backend supports (NS_CUDA_MAX_SLOTS). */
#define NS_ARENA_MAX_SLOTS 8u

/* Arena components, in arena order. */
typedef enum ns_plan_comp {
    NS_PLAN_RESIDENT = 0, /* resident weights: globals, head, token_embd unless on host, resident layers */
    NS_PLAN_STAGING,      /* n_slots * slot_bytes (0 when nothing streams) */
    NS_PLAN_KV,           /* K pool + V pool of every layer (kv_cache.h layout) */
    NS_PLAN_ACTIVATIONS,  /* activation buffers, ubatch tables, RoPE table */
    NS_PLAN_WORKSPACE,    /* kernel scratch: f16 GEMM chunk, f16 activations, cuBLAS, split-K partials, embd rows */
    NS_PLAN_SAMPLING,     /* device sampling buffers: 0, tokens are sampled on the host from copied logits */
    NS_PLAN_COMP_COUNT
} ns_plan_comp;

/* Name of a component ("resident weights", ...). */
const char *ns_plan_comp_name(ns_plan_comp c);

/* Buffers of the activation and workspace components, in carve order. T is
 * max_tokens; widths as backend.h's ns_act_width. */
typedef enum ns_actbuf {
    /* activations: f32 [T, width] each, backend.h's ns_act order */
    NS_ACTBUF_X = 0,    /* width n_embd */
    NS_ACTBUF_XN,       /* width max(n_embd, n_head * head_dim) */
    NS_ACTBUF_Q,        /* width n_head * head_dim */
    NS_ACTBUF_K,        /* width n_head_kv * head_dim */
    NS_ACTBUF_V,        /* width n_head_kv * head_dim */
    NS_ACTBUF_ATTN,     /* width n_head * head_dim */
    NS_ACTBUF_GATE,     /* width n_ff */
    NS_ACTBUF_UP,       /* width n_ff */
    NS_ACTBUF_LOGITS,   /* width n_vocab */
    NS_ACTBUF_TOKENS,   /* i32 [T] token ids */
    NS_ACTBUF_POS,      /* i32 [T] positions */
    NS_ACTBUF_SLOT,     /* i32 [T] KV slot of each token */
    NS_ACTBUF_OUT_ROWS, /* i32 [T] rows whose logits are wanted */
    NS_ACTBUF_PAGES,    /* i32 [T, ceil(max_seq_len / page_size)] page tables */
    NS_ACTBUF_ROPE,     /* f32 [max(n_rot / 2, 1)] inverse frequencies */
    /* workspace: ns_cuda_reserve_scratch's parts, in its order */
    NS_ACTBUF_GEMM_W16,  /* f16 dequantized weight chunk (gemm_dequant_bytes) */
    NS_ACTBUF_X16,       /* f16 [T, max_k] GEMM input */
    NS_ACTBUF_CUBLAS_WS, /* cuBLAS workspace */
    NS_ACTBUF_ATTN_PART, /* split-K attention partials */
    NS_ACTBUF_EMBD_ROWS, /* u8 [T, token_embd row bytes] gathered rows (0 when token_embd is on the device) */
    NS_ACTBUF_EMBD_IDS,  /* i32 [T] their ids (same) */
    NS_ACTBUF_COUNT
} ns_actbuf;

/* First workspace buffer: [0, NS_ACTBUF_WORKSPACE_FIRST) are activations. */
#define NS_ACTBUF_WORKSPACE_FIRST NS_ACTBUF_GEMM_W16

/* Name of a buffer ("x", "pages", "cublas_ws"...). */
const char *ns_actbuf_name(ns_actbuf b);

/* What the arena is laid out for: the backend's creation parameters. */
typedef struct ns_arena_config {
    uint32_t max_tokens;         /* T: tokens per forward pass (ns_backend_params.max_tokens) */
    uint64_t n_pages;            /* KV pages (0 is allowed here: the KV component is then empty) */
    uint32_t page_size;          /* tokens per KV page */
    uint32_t max_seq_len;        /* longest sequence: page-table columns = ceil(max_seq_len / page_size) */
    uint32_t n_resident;         /* resident layers, spread evenly (ns_plan_spread_resident); >= n_layer: all */
    uint32_t n_slots;            /* staging slots when something streams (0 = 2) */
    bool embd_on_host;           /* token_embd stays in pinned host memory (ignored with a tied head) */
    uint64_t gemm_dequant_bytes; /* 0 = max(64 MiB, 64 rows of the widest K in f16) */
    uint64_t cublas_ws_bytes;    /* 0 = 32 MiB */
    uint64_t attn_partial_bytes; /* 0 = 16 MiB */
} ns_arena_config;

typedef struct ns_arena_layout {
    uint64_t comp_offset[NS_PLAN_COMP_COUNT]; /* from the arena base */
    uint64_t comp_bytes[NS_PLAN_COMP_COUNT];  /* each a multiple of NS_MSIZE_ALIGN */
    uint64_t total;                           /* sum of comp_bytes: the one cudaMalloc */

    uint64_t buf_offset[NS_ACTBUF_COUNT]; /* from the arena base */
    uint64_t buf_bytes[NS_ACTBUF_COUNT];  /* unaligned request; the arena spends ns_msize_align of it */

    uint32_t n_resident;       /* resident layers (clamped to n_layer) */
    uint32_t n_streamed;       /* n_layer - n_resident */
    uint32_t n_slots;          /* 0 when nothing streams */
    uint64_t slot_bytes;       /* largest streamed layer's package (its tensors, each aligned) */
    uint64_t host_layer_bytes; /* pinned packages of all streamed layers = bytes copied per forward pass */
    bool embd_on_host;         /* effective (false with a tied head) */
    uint64_t kv_pool_bytes;    /* one of the K and V pools, all layers: n_layer*n_pages*n_head_kv*page*hd*2 */
    int64_t max_k;             /* widest matmul input: max(n_embd, n_ff, n_head * head_dim) */
    uint64_t gemm_dequant_bytes, cublas_ws_bytes, attn_partial_bytes; /* resolved defaults */
    uint64_t embd_row_bytes;                                          /* gathered row size (0 when on device) */
} ns_arena_layout;

/* Lay out the arena for model `ms` under `cfg`. NS_ERR_INVALID_ARG on a zero
 * max_tokens/page_size/max_seq_len, n_slots outside 2..8, or a GEMM scratch
 * smaller than 64 rows of max_k (the kernels would refuse it); NS_ERR_RANGE
 * on overflow. On error `out` is zeroed. */
ns_status ns_arena_layout_compute(const ns_model_sizes *ms, const ns_arena_config *cfg, ns_arena_layout *out);

/* Whether layer `il` is resident when n_resident of n_layer layers are:
 * the resident layers are spread evenly (layer il is resident when
 * floor((il+1)*R/L) > floor(il*R/L), so R=1 of 4 is layer 3, R=2 of 4 are 1
 * and 3). Spreading lets the copy engine keep filling slots while resident
 * layers compute; a contiguous block of resident layers stalls it once the
 * K slots are full (docs/memory.md, tests/planner/test_staging_sched.c). */
bool ns_plan_spread_resident(uint32_t il, uint32_t n_resident, uint32_t n_layer);

/* Bytes of one KV page in the arena, K and V, all layers (before the 256
 * rounding of each pool). */
uint64_t ns_arena_kv_page_bytes(const ns_model_sizes *ms, uint32_t page_size);

#endif /* NS_ARENA_LAYOUT_H */
