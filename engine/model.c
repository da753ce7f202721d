/*
 * model.c - load the model description (hyperparameters and weight views)
 * from a GGUF file, driven by the architecture table in arch.c.
 *
 * Ownership: ns_model owns its tensor table and, when it opened the file, the
 * gguf handle. Tensor data stays in the mapping.
 * Thread safety: loading is single-threaded; a loaded model is immutable.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "quant.h"

struct ns_model {
    const ns_gguf *gguf; /* the file (owned when owns_gguf) */
    ns_gguf *owned_gguf; /* non-NULL when the model opened the file */
    ns_hparams hp;
    ns_tensor *tensors; /* [n_tensors] descriptors */
    int32_t n_tensors;
    int32_t cap_tensors;
    const ns_tensor *tok_embd, *output_norm, *output, *rope_freqs;
    ns_layer *layers;     /* [n_layer] */
    float *rope_inv_freq; /* [n_rot / 2] */
    uint64_t weight_bytes;
};

static ns_status get_u32_key(const ns_gguf *g, const char *arch, const char *suffix, uint32_t *out, bool required,
                             ns_err *err) {
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    ns_status st = ns_gguf_get_u32(g, key, out);
    if (st == NS_ERR_NOT_FOUND && !required) {
        return NS_ERR_NOT_FOUND;
    }
    if (st != NS_OK) {
        return ns__err_set(err, st == NS_ERR_NOT_FOUND ? NS_ERR_FORMAT : st, "model: metadata key '%s' %s", key,
                           st == NS_ERR_NOT_FOUND ? "missing" : "has a bad value");
    }
    return NS_OK;
}

static ns_status get_f32_key(const ns_gguf *g, const char *arch, const char *suffix, float *out, ns_err *err) {
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    ns_status st = ns_gguf_get_f32(g, key, out);
    if (st == NS_ERR_NOT_FOUND) {
        return NS_ERR_NOT_FOUND;
    }
    if (st != NS_OK) {
        return ns__err_set(err, st, "model: metadata key '%s' has a bad value", key);
    }
    return NS_OK;
}

/* Register a GGUF tensor as a model tensor, checking its shape and type. */
static ns_status add_tensor(ns_model *m, const char *name, int64_t ne0, int64_t ne1, bool required, bool f32_only,
                            const ns_tensor **out, ns_err *err) {
    *out = NULL;
    const ns_gguf_tensor *gt = ns_gguf_find_tensor(m->gguf, name);
    if (gt == NULL) {
        if (required) {
            return ns__err_set(err, NS_ERR_FORMAT, "model: tensor '%s' missing", name);
        }
        return NS_OK;
    }
    int64_t g1 = gt->n_dims >= 2 ? gt->ne[1] : 1;
    if (gt->ne[0] != ne0 || g1 != ne1 || gt->ne[2] != 1 || gt->ne[3] != 1) {
        return ns__err_set(err, NS_ERR_FORMAT,
                           "model: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                           (long long)gt->ne[0], (long long)gt->ne[1], (long long)gt->ne[2], (long long)gt->ne[3],
                           (long long)ne0, (long long)ne1);
    }
    if (f32_only && gt->type != NS_TYPE_F32) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, expected F32", name,
                           ns_type_name(gt->type));
    }
    if (!ns_quant_supported(gt->type)) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "model: tensor '%s' has unsupported type %s", name,
                           ns_type_name(gt->type));
    }
    size_t row_bytes = ns_type_row_size(gt->type, ne0);
    if (row_bytes == 0) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: tensor '%s' row length %lld is not a multiple of %s blocks",
                           name, (long long)ne0, ns_type_name(gt->type));
    }
    if (m->n_tensors >= m->cap_tensors) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: too many tensors");
    }
    ns_tensor *t = &m->tensors[m->n_tensors];
    t->name = gt->name;
    t->type = gt->type;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->row_bytes = row_bytes;
    t->nbytes = row_bytes * (size_t)ne1;
    t->data = gt->data;
    t->id = m->n_tensors;
    if (t->nbytes > gt->nbytes) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: tensor '%s' data is short", name);
    }
    m->n_tensors++;
    m->weight_bytes += t->nbytes;
    *out = t;
    return NS_OK;
}

static int64_t dim_value(const ns_hparams *hp, ns__dim d) {
    switch (d) {
    case NS__DIM_EMBD:
        return hp->n_embd;
    case NS__DIM_Q:
        return (int64_t)hp->n_head * hp->head_dim;
    case NS__DIM_KV:
        return (int64_t)hp->n_head_kv * hp->head_dim;
    case NS__DIM_FF:
        return hp->n_ff;
    case NS__DIM_1:
    default:
        return 1;
    }
}

