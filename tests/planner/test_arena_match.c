/* test_arena_match.c - one truth for the arena size: for real and
 * synthetic models under several budgets, workloads and forced placements,
 * the CUDA backend's own pure sizing (ns_backend_cuda_arena_layout on the
 * backend parameters the engine derives from a plan) equals the plan byte
 * for byte, and every piece agrees with functions the backend carves with
 * independently: ns_act_width, ns_kv_storage_bytes, the tensors of each
 * ns_layer, and (in CUDA builds) the kernels' ns_cuda_scratch_bytes. No GPU
 * is touched. Synthetic llama shapes up to 70B are written as sparse GGUF
 * files (header only; the data is a hole), so they cost no disk. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena_layout.h"
#include "backend.h"
#include "cuda/backend_cuda.h"
#include "gguf_write.h"
#include "kv_cache.h"
#include "model.h"
#include "ns_test.h"
#include "planner.h"
#include "shape_table.h"
#if defined(NS_HAVE_CUDA)
#include "ns_cuda.h"
#endif

#define GIB (1024.0 * 1024.0 * 1024.0)

static uint64_t al(uint64_t n) {
    return (n + 255) & ~(uint64_t)255;
}

/* Write `shape` at `ft` as a GGUF whose tensor data is a hole. */
static void write_sparse(const char *path, const char *shape_name, ns_synth_ftype ft, int tied) {
    const ns_synth_shape *shape = ns_synth_shape_find(shape_name);
    ASSERT_TRUE(shape != NULL);
    shape_table s;
    ASSERT_EQ(shape_table_build(&s, shape, ft, tied), 0);
    ns_gguf_writer *w = NULL;
    ns_err err;
    ASSERT_OK(ns_gguf_writer_new(&w));
    ASSERT_OK(ns_gguf_writer_set_str(w, "general.architecture", "llama", 5));
    ASSERT_OK(ns_gguf_writer_set_u32(w, "general.alignment", NS_GGUF_DEFAULT_ALIGNMENT));
    ASSERT_OK(ns_gguf_writer_set_u32(w, "llama.context_length", shape->n_ctx));
    ASSERT_OK(ns_gguf_writer_set_u32(w, "llama.embedding_length", shape->n_embd));
    ASSERT_OK(ns_gguf_writer_set_u32(w, "llama.block_count", shape->n_layer));
    ASSERT_OK(ns_gguf_writer_set_u32(w, "llama.feed_forward_length", shape->n_ff));
    ASSERT_OK(ns_gguf_writer_set_u32(w, "llama.rope.dimension_count", shape->n_embd / shape->n_head));
    ASSERT_OK(ns_gguf_writer_set_u32(w, "llama.attention.head_count", shape->n_head));
    ASSERT_OK(ns_gguf_writer_set_u32(w, "llama.attention.head_count_kv", shape->n_head_kv));
    ASSERT_OK(ns_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f));
    uint64_t data = 0;
    for (size_t i = 0; i < s.n; i++) {
        ASSERT_OK(ns_gguf_writer_add_tensor(w, s.t[i].name, s.t[i].type, s.t[i].n_dims, s.t[i].ne));
        data += (s.t[i].nbytes + NS_GGUF_DEFAULT_ALIGNMENT - 1) / NS_GGUF_DEFAULT_ALIGNMENT * NS_GGUF_DEFAULT_ALIGNMENT;
    }
    ASSERT_OK(ns_gguf_writer_begin(w, path, &err));
    ns_gguf_writer_free(&w); /* closes the file after the header; no data written */
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
    long header = ftell(f);
    fclose(f);
    ASSERT_TRUE(header > 0);
    int fd = open(path, O_WRONLY);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(ftruncate(fd, (off_t)((uint64_t)header + NS_GGUF_DEFAULT_ALIGNMENT + data)), 0);
    close(fd);
    shape_table_free(&s);
}

