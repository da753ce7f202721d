/* model_sizes.c - see model_sizes.h. */
#include "model_sizes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ns_util.h"

uint64_t ns_msize_align(uint64_t n) {
    uint64_t a = NS_MSIZE_ALIGN;
    if (n > UINT64_MAX - (a - 1)) {
        return UINT64_MAX & ~(uint64_t)(a - 1);
    }
    return (n + a - 1) & ~(uint64_t)(a - 1);
}

uint64_t ns_msize_kv_bytes_per_token(const ns_msize_hparams *hp) {
    return (uint64_t)hp->n_layer * hp->n_head_kv * ((uint64_t)hp->head_dim_k + hp->head_dim_v) * 2u;
}

/* A metadata value that is either a scalar or a per-layer array (take the
 * largest element). NS_ERR_NOT_FOUND when absent. */
static ns_status get_u32_or_max(const ns_gguf *g, const char *key, uint32_t *out, ns_err *err) {
    const ns_gguf_kv *kv = ns_gguf_find_kv(g, key);
    if (kv == NULL) {
        return NS_ERR_NOT_FOUND;
    }
    if (kv->type == NS_GGUF_ARRAY) {
        int64_t best = -1;
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            int64_t v;
            if (!ns_gguf_arr_i64(kv, i, &v)) {
                return ns__err_set(err, NS_ERR_FORMAT, "model: %s[%llu] is not an integer", key, (unsigned long long)i);
            }
            if (v > best) {
                best = v;
            }
        }
        if (best < 0 || best > (int64_t)UINT32_MAX) {
            return ns__err_set(err, NS_ERR_FORMAT, "model: %s has no valid element", key);
        }
        *out = (uint32_t)best;
        return NS_OK;
    }
    ns_status st = ns_gguf_get_u32(g, key, out);
    if (st != NS_OK) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: %s is not a 32-bit unsigned integer", key);
    }
    return NS_OK;
}

static ns_status get_arch_u32(const ns_gguf *g, const char *arch, const char *suffix, bool required, uint32_t *out,
                              ns_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    ns_status st = get_u32_or_max(g, key, out, err);
    if (st == NS_ERR_NOT_FOUND) {
        if (required) {
            return ns__err_set(err, NS_ERR_FORMAT, "model: missing metadata key %s", key);
        }
        *out = 0;
        return NS_OK;
    }
    return st;
}

ns_status ns_model_hparams_from_gguf(const ns_gguf *g, ns_msize_hparams *out, ns_err *err) {
    ns_msize_hparams hp;
    memset(&hp, 0, sizeof hp);
    memset(out, 0, sizeof *out);
    if (!ns_gguf_get_cstr(g, "general.architecture", hp.arch, sizeof hp.arch) || hp.arch[0] == '\0') {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "model: general.architecture is missing");
    }
    NS_TRY(get_arch_u32(g, hp.arch, "block_count", true, &hp.n_layer, err));
    NS_TRY(get_arch_u32(g, hp.arch, "embedding_length", true, &hp.n_embd, err));
    NS_TRY(get_arch_u32(g, hp.arch, "feed_forward_length", true, &hp.n_ff, err));
    NS_TRY(get_arch_u32(g, hp.arch, "attention.head_count", true, &hp.n_head, err));
    NS_TRY(get_arch_u32(g, hp.arch, "attention.head_count_kv", false, &hp.n_head_kv, err));
    NS_TRY(get_arch_u32(g, hp.arch, "attention.key_length", false, &hp.head_dim_k, err));
    NS_TRY(get_arch_u32(g, hp.arch, "attention.value_length", false, &hp.head_dim_v, err));
    NS_TRY(get_arch_u32(g, hp.arch, "context_length", false, &hp.n_ctx_train, err));
    NS_TRY(get_arch_u32(g, hp.arch, "rope.dimension_count", false, &hp.n_rot, err));

    if (hp.n_layer == 0 || hp.n_layer > NS_MSIZE_MAX_LAYERS) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: %s.block_count %u out of range 1..%u", hp.arch, hp.n_layer,
                           NS_MSIZE_MAX_LAYERS);
    }
    if (hp.n_embd == 0 || hp.n_head == 0 || hp.n_ff == 0) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: zero embedding_length, head_count or feed_forward_length");
    }
    if (hp.n_head_kv == 0) {
        hp.n_head_kv = hp.n_head;
    }
    if (hp.n_head % hp.n_head_kv != 0) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: head_count %u is not a multiple of head_count_kv %u", hp.n_head,
                           hp.n_head_kv);
    }
    if (hp.head_dim_k == 0) {
        if (hp.n_embd % hp.n_head != 0) {
            return ns__err_set(err, NS_ERR_FORMAT, "model: embedding_length %u not divisible by head_count %u",
                               hp.n_embd, hp.n_head);
        }
        hp.head_dim_k = hp.n_embd / hp.n_head;
    }
    if (hp.head_dim_v == 0) {
        hp.head_dim_v = hp.head_dim_k;
    }
    if (hp.n_rot == 0) {
        hp.n_rot = hp.head_dim_k;
    }

    const ns_gguf_kv *tok = ns_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (tok != NULL && tok->type == NS_GGUF_ARRAY && tok->arr_n > 0 && tok->arr_n <= UINT32_MAX) {
        hp.n_vocab = (uint32_t)tok->arr_n;
    } else {
        const ns_gguf_tensor *te = ns_gguf_find_tensor(g, "token_embd.weight");
        if (te == NULL || te->n_dims < 2 || te->ne[1] <= 0 || te->ne[1] > (int64_t)UINT32_MAX) {
            return ns__err_set(err, NS_ERR_FORMAT, "model: no tokenizer.ggml.tokens and no 2-D token_embd.weight");
        }
        hp.n_vocab = (uint32_t)te->ne[1];
    }
    *out = hp;
    return NS_OK;
}

