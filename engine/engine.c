/*
 * engine.c - opens model, tokenizer, backend, KV cache and scheduler
 * together (see engine.h).
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

struct ns_engine {
    ns_model *model;
    ns_tokenizer *tok;
    ns_backend be;
    ns_backend_params bp;
    ns_kv_cache *kv;
    ns_sched *sched;
};

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

static ns_status create_backend(ns_engine *e, ns_backend_kind kind, ns_err *err) {
#if defined(NS_HAVE_CUDA)
    if (kind == NS_BACKEND_CUDA || kind == NS_BACKEND_AUTO) {
        ns_status st = ns_backend_cuda_create(e->model, &e->bp, &e->be, err);
        if (st == NS_OK || kind == NS_BACKEND_CUDA) {
            return st;
        }
    }
#else
    if (kind == NS_BACKEND_CUDA) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "engine: this build has no CUDA backend");
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
    const ns_hparams *hp = ns_model_hparams(e->model);
    ns_backend_params *bp = &e->bp;
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
    st = create_backend(e, p->backend, err);
    if (st != NS_OK) {
        goto fail;
    }
    st = ns_kv_cache_create(&bp->kv, &e->kv, err);
    if (st != NS_OK) {
        goto fail;
    }
    st = ns_sched_create(e->model, &e->be, bp, e->kv, e->tok, NULL, &e->sched, err);
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