static ns_status load_hparams(ns_model *m, const ns__arch_info *ai, ns_err *err) {
    const ns_gguf *g = m->gguf;
    ns_hparams *hp = &m->hp;
    const char *a = ai->name;
    uint32_t v;
    ns_status st;

    hp->arch = ai->arch;
    snprintf(hp->arch_name, sizeof(hp->arch_name), "%s", a);
    hp->rope_style = ai->rope_style;

    NS_TRY(get_u32_key(g, a, "embedding_length", &v, true, err));
    hp->n_embd = (int32_t)v;
    NS_TRY(get_u32_key(g, a, "block_count", &v, true, err));
    hp->n_layer = (int32_t)v;
    NS_TRY(get_u32_key(g, a, "attention.head_count", &v, true, err));
    hp->n_head = (int32_t)v;
    NS_TRY(get_u32_key(g, a, "feed_forward_length", &v, true, err));
    hp->n_ff = (int32_t)v;
    st = get_u32_key(g, a, "attention.head_count_kv", &v, false, err);
    if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
        return st;
    }
    hp->n_head_kv = st == NS_OK ? (int32_t)v : hp->n_head;
    st = get_u32_key(g, a, "context_length", &v, false, err);
    if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
        return st;
    }
    hp->n_ctx_train = st == NS_OK ? (int32_t)v : 0;

    if (hp->n_embd <= 0 || hp->n_embd > (1 << 20) || hp->n_layer <= 0 || hp->n_layer > 4096 || hp->n_head <= 0 ||
        hp->n_head > 4096 || hp->n_head_kv <= 0 || hp->n_head_kv > hp->n_head || hp->n_head % hp->n_head_kv != 0 ||
        hp->n_ff <= 0 || hp->n_ff > (1 << 22)) {
        return ns__err_set(err, NS_ERR_FORMAT,
                           "model: bad hyperparameters (n_embd %d, n_layer %d, n_head %d, n_head_kv %d, n_ff %d)",
                           hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff);
    }
    st = get_u32_key(g, a, "attention.key_length", &v, false, err);
    if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
        return st;
    }
    hp->head_dim = st == NS_OK ? (int32_t)v : hp->n_embd / hp->n_head;
    uint32_t vlen;
    st = get_u32_key(g, a, "attention.value_length", &vlen, false, err);
    if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
        return st;
    }
    if (st == NS_OK && (int32_t)vlen != hp->head_dim) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "model: value_length %u differs from key_length %d", vlen,
                           hp->head_dim);
    }
    if (hp->head_dim <= 0 || hp->head_dim > 1024 || hp->head_dim % 2 != 0) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: bad head_dim %d", hp->head_dim);
    }
    st = get_u32_key(g, a, "rope.dimension_count", &v, false, err);
    if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
        return st;
    }
    hp->n_rot = st == NS_OK ? (int32_t)v : hp->head_dim;
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: bad rope.dimension_count %d", hp->n_rot);
    }

    hp->rms_eps = 1e-5f;
    st = get_f32_key(g, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps, err);
    if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
        return st;
    }
    hp->rope_freq_base = 10000.0f;
    st = get_f32_key(g, a, "rope.freq_base", &hp->rope_freq_base, err);
    if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
        return st;
    }
    hp->rope_freq_scale = 1.0f;
    char key[128];
    char stype[32] = "";
    snprintf(key, sizeof(key), "%s.rope.scaling.type", a);
    bool has_type = ns_gguf_get_cstr(g, key, stype, sizeof(stype));
    float factor = 0.0f;
    st = get_f32_key(g, a, "rope.scaling.factor", &factor, err);
    if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
        return st;
    }
    if (st == NS_ERR_NOT_FOUND) {
        st = get_f32_key(g, a, "rope.scale_linear", &factor, err); /* older files */
        if (st != NS_OK && st != NS_ERR_NOT_FOUND) {
            return st;
        }
        if (st == NS_OK) {
            has_type = true;
            snprintf(stype, sizeof(stype), "linear");
        }
    }
    if (has_type && strcmp(stype, "none") != 0) {
        if (strcmp(stype, "linear") != 0) {
            return ns__err_set(err, NS_ERR_UNSUPPORTED, "model: rope scaling type '%s' is not supported", stype);
        }
        if (factor > 0.0f && factor != 1.0f) {
            hp->rope_freq_scale = 1.0f / factor;
        }
    }
    if (!(hp->rms_eps > 0.0f) || !(hp->rope_freq_base > 0.0f) || !isfinite(hp->rope_freq_base)) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: bad rms epsilon or rope base");
    }
    return NS_OK;
}

