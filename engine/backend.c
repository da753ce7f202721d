/*
 * backend.c - backend-independent helpers of backend.h.
 * Thread safety: reentrant.
 */
#include "backend.h"

#include <string.h>

int32_t ns_act_width(const ns_hparams *hp, ns_act act) {
    int32_t n_q = hp->n_head * hp->head_dim;
    int32_t n_kv = hp->n_head_kv * hp->head_dim;
    switch (act) {
    case NS_ACT_X:
        return hp->n_embd;
    case NS_ACT_XN:
        return hp->n_embd > n_q ? hp->n_embd : n_q;
    case NS_ACT_Q:
    case NS_ACT_ATTN:
        return n_q;
    case NS_ACT_K:
    case NS_ACT_V:
        return n_kv;
    case NS_ACT_GATE:
    case NS_ACT_UP:
        return hp->n_ff;
    case NS_ACT_LOGITS:
        return hp->n_vocab;
    case NS_ACT_COUNT:
    default:
        return 0;
    }
}

void ns_backend_destroy(ns_backend *b) {
    if (b == NULL || b->iface == NULL) {
        return;
    }
    b->iface->destroy(b->ctx);
    memset(b, 0, sizeof(*b));
}

const char *ns_backend_name(const ns_backend *b) {
    return b != NULL && b->iface != NULL ? b->iface->name : "none";
}