/* Independent checks of a layout against what the backend carves. */
static void check_pieces(const ns_model *m, const ns_backend_params *bp, const ns_backend_cuda_params *cp,
                         const ns_arena_layout *l) {
    const ns_hparams *hp = ns_model_hparams(m);
    const uint64_t T = (uint64_t)bp->max_tokens;
    for (int a = 0; a < NS_ACT_COUNT; a++) {
        ASSERT_EQ(l->buf_bytes[a], T * (uint64_t)ns_act_width(hp, (ns_act)a) * 4);
    }
    ASSERT_EQ(2 * l->kv_pool_bytes, ns_kv_storage_bytes(&bp->kv, hp->n_layer, hp->n_head_kv, hp->head_dim));
    ASSERT_EQ(l->comp_bytes[NS_PLAN_KV], 2 * al(l->kv_pool_bytes));
    const uint64_t cols = (uint64_t)((bp->kv.max_seq_len + bp->kv.page_size - 1) / bp->kv.page_size);
    ASSERT_EQ(l->buf_bytes[NS_ACTBUF_PAGES], T * cols * 4);
    ASSERT_EQ(l->buf_bytes[NS_ACTBUF_ROPE], (uint64_t)(hp->n_rot / 2) * 4);
    /* Weights: every tensor the model uses, by ns_layer membership (not by name). */
    const uint32_t L = (uint32_t)hp->n_layer;
    const uint32_t R = cp->n_resident < 0 ? L : (uint32_t)cp->n_resident;
    const bool embd_host = cp->embd_on_host && !hp->tied_output;
    uint64_t resident = 0, host = 0, slot = 0, counted = 0;
    for (uint32_t il = 0; il < L; il++) {
        const ns_layer *ly = ns_model_layer(m, (int32_t)il);
        const ns_tensor *f[] = {ly->attn_norm, ly->wq, ly->wk,       ly->wv,     ly->wo,   ly->bq,
                                ly->bk,        ly->bv, ly->ffn_norm, ly->w_gate, ly->w_up, ly->w_down};
        uint64_t pkg = 0;
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
            if (f[k] != NULL) {
                pkg += al(f[k]->nbytes);
                counted++;
            }
        }
        if (ns_plan_spread_resident(il, R, L)) {
            resident += pkg;
        } else {
            host += pkg;
            slot = pkg > slot ? pkg : slot;
        }
    }
    for (int32_t id = 0; id < ns_model_n_tensors(m); id++) {
        const ns_tensor *t = ns_model_tensor(m, id);
        if (strncmp(t->name, "blk.", 4) == 0) {
            continue;
        }
        counted++;
        if (!(t == ns_model_tok_embd(m) && embd_host)) {
            resident += al(t->nbytes);
        }
    }
    ASSERT_EQ(counted, (uint64_t)ns_model_n_tensors(m)); /* every layer tensor is in an ns_layer field */
    ASSERT_EQ(l->comp_bytes[NS_PLAN_RESIDENT], resident);
    ASSERT_EQ(l->host_layer_bytes, host);
    ASSERT_EQ(l->slot_bytes, slot);
    const uint32_t K = cp->n_slots > 0 ? (uint32_t)cp->n_slots : 2;
    ASSERT_EQ(l->comp_bytes[NS_PLAN_STAGING], R < L ? K * slot : 0);
    ASSERT_EQ(l->embd_row_bytes, embd_host ? ns_model_tok_embd(m)->row_bytes : 0);
#if defined(NS_HAVE_CUDA)
    ns_cuda_scratch_cfg sc;
    memset(&sc, 0, sizeof sc);
    sc.max_tokens = bp->max_tokens;
    sc.max_k = l->max_k;
    sc.gemm_dequant_bytes = (size_t)l->gemm_dequant_bytes;
    sc.cublas_ws_bytes = (size_t)l->cublas_ws_bytes;
    sc.attn_partial_bytes = (size_t)l->attn_partial_bytes;
    sc.embd_row_bytes = (size_t)l->embd_row_bytes;
    ASSERT_EQ((uint64_t)ns_cuda_scratch_bytes(&sc), l->comp_bytes[NS_PLAN_WORKSPACE]);
#endif
}

/* Plan `m` under `budget`; then check the backend's side matches. Returns
 * false when the budget is too small for this model. */