int64_t ns_msize_layer_index(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) {
        return -1;
    }
    const char *p = name + 4;
    int64_t v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (++digits > 9) {
            return -2;
        }
        p++;
    }
    if (digits == 0 || *p != '.') {
        return -2;
    }
    return v;
}

static bool has_prefix(const char *name, const char *prefix) {
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* Bytes of a tensor: its recorded size, or computed from shape and type. */
static ns_status tensor_bytes(const ns_gguf_tensor *t, uint64_t *out, ns_err *err) {
    if (t->nbytes != 0) {
        *out = t->nbytes;
        return NS_OK;
    }
    size_t row = ns_type_row_size(t->type, t->ne[0]);
    uint64_t total = row;
    if (row == 0 && t->ne[0] != 0) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: tensor '%s' has a shape its type %s cannot hold", t->name,
                           ns_type_name(t->type));
    }
    for (uint32_t d = 1; d < t->n_dims && d < NS_GGUF_MAX_DIMS; d++) {
        if (t->ne[d] < 0 || !ns_mul_u64(total, (uint64_t)t->ne[d], &total)) {
            return ns__err_set(err, NS_ERR_FORMAT, "model: tensor '%s' size overflows", t->name);
        }
    }
    *out = total;
    return NS_OK;
}

static uint64_t matrix_elems(const ns_gguf_tensor *t) {
    if (t->n_dims < 2) {
        return 0;
    }
    uint64_t e = 1;
    for (uint32_t d = 0; d < t->n_dims && d < NS_GGUF_MAX_DIMS; d++) {
        if (t->ne[d] <= 0 || !ns_mul_u64(e, (uint64_t)t->ne[d], &e)) {
            return 0;
        }
    }
    return e;
}

void ns_model_sizes_free(ns_model_sizes *ms) {
    if (ms == NULL) {
        return;
    }
    free(ms->layers);
    memset(ms, 0, sizeof *ms);
}

