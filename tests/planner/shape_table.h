/*
 * shape_table.h - test helper: the tensor table of a llama-shaped model built
 * in memory (no file), with llama.cpp's tensor-type mix from synth.h, so the
 * planner tests can account a 70B model without writing 40 GB.
 * Header-only; owns nothing beyond the returned table (free with
 * shape_table_free).
 */
#ifndef NS_TEST_SHAPE_TABLE_H
#define NS_TEST_SHAPE_TABLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_sizes.h"
#include "synth.h"

typedef struct shape_table {
    ns_gguf_tensor *t;
    size_t n;
    char (*names)[64];
    ns_msize_hparams hp;
} shape_table;

static void st_add(shape_table *s, ns_type type, const char *name, int64_t ne0, int64_t ne1) {
    ns_gguf_tensor *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    snprintf(s->names[s->n], 64, "%s", name);
    t->name = s->names[s->n];
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 > 1 ? ne1 : 1;
    t->ne[2] = t->ne[3] = 1;
    t->type = type;
    t->n_elements = (uint64_t)ne0 * (uint64_t)t->ne[1];
    t->nbytes = ns_type_row_size(type, ne0) * (uint64_t)t->ne[1];
    s->n++;
}

/* Table of `shape` at `ft`; tied drops output.weight. Returns 0 on success. */
static int shape_table_build(shape_table *s, const ns_synth_shape *shape, ns_synth_ftype ft, int tied) {
    const int64_t E = shape->n_embd, F = shape->n_ff, V = shape->n_vocab;
    const int64_t hd = E / shape->n_head, qd = hd * shape->n_head, kd = hd * shape->n_head_kv;
    size_t cap = 3 + (size_t)shape->n_layer * 9;
    memset(s, 0, sizeof *s);
    s->t = calloc(cap, sizeof *s->t);
    s->names = calloc(cap, sizeof *s->names);
    if (s->t == NULL || s->names == NULL) {
        return -1;
    }
#define TY(nm, ne0) ns_synth_tensor_type(shape, ft, nm, ne0)
    st_add(s, TY("token_embd.weight", E), "token_embd.weight", E, V);
    st_add(s, NS_TYPE_F32, "output_norm.weight", E, 1);
    if (!tied) {
        st_add(s, TY("output.weight", E), "output.weight", E, V);
    }
    for (uint32_t il = 0; il < shape->n_layer; il++) {
        static const struct {
            const char *suffix;
            int dims; /* 0: [E], 1: q, 2: k/v, 3: o, 4: gate/up, 5: down */
        } L[] = {{"attn_norm.weight", 0}, {"attn_q.weight", 1},      {"attn_k.weight", 2},
                 {"attn_v.weight", 2},    {"attn_output.weight", 3}, {"ffn_norm.weight", 0},
                 {"ffn_gate.weight", 4},  {"ffn_up.weight", 4},      {"ffn_down.weight", 5}};
        for (size_t k = 0; k < sizeof L / sizeof L[0]; k++) {
            char name[64];
            int64_t ne0 = E, ne1 = 1;
            snprintf(name, sizeof name, "blk.%u.%s", il, L[k].suffix);
            switch (L[k].dims) {
            case 1:
                ne1 = qd;
                break;
            case 2:
                ne1 = kd;
                break;
            case 3:
                ne0 = qd;
                ne1 = E;
                break;
            case 4:
                ne1 = F;
                break;
            case 5:
                ne0 = F;
                ne1 = E;
                break;
            default:
                break;
            }
            st_add(s, L[k].dims == 0 ? NS_TYPE_F32 : TY(name, ne0), name, ne0, ne1);
        }
    }
#undef TY
    memset(&s->hp, 0, sizeof s->hp);
    snprintf(s->hp.arch, sizeof s->hp.arch, "llama");
    s->hp.n_layer = shape->n_layer;
    s->hp.n_embd = shape->n_embd;
    s->hp.n_ff = shape->n_ff;
    s->hp.n_head = shape->n_head;
    s->hp.n_head_kv = shape->n_head_kv;
    s->hp.head_dim_k = s->hp.head_dim_v = (uint32_t)hd;
    s->hp.n_rot = (uint32_t)hd;
    s->hp.n_ctx_train = shape->n_ctx;
    s->hp.n_vocab = shape->n_vocab;
    return 0;
}

static void shape_table_free(shape_table *s) {
    free(s->t);
    free(s->names);
    memset(s, 0, sizeof *s);
}

#endif /* NS_TEST_SHAPE_TABLE_H */