static bool match_one(const ns_model *m, const ns_model_sizes *ms, uint64_t budget, const char *workload,
                      int32_t resident, uint32_t ctx) {
    ns_plan_params pp;
    ns_plan pl;
    ns_err err;
    ns_plan_params_default(&pp);
    pp.vram_budget = budget;
    pp.resident_layers = resident;
    pp.n_ctx = ctx;
    ASSERT_OK(ns_workload_get(workload, &pp.workload));
    ns_status st = ns_plan_compute(ms, &pp, &pl, &err);
    if (st == NS_ERR_CAPACITY) {
        return false;
    }
    ASSERT_OK(st);
    /* What the engine does with a plan (engine.c). */
    ns_backend_params bp;
    ns_backend_cuda_params cp;
    memset(&bp, 0, sizeof bp);
    ASSERT_OK(ns_backend_params_from_plan(&pl, 0, &bp));
    ns_backend_cuda_params_from_plan(&pl, &cp);
    ASSERT_EQ(bp.kv.n_pages, (int32_t)pl.kv_blocks);
    ASSERT_EQ(bp.max_tokens, (int32_t)pl.max_step_tokens);
    ASSERT_TRUE(bp.kv.max_seqs >= 1 && bp.kv.max_seqs <= bp.max_tokens && bp.kv.max_seqs <= bp.kv.n_pages);
    ASSERT_EQ(cp.arena_bytes, pl.arena_bytes);
    ns_arena_config ac;
    ns_backend_cuda_arena_config(&bp, &cp, ns_model_hparams(m)->n_layer, &ac);
    ASSERT_EQ(memcmp(&ac, &pl.arena_cfg, sizeof ac), 0);
    /* The backend's layout == the plan's, byte for byte. */
    ns_arena_layout bl;
    ASSERT_OK(ns_backend_cuda_arena_layout(m, &bp, &cp, &bl, &err));
    ASSERT_EQ(memcmp(&bl, &pl.layout, sizeof bl), 0);
    ASSERT_EQ(bl.total, pl.arena_bytes);
    ASSERT_EQ(ns_backend_cuda_arena_bytes(m, &bp, &cp), pl.arena_bytes);
    for (int c = 0; c < NS_PLAN_COMP_COUNT; c++) {
        ASSERT_EQ(bl.comp_bytes[c], pl.comp_bytes[c]);
        ASSERT_EQ(bl.comp_offset[c], pl.comp_offset[c]);
    }
    ASSERT_TRUE(pl.arena_bytes <= budget);
    check_pieces(m, &bp, &cp, &bl);
    /* The legacy "everything resident, sized exactly" configuration too. */
    ns_backend_cuda_params all;
    ns_backend_cuda_params_default(&all);
    ASSERT_OK(ns_backend_cuda_arena_layout(m, &bp, &all, &bl, &err));
    check_pieces(m, &bp, &all, &bl);
    return true;
}

static void match_model(const char *path, const char *label, const double *budgets_gib, int n_budgets) {
    ns_model *m = NULL;
    ns_model_sizes ms;
    ns_err err;
    ASSERT_OK(ns_model_load(path, &m, &err));
    ASSERT_OK(ns_model_sizes_from_model(m, &ms, &err));
    const char *wls[] = {"summarize", "label", "single"};
    const int32_t L = ns_model_hparams(m)->n_layer;
    int n_ok = 0;
    for (int b = 0; b < n_budgets; b++) {
        const uint64_t budget = (uint64_t)(budgets_gib[b] * GIB) + 12345; /* not aligned on purpose */
        for (int w = 0; w < 3; w++) {
            n_ok += match_one(m, &ms, budget, wls[w], -1, 0);
        }
        n_ok += match_one(m, &ms, budget, "single", 0, 0);
        n_ok += match_one(m, &ms, budget, "single", L / 2, 2048);
        n_ok += match_one(m, &ms, budget, "summarize", L, 0);
    }
    fprintf(stderr, "%s: %d plans match the backend's layout byte for byte\n", label, n_ok);
    ASSERT_TRUE(n_ok >= n_budgets * 2);
    ns_model_sizes_free(&ms);
    ns_model_free(&m);
}

int main(void) {
    static const char *refs[] = {"micro-llama-q4_k_m.gguf", "micro-llama-q8_0.gguf", "micro-qwen2-q8_0.gguf",
                                 "stories260K.gguf", "tiny-llama-q4_k_m.gguf"};
    static const double small[] = {0.25, 0.5, 1.0, 12.0};
    int n_ref = 0;
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/models/%s", NS_REFERENCE_DIR, refs[i]);
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "%s: absent, skipped\n", refs[i]);
            continue;
        }
        match_model(path, refs[i], small, 4);
        n_ref++;
    }
    static const struct {
        const char *shape;
        ns_synth_ftype ft;
        int tied;
        double budgets[3];
    } syn[] = {
        {"llama2-7b", NS_FTYPE_Q4_K_M, 0, {4.0, 6.0, 24.0}},    {"llama3-8b", NS_FTYPE_Q4_K_M, 0, {6.0, 12.0, 24.0}},
        {"llama2-13b", NS_FTYPE_Q4_K_M, 0, {12.0, 16.0, 24.0}}, {"llama2-70b", NS_FTYPE_Q4_K_M, 0, {12.0, 24.0, 80.0}},
        {"tinyllama-1.1b", NS_FTYPE_Q8_0, 1, {0.5, 1.0, 4.0}},
    };
    char dir[] = "/tmp/ns_arena_match_XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    for (size_t i = 0; i < sizeof syn / sizeof syn[0]; i++) {
        char path[256], label[64];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, syn[i].shape);
        snprintf(label, sizeof label, "%s %s%s (sparse)", syn[i].shape, ns_synth_ftype_name(syn[i].ft),
                 syn[i].tied ? " tied" : "");
        write_sparse(path, syn[i].shape, syn[i].ft, syn[i].tied);
        match_model(path, label, syn[i].budgets, 3);
        unlink(path);
    }
    rmdir(dir);
    fprintf(stderr, "test_arena_match: ok (%d reference models)\n", n_ref);
    return 0;
}