ns_status ns_model_sizes_build(const ns_msize_hparams *hp, const ns_gguf_tensor *tensors, size_t n, ns_model_sizes *out,
                               ns_err *err) {
    ns_status st = NS_OK;
    ns_model_sizes ms;
    const ns_gguf_tensor *embd = NULL;
    const ns_gguf_tensor *output = NULL;
    memset(&ms, 0, sizeof ms);
    memset(out, 0, sizeof *out);
    if (hp == NULL || (tensors == NULL && n > 0)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "model: NULL hparams or tensor table");
    }
    if (hp->n_layer == 0 || hp->n_layer > NS_MSIZE_MAX_LAYERS || hp->n_embd == 0 || hp->n_head_kv == 0 ||
        hp->head_dim_k == 0 || hp->head_dim_v == 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "model: incomplete hyper-parameters (n_layer %u)", hp->n_layer);
    }
    ms.hp = *hp;
    ms.layers = calloc(hp->n_layer, sizeof *ms.layers);
    if (ms.layers == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "model: cannot allocate %u layer records", hp->n_layer);
    }

    for (size_t i = 0; i < n; i++) {
        const ns_gguf_tensor *t = &tensors[i];
        uint64_t nb = 0;
        if (t->name == NULL) {
            st = ns__err_set(err, NS_ERR_FORMAT, "model: tensor %zu has no name", i);
            goto fail;
        }
        if ((st = tensor_bytes(t, &nb, err)) != NS_OK) {
            goto fail;
        }
        uint64_t dev = ns_msize_align(nb);
        if (!ns_add_u64(ms.total_bytes, nb, &ms.total_bytes)) {
            st = ns__err_set(err, NS_ERR_FORMAT, "model: total tensor bytes overflow");
            goto fail;
        }
        int64_t il = ns_msize_layer_index(t->name);
        if (il == -2 || il >= (int64_t)hp->n_layer) {
            st = ns__err_set(err, NS_ERR_FORMAT, "model: tensor '%s' names a layer outside 0..%u", t->name,
                             hp->n_layer - 1);
            goto fail;
        }
        uint64_t me = matrix_elems(t);
        if (il >= 0) {
            ns_layer_size *L = &ms.layers[il];
            L->bytes += nb;
            L->dev_bytes += dev;
            L->matmul_params += me;
            if (me > L->max_matrix_elems) {
                L->max_matrix_elems = me;
            }
        } else if (strcmp(t->name, "token_embd.weight") == 0) {
            embd = t;
            ms.embd_bytes = nb;
            ms.embd_dev_bytes = dev;
            ms.embd_type = t->type;
        } else if (strcmp(t->name, "output.weight") == 0) {
            output = t;
            ms.head_bytes = nb;
            ms.head_dev_bytes = dev;
            ms.head_type = t->type;
        } else if (has_prefix(t->name, "output_norm.")) {
            ms.output_norm_bytes += nb;
            ms.globals_dev_bytes += dev;
        } else if (has_prefix(t->name, "token_embd.") || has_prefix(t->name, "output.")) {
            /* A bias or scale of the embedding/head: small, kept resident. */
            ms.other_bytes += nb;
            ms.globals_dev_bytes += dev;
        } else {
            ms.other_bytes += nb;
            ms.globals_dev_bytes += dev;
        }
    }

    if (embd == NULL) {
        st = ns__err_set(err, NS_ERR_FORMAT, "model: token_embd.weight is missing");
        goto fail;
    }
    if (embd->ne[0] != (int64_t)hp->n_embd) {
        st = ns__err_set(err, NS_ERR_FORMAT, "model: token_embd.weight ne[0] %lld != embedding_length %u",
                         (long long)embd->ne[0], hp->n_embd);
        goto fail;
    }
    ms.embd_row_bytes = ns_type_row_size(embd->type, embd->ne[0]);
    if (ms.embd_row_bytes == 0) {
        st = ns__err_set(err, NS_ERR_FORMAT, "model: token_embd.weight has an unknown row size");
        goto fail;
    }
    ms.output_tied = (output == NULL);
    if (ms.output_tied) {
        output = embd;
        ms.head_bytes = ms.embd_bytes;
        ms.head_dev_bytes = ms.embd_dev_bytes;
        ms.head_type = ms.embd_type;
    }
    ms.head_row_bytes = ns_type_row_size(output->type, output->ne[0]);
    ms.head_params = matrix_elems(output);
    if (ms.head_row_bytes == 0 || ms.head_params == 0) {
        st = ns__err_set(err, NS_ERR_FORMAT, "model: the output head '%s' is not a 2-D matrix", output->name);
        goto fail;
    }
    ms.max_matrix_elems = ms.head_params;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const ns_layer_size *L = &ms.layers[il];
        if (L->bytes == 0) {
            st = ns__err_set(err, NS_ERR_FORMAT, "model: layer %u has no tensors", il);
            goto fail;
        }
        if (L->dev_bytes > ms.max_layer_dev_bytes) {
            ms.max_layer_dev_bytes = L->dev_bytes;
        }
        if (L->max_matrix_elems > ms.max_matrix_elems) {
            ms.max_matrix_elems = L->max_matrix_elems;
        }
    }
    ms.kv_bytes_per_token = ns_msize_kv_bytes_per_token(hp);
    *out = ms;
    return NS_OK;