static ns_status load_tensors(ns_model *m, const ns__arch_info *ai, ns_err *err) {
    ns_hparams *hp = &m->hp;
    const ns_gguf_tensor *te = ns_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (te == NULL) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: tensor 'token_embd.weight' missing");
    }
    if (te->n_dims < 2 || te->ne[1] <= 0 || te->ne[1] > (1 << 24)) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: bad token_embd shape");
    }
    hp->n_vocab = (int32_t)te->ne[1];

    m->cap_tensors = 4 + hp->n_layer * (int32_t)ai->n_layer_tensors;
    m->tensors = calloc((size_t)m->cap_tensors, sizeof(ns_tensor));
    m->layers = calloc((size_t)hp->n_layer, sizeof(ns_layer));
    if (m->tensors == NULL || m->layers == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "model: out of memory");
    }
    NS_TRY(add_tensor(m, "token_embd.weight", hp->n_embd, hp->n_vocab, true, false, &m->tok_embd, err));
    NS_TRY(add_tensor(m, "output_norm.weight", hp->n_embd, 1, true, true, &m->output_norm, err));
    NS_TRY(add_tensor(m, "output.weight", hp->n_embd, hp->n_vocab, false, false, &m->output, err));
    if (m->output == NULL) {
        m->output = m->tok_embd;
        hp->tied_output = true;
    }
    NS_TRY(add_tensor(m, "rope_freqs.weight", hp->n_rot / 2, 1, false, true, &m->rope_freqs, err));

    char name[160];
    for (int32_t il = 0; il < hp->n_layer; il++) {
        for (size_t k = 0; k < ai->n_layer_tensors; k++) {
            const ns__layer_tensor *lt = &ai->layer_tensors[k];
            snprintf(name, sizeof(name), "blk.%d.%s", il, lt->suffix);
            const ns_tensor *t = NULL;
            NS_TRY(add_tensor(m, name, dim_value(hp, lt->ne0), dim_value(hp, lt->ne1), lt->required, lt->f32_only, &t,
                              err));
            memcpy((char *)&m->layers[il] + lt->offset, &t, sizeof(t));
        }
    }

    int32_t n_pairs = hp->n_rot / 2;
    m->rope_inv_freq = calloc((size_t)n_pairs, sizeof(float));
    if (m->rope_inv_freq == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "model: out of memory");
    }
    const float *ff = m->rope_freqs != NULL ? (const float *)m->rope_freqs->data : NULL;
    for (int32_t i = 0; i < n_pairs; i++) {
        double inv = pow((double)hp->rope_freq_base, -2.0 * i / (double)hp->n_rot) * (double)hp->rope_freq_scale;
        if (ff != NULL) {
            if (!(ff[i] > 0.0f) || !isfinite(ff[i])) {
                return ns__err_set(err, NS_ERR_FORMAT, "model: rope_freqs[%d] = %g is not positive", i, (double)ff[i]);
            }
            inv /= (double)ff[i];
        }
        m->rope_inv_freq[i] = (float)inv;
    }
    return NS_OK;
}

ns_status ns_model_load_gguf(const ns_gguf *g, ns_model **out, ns_err *err) {
    ns_status st;
    *out = NULL;
    if (g == NULL) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "model: NULL gguf");
    }
    char arch[64] = "";
    if (!ns_gguf_get_cstr(g, "general.architecture", arch, sizeof(arch))) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: general.architecture missing");
    }
    const ns__arch_info *ai = ns__arch_find(arch);
    if (ai == NULL) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "model: architecture '%s' is not supported", arch);
    }
    ns_model *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "model: out of memory");
    }
    m->gguf = g;
    st = load_hparams(m, ai, err);
    if (st != NS_OK) {
        goto fail;
    }
    st = load_tensors(m, ai, err);
    if (st != NS_OK) {
        goto fail;
    }
    *out = m;
    return NS_OK;
fail:
    ns_model_free(&m);
    return st;
}

ns_status ns_model_load(const char *path, ns_model **out, ns_err *err) {
    *out = NULL;
    ns_gguf *g = NULL;
    NS_TRY(ns_gguf_open(path, &g, err));
    ns_status st = ns_model_load_gguf(g, out, err);
    if (st != NS_OK) {
        ns_gguf_close(&g);
        return st;
    }
    (*out)->owned_gguf = g;
    return NS_OK;
}

void ns_model_free(ns_model **pm) {
    if (pm == NULL || *pm == NULL) {
        return;
    }
    ns_model *m = *pm;
    free(m->tensors);
    free(m->layers);
    free(m->rope_inv_freq);
    ns_gguf_close(&m->owned_gguf);
    free(m);
    *pm = NULL;
}

const ns_hparams *ns_model_hparams(const ns_model *m) {
    return &m->hp;
}
const ns_gguf *ns_model_gguf(const ns_model *m) {
    return m->gguf;
}
const ns_tensor *ns_model_tok_embd(const ns_model *m) {
    return m->tok_embd;
}
const ns_tensor *ns_model_output_norm(const ns_model *m) {
    return m->output_norm;
}
const ns_tensor *ns_model_output(const ns_model *m) {
    return m->output;
}
const ns_tensor *ns_model_rope_freqs(const ns_model *m) {
    return m->rope_freqs;
}

const ns_layer *ns_model_layer(const ns_model *m, int32_t il) {
    NS_ASSERT(il >= 0 && il < m->hp.n_layer);
    return &m->layers[il];
}

int32_t ns_model_n_tensors(const ns_model *m) {
    return m->n_tensors;
}

const ns_tensor *ns_model_tensor(const ns_model *m, int32_t id) {
    NS_ASSERT(id >= 0 && id < m->n_tensors);
    return &m->tensors[id];
}

uint64_t ns_model_weight_bytes(const ns_model *m) {
    return m->weight_bytes;
}

float ns_model_rope_inv_freq(const ns_model *m, int32_t i) {
    NS_ASSERT(i >= 0 && i < m->hp.n_rot / 2);
    return m->rope_inv_freq[i];
}
