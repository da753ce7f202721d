/*
 * engine.c - opens model, tokenizer, backend, KV cache and scheduler
 * together (see engine.h; the VRAM-budget rules are in docs/memory.md).
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend_cuda.h"
#include "model_sizes.h"
#if defined(NS_HAVE_CUDA)
#include "ns_cuda.h"
#endif

struct ns_engine {
    ns_model *model;
    ns_tokenizer *tok;
    ns_backend be;
    ns_backend_params bp;
    ns_kv_cache *kv;
    ns_sched *sched;
    bool have_plan;
    ns_plan plan;         /* valid when have_plan */
    uint64_t vram_budget; /* as given */
};

void ns_engine_params_default(ns_engine_params *p) {
    memset(p, 0, sizeof *p);
    p->backend = NS_BACKEND_AUTO;
    p->resident_layers = -1;
}

bool ns_backend_kind_parse(const char *s, ns_backend_kind *out) {
    if (strcmp(s, "cpu") == 0) {
        *out = NS_BACKEND_CPU;
    } else if (strcmp(s, "cuda") == 0) {
        *out = NS_BACKEND_CUDA;
    } else if (strcmp(s, "auto") == 0) {
        *out = NS_BACKEND_AUTO;
    } else {
        return false;
    }
    return true;
}

/* Backend parameters without a budget (engine.h's defaults). */
static void default_backend_params(const ns_engine_params *p, const ns_hparams *hp, ns_backend_params *bp) {
    bp->max_tokens = p->max_tokens > 0 ? p->max_tokens : 512;
    bp->n_threads = p->n_threads;
    bp->device = p->device;
    bp->kv.max_seqs = p->max_seqs > 0 ? p->max_seqs : 16;
    if (bp->kv.max_seqs > bp->max_tokens) {
        bp->kv.max_seqs = bp->max_tokens;
    }
    bp->kv.page_size = p->page_size > 0 ? p->page_size : NS_KV_DEFAULT_PAGE_SIZE;
    int32_t ctx = p->max_seq_len;
    if (ctx <= 0) {
        ctx = hp->n_ctx_train > 0 ? (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096) : 2048;
    }
    bp->kv.max_seq_len = ctx;
    int32_t per_seq = (ctx + bp->kv.page_size - 1) / bp->kv.page_size;
    bp->kv.n_pages = p->n_pages > 0 ? p->n_pages : per_seq * bp->kv.max_seqs;
}

#if defined(NS_HAVE_CUDA)
/* Plan the model under p->vram_budget and fill e->plan and e->bp from it. */
static ns_status plan_for_budget(ns_engine *e, const ns_engine_params *p, ns_err *err) {
    ns_model_sizes ms;
    ns_plan_params pp;
    ns_plan_params_default(&pp);
    pp.vram_budget = p->vram_budget;
    pp.resident_layers = p->resident_layers;
    pp.n_ctx = (uint32_t)e->bp.kv.max_seq_len;
    pp.kv_block_tokens = (uint32_t)e->bp.kv.page_size;
    pp.max_step_tokens = p->max_tokens > 0 ? (uint32_t)p->max_tokens : 0;
    const char *wl = p->workload != NULL ? p->workload : "summarize";
    if (ns_workload_get(wl, &pp.workload) != NS_OK) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "engine: unknown workload '%s' (summarize, label, single)", wl);
    }
    /* The workload is a hint for the cost model: shrink it to fit the context. */
    uint64_t need = (uint64_t)pp.workload.prompt_tokens + pp.workload.output_tokens;
    if (need > pp.n_ctx) {
        uint32_t out = pp.workload.output_tokens;
        uint32_t cap = pp.n_ctx / 8 > 0 ? pp.n_ctx / 8 : 1;
        out = out > cap ? cap : out;
        pp.workload.output_tokens = out;
        pp.workload.prompt_tokens = pp.n_ctx - out > 0 ? pp.n_ctx - out : 1;
    }
    NS_TRY(ns_model_sizes_from_model(e->model, &ms, err));
    ns_status st = ns_plan_compute(&ms, &pp, &e->plan, err);
    ns_model_sizes_free(&ms);
    if (st != NS_OK) {
        return st;
    }
    st = ns_backend_params_from_plan(&e->plan, p->max_seqs, &e->bp);
    if (st != NS_OK) {
        return ns__err_set(err, st, "engine: the plan's sizes do not fit the backend parameters");
    }
    e->have_plan = true;
    return NS_OK;
}
#endif