fail:
    free(ms.layers);
    return st;
}

ns_status ns_model_sizes_from_gguf(const ns_gguf *g, ns_model_sizes *out, ns_err *err) {
    ns_msize_hparams hp;
    ns_status st;
    ns_gguf_tensor *table = NULL;
    uint64_t n = ns_gguf_n_tensors(g);
    memset(out, 0, sizeof *out);
    NS_TRY(ns_model_hparams_from_gguf(g, &hp, err));
    if (n > SIZE_MAX / sizeof *table) {
        return ns__err_set(err, NS_ERR_FORMAT, "model: too many tensors");
    }
    table = malloc((size_t)(n ? n : 1) * sizeof *table);
    if (table == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "model: cannot allocate a %llu-entry tensor table",
                           (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n; i++) {
        table[i] = *ns_gguf_tensor_at(g, i);
    }
    st = ns_model_sizes_build(&hp, table, (size_t)n, out, err);
    free(table);
    return st;
}

ns_status ns_model_sizes_from_model(const ns_model *m, ns_model_sizes *out, ns_err *err) {
    memset(out, 0, sizeof *out);
    if (m == NULL) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "model: NULL model");
    }
    const ns_hparams *h = ns_model_hparams(m);
    ns_msize_hparams hp;
    memset(&hp, 0, sizeof hp);
    snprintf(hp.arch, sizeof hp.arch, "%s", h->arch_name);
    if (h->n_layer <= 0 || h->n_embd <= 0 || h->n_ff <= 0 || h->n_head <= 0 || h->n_head_kv <= 0 || h->head_dim <= 0 ||
        h->n_vocab <= 0 || h->n_rot < 0 || h->n_ctx_train < 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "model: bad hyper-parameters");
    }
    hp.n_layer = (uint32_t)h->n_layer;
    hp.n_embd = (uint32_t)h->n_embd;
    hp.n_ff = (uint32_t)h->n_ff;
    hp.n_head = (uint32_t)h->n_head;
    hp.n_head_kv = (uint32_t)h->n_head_kv;
    hp.head_dim_k = hp.head_dim_v = (uint32_t)h->head_dim;
    hp.n_ctx_train = (uint32_t)h->n_ctx_train;
    hp.n_vocab = (uint32_t)h->n_vocab;
    hp.n_rot = h->n_rot > 0 ? (uint32_t)h->n_rot : hp.head_dim_k;
    const int32_t n = ns_model_n_tensors(m);
    ns_gguf_tensor *table = calloc((size_t)(n > 0 ? n : 1), sizeof *table);
    if (table == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "model: cannot allocate a %d-entry tensor table", n);
    }
    for (int32_t i = 0; i < n; i++) {
        const ns_tensor *t = ns_model_tensor(m, i);
        ns_gguf_tensor *g = &table[i];
        g->name = t->name;
        g->n_dims = t->ne[1] > 1 ? 2 : 1;
        g->ne[0] = t->ne[0];
        g->ne[1] = t->ne[1];
        for (uint32_t d = 2; d < NS_GGUF_MAX_DIMS; d++) {
            g->ne[d] = 1;
        }
        g->type = t->type;
        g->n_elements = (uint64_t)t->ne[0] * (uint64_t)t->ne[1];
        g->nbytes = t->nbytes;
        g->data = t->data;
    }
    ns_status st = ns_model_sizes_build(&hp, table, (size_t)n, out, err);
    free(table);
    return st;
}
