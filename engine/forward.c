/*
 * forward.c - the one forward pass for every architecture and backend.
 *
 * Walks the layers of the model description and calls backend ops; every
 * architecture difference comes from the model (biases present or not, RoPE
 * style, tied output) and is handled by data, not by a separate function.
 *
 *   X = embed(tokens)
 *   per layer: XN = rmsnorm(X); Q,K,V = XN W (+ b); rope(Q), rope(K);
 *              store K,V in the pages; ATTN = attention(Q); X += ATTN Wo;
 *              XN = rmsnorm(X); GATE = silu(XN Wg) * (XN Wu); X += GATE Wd
 *   head, only for rows with want_logits: XN = rows(X); XN = rmsnorm(XN);
 *              LOGITS = XN Wout
 * Thread safety: one pass at a time per backend.
 */
#include "backend.h"

ns_status ns_forward(const ns_model *model, ns_backend *b, const ns_ubatch *ub, float *logits, ns_err *err) {
    const ns_backend_iface *f = b->iface;
    void *ctx = b->ctx;
    const ns_hparams *hp = ns_model_hparams(model);
    const int32_t n = ub->n_tokens;

    ns_status st = f->begin(ctx, ub);
    if (st != NS_OK) {
        return ns__err_set(err, st, "%s", f->errmsg(ctx));
    }
    f->embed(ctx, ns_model_tok_embd(model), NS_ACT_X, n);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const ns_layer *L = ns_model_layer(model, il);
        f->rmsnorm(ctx, NS_ACT_X, L->attn_norm, hp->rms_eps, NS_ACT_XN, n);
        f->matmul(ctx, L->wq, NS_ACT_XN, NS_ACT_Q, n, false);
        f->matmul(ctx, L->wk, NS_ACT_XN, NS_ACT_K, n, false);
        f->matmul(ctx, L->wv, NS_ACT_XN, NS_ACT_V, n, false);
        if (L->bq != NULL) {
            f->add_bias(ctx, NS_ACT_Q, L->bq, n);
        }
        if (L->bk != NULL) {
            f->add_bias(ctx, NS_ACT_K, L->bk, n);
        }
        if (L->bv != NULL) {
            f->add_bias(ctx, NS_ACT_V, L->bv, n);
        }
        f->rope(ctx, NS_ACT_Q, hp->n_head, n);
        f->rope(ctx, NS_ACT_K, hp->n_head_kv, n);
        f->kv_store(ctx, il, NS_ACT_K, NS_ACT_V, n);
        f->attention(ctx, il, NS_ACT_Q, NS_ACT_ATTN, n);
        f->matmul(ctx, L->wo, NS_ACT_ATTN, NS_ACT_X, n, true);
        f->rmsnorm(ctx, NS_ACT_X, L->ffn_norm, hp->rms_eps, NS_ACT_XN, n);
        f->matmul(ctx, L->w_gate, NS_ACT_XN, NS_ACT_GATE, n, false);
        f->matmul(ctx, L->w_up, NS_ACT_XN, NS_ACT_UP, n, false);
        f->swiglu(ctx, NS_ACT_GATE, NS_ACT_UP, hp->n_ff, n);
        f->matmul(ctx, L->w_down, NS_ACT_GATE, NS_ACT_X, n, true);
    }
    if (ub->n_logits > 0) {
        f->get_rows(ctx, NS_ACT_X, NS_ACT_XN);
        f->rmsnorm(ctx, NS_ACT_XN, ns_model_output_norm(model), hp->rms_eps, NS_ACT_XN, ub->n_logits);
        f->matmul(ctx, ns_model_output(model), NS_ACT_XN, NS_ACT_LOGITS, ub->n_logits, false);
    }
    st = f->end(ctx, logits, ub->n_logits);
    if (st != NS_OK) {
        return ns__err_set(err, st, "%s", f->errmsg(ctx));
    }
    return NS_OK;
}