static ns_status create_backend(ns_engine *e, const ns_engine_params *p, ns_err *err) {
    const ns_backend_kind kind = p->backend;
    const bool placed = p->vram_budget > 0 || p->resident_layers > 0;
    if (kind == NS_BACKEND_CPU && placed) {
        return ns__err_set(err, NS_ERR_INVALID_ARG,
                           "engine: --vram-budget and --resident-layers apply to the CUDA backend, not cpu");
    }
    if (p->resident_layers > 0 && p->vram_budget == 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "engine: --resident-layers needs --vram-budget");
    }
#if defined(NS_HAVE_CUDA)
    if (kind == NS_BACKEND_CUDA || kind == NS_BACKEND_AUTO) {
        ns_status st;
        if (p->vram_budget > 0) {
            st = plan_for_budget(e, p, err);
            if (st == NS_OK) {
                ns_backend_cuda_params cp;
                ns_backend_cuda_params_from_plan(&e->plan, &cp);
                st = ns_backend_cuda_create_ex(e->model, &e->bp, &cp, &e->be, err);
            }
        } else {
            st = ns_backend_cuda_create(e->model, &e->bp, &e->be, err);
        }
        if (st == NS_OK || kind == NS_BACKEND_CUDA) {
            return st;
        }
        /* AUTO: fall back to the CPU with the default sizes. */
        e->have_plan = false;
        memset(&e->plan, 0, sizeof e->plan);
        default_backend_params(p, ns_model_hparams(e->model), &e->bp);
    }
#else
    if (kind == NS_BACKEND_CUDA) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "engine: this build has no CUDA backend");
    }
    if (placed) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED,
                           "engine: --vram-budget and --resident-layers need the CUDA backend; this build has none");
    }
#endif
    return ns_backend_cpu_create(e->model, &e->bp, &e->be, err);
}

ns_status ns_engine_create(const ns_engine_params *p, ns_engine **out, ns_err *err) {
    *out = NULL;
    ns_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "engine: out of memory");
    }
    ns_status st = ns_model_load(p->model_path, &e->model, err);
    if (st != NS_OK) {
        goto fail;
    }
    st = ns_tokenizer_load(ns_model_gguf(e->model), &e->tok, err);
    if (st != NS_OK) {
        goto fail;
    }
    e->vram_budget = p->vram_budget;
    default_backend_params(p, ns_model_hparams(e->model), &e->bp);
    st = create_backend(e, p, err);
    if (st != NS_OK) {
        goto fail;
    }
    st = ns_kv_cache_create(&e->bp.kv, &e->kv, err);
    if (st != NS_OK) {
        goto fail;
    }
    st = ns_sched_create(e->model, &e->be, &e->bp, e->kv, e->tok, NULL, &e->sched, err);
    if (st != NS_OK) {
        goto fail;
    }
    *out = e;
    return NS_OK;
fail:
    ns_engine_free(&e);
    return st;
}

void ns_engine_free(ns_engine **pe) {
    if (pe == NULL || *pe == NULL) {
        return;
    }
    ns_engine *e = *pe;
    ns_sched_free(&e->sched);
    ns_kv_cache_free(&e->kv);
    ns_backend_destroy(&e->be);
    ns_tokenizer_free(&e->tok);
    ns_model_free(&e->model);
    free(e);
    *pe = NULL;
}

const ns_model *ns_engine_model(const ns_engine *e) {
    return e->model;
}
const ns_tokenizer *ns_engine_tokenizer(const ns_engine *e) {
    return e->tok;
}
ns_backend *ns_engine_backend(ns_engine *e) {
    return &e->be;
}
ns_kv_cache *ns_engine_kv(ns_engine *e) {
    return e->kv;
}
ns_sched *ns_engine_sched(ns_engine *e) {
    return e->sched;
}
const ns_backend_params *ns_engine_backend_params(const ns_engine *e) {
    return &e->bp;
}

const ns_plan *ns_engine_plan(const ns_engine *e) {
    return e->have_plan ? &e->plan : NULL;
}

bool ns_engine_device_info(const ns_engine *e, ns_engine_device *out) {
    memset(out, 0, sizeof *out);
#if defined(NS_HAVE_CUDA)
    const ns_cuda_info *info = ns_backend_cuda_info(&e->be);
    if (info == NULL) {
        return false;
    }
    snprintf(out->name, sizeof out->name, "%s", info->name);
    out->total_bytes = info->total_bytes;
    out->context_overhead = info->context_overhead;
    out->overhead_exact = info->overhead_exact;
    out->arena_bytes = info->arena_bytes;
    out->budget_bytes = e->vram_budget;
    return true;
#else
    (void)e;
    return false;
#endif
}
