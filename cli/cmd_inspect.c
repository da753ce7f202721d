/*
 * cmd_inspect.c - `nightshift inspect MODEL.gguf [--json] [--dequant TENSOR -o OUT.f32]`
 *
 * Prints a GGUF file's metadata (long arrays abbreviated), the architecture
 * and hyperparameters, the tensor table, bytes per layer, total size, bits
 * per weight, KV-cache bytes per token at f16, and the tensors whose types the
 * engine cannot compute. --dequant writes one tensor as little-endian float32,
 * row-major with ne[0] fastest.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gguf.h"
#include "ns_util.h"
#include "quant.h"

#define ARRAY_PREVIEW 8 /* elements shown of a long array */

typedef struct hparams {
    char arch[64];
    int64_t n_layer, n_embd, n_ff, n_head, n_head_kv, n_ctx, head_dim_k, head_dim_v, n_vocab;
    double rope_base, rms_eps;
} hparams;

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift inspect MODEL.gguf [--json]\n"
               "       nightshift inspect MODEL.gguf --dequant TENSOR -o OUT.f32\n");
}

static int64_t get_i(const ns_gguf *g, const char *arch, const char *suffix, int64_t def) {
    char key[160];
    int64_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ns_gguf_get_i64(g, key, &v) == NS_OK ? v : def;
}

static double get_f(const ns_gguf *g, const char *arch, const char *suffix, double def) {
    char key[160];
    float v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ns_gguf_get_f32(g, key, &v) == NS_OK ? v : def;
}

static void read_hparams(const ns_gguf *g, hparams *hp) {
    const ns_gguf_kv *tok = ns_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const ns_gguf_tensor *emb = ns_gguf_find_tensor(g, "token_embd.weight");
    memset(hp, 0, sizeof *hp);
    if (!ns_gguf_get_cstr(g, "general.architecture", hp->arch, sizeof hp->arch)) {
        snprintf(hp->arch, sizeof hp->arch, "unknown");
    }
    hp->n_layer = get_i(g, hp->arch, "block_count", 0);
    hp->n_embd = get_i(g, hp->arch, "embedding_length", 0);
    hp->n_ff = get_i(g, hp->arch, "feed_forward_length", 0);
    hp->n_head = get_i(g, hp->arch, "attention.head_count", 0);
    hp->n_head_kv = get_i(g, hp->arch, "attention.head_count_kv", hp->n_head);
    hp->n_ctx = get_i(g, hp->arch, "context_length", 0);
    hp->head_dim_k = get_i(g, hp->arch, "attention.key_length", hp->n_head > 0 ? hp->n_embd / hp->n_head : 0);
    hp->head_dim_v = get_i(g, hp->arch, "attention.value_length", hp->head_dim_k);
    hp->rope_base = get_f(g, hp->arch, "rope.freq_base", 10000.0);
    hp->rms_eps = get_f(g, hp->arch, "attention.layer_norm_rms_epsilon", 0.0);
    if (tok != NULL && tok->type == NS_GGUF_ARRAY) {
        hp->n_vocab = (int64_t)tok->arr_n;
    } else if (emb != NULL && emb->n_dims >= 2) {
        hp->n_vocab = emb->ne[1];
    }
}

/* Layer index of a "blk.N." tensor, or -1. */
static int64_t layer_of(const char *name) {
    char *end;
    long long v;
    if (strncmp(name, "blk.", 4) != 0) {
        return -1;
    }
    v = strtoll(name + 4, &end, 10);
    return (end != name + 4 && *end == '.' && v >= 0) ? v : -1;
}

static uint64_t kv_bytes_per_token(const hparams *hp) {
    /* K and V, f16 (2 bytes), every layer, every kv head. */
    return (uint64_t)hp->n_layer * (uint64_t)hp->n_head_kv * (uint64_t)(hp->head_dim_k + hp->head_dim_v) * 2u;
}

/* ---- text output ------------------------------------------------------------ */

static void print_str_view(FILE *f, const char *p, uint64_t len, uint64_t max) {
    fputc('"', f);
    for (uint64_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c < 0x20) {
            fprintf(f, "\\x%02x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
    if (len > max) {
        fprintf(f, "... (%" PRIu64 " bytes)", len);
    }
}

static void print_scalar(FILE *f, const ns_gguf_kv *kv) {
    switch (kv->type) {
    case NS_GGUF_UINT8:
    case NS_GGUF_UINT16:
    case NS_GGUF_UINT32:
    case NS_GGUF_UINT64:
        fprintf(f, "%" PRIu64, kv->val.u64);
        break;
    case NS_GGUF_INT8:
    case NS_GGUF_INT16:
    case NS_GGUF_INT32:
    case NS_GGUF_INT64:
        fprintf(f, "%" PRId64, kv->val.i64);
        break;
    case NS_GGUF_FLOAT32:
    case NS_GGUF_FLOAT64:
        fprintf(f, "%g", kv->val.f64);
        break;
    case NS_GGUF_BOOL:
        fputs(kv->val.b ? "true" : "false", f);
        break;
    case NS_GGUF_STRING:
        print_str_view(f, kv->str.ptr, kv->str.len, 120);
        break;
    default:
        break;
    }
}

static void print_kv(FILE *f, const ns_gguf_kv *kv) {
    if (kv->type != NS_GGUF_ARRAY) {
        fprintf(f, "  %-44s %-8s ", kv->key, ns_gguf_vtype_name(kv->type));
        print_scalar(f, kv);
        fputc('\n', f);
        return;
    }
    fprintf(f, "  %-44s %s[%" PRIu64 "] [", kv->key, ns_gguf_vtype_name(kv->arr_type), kv->arr_n);
    for (uint64_t i = 0; i < kv->arr_n && i < ARRAY_PREVIEW; i++) {
        if (i > 0) {
            fputs(", ", f);
        }
        if (kv->arr_type == NS_GGUF_STRING) {
            ns_gguf_str s = ns_gguf_arr_str(kv, i);
            print_str_view(f, s.ptr, s.len, 40);
        } else if (kv->arr_type == NS_GGUF_FLOAT32 || kv->arr_type == NS_GGUF_FLOAT64) {
            double d = 0;
            ns_gguf_arr_f64(kv, i, &d);
            fprintf(f, "%g", d);
        } else {
            int64_t v = 0;
            if (kv->arr_type == NS_GGUF_UINT64) {
                uint64_t u;
                memcpy(&u, kv->arr_data + i * 8, 8);
                fprintf(f, "%" PRIu64, u);
                continue;
            }
            ns_gguf_arr_i64(kv, i, &v);
            fprintf(f, "%" PRId64, v);
        }
    }
    if (kv->arr_n > ARRAY_PREVIEW) {
        fprintf(f, ", ... %" PRIu64 " more", kv->arr_n - ARRAY_PREVIEW);
    }
    fputs("]\n", f);
}

static void shape_str(const ns_gguf_tensor *t, char *buf, size_t len) {
    size_t o = 0;
    for (uint32_t d = 0; d < t->n_dims && o < len; d++) {
        o += (size_t)snprintf(buf + o, len - o, d ? " x %" PRId64 : "%" PRId64, t->ne[d]);
    }
}

static int print_text(const char *path, const ns_gguf *g) {
    hparams hp;
    uint64_t total = 0, n_params = 0, n_unsup = 0;
    uint64_t n_tensors = ns_gguf_n_tensors(g);
    uint64_t *layer_bytes = NULL;
    char sz[32];

    read_hparams(g, &hp);
    printf("file:        %s\n", path);
    printf("gguf:        version %u, %u file(s), alignment %" PRIu64 ", %" PRIu64 " metadata keys, %" PRIu64
           " tensors\n",
           ns_gguf_version(g), ns_gguf_n_files(g), ns_gguf_alignment(g), ns_gguf_n_kv(g), n_tensors);

    printf("\nmetadata:\n");
    for (uint64_t i = 0; i < ns_gguf_n_kv(g); i++) {
        print_kv(stdout, ns_gguf_kv_at(g, i));
    }

    printf("\narchitecture: %s\n", hp.arch);
    printf("  n_layer %" PRId64 ", n_embd %" PRId64 ", n_ff %" PRId64 ", n_head %" PRId64 ", n_head_kv %" PRId64
           ", head_dim %" PRId64 ", n_vocab %" PRId64 ", n_ctx_train %" PRId64 ", rope_base %g, rms_eps %g\n",
           hp.n_layer, hp.n_embd, hp.n_ff, hp.n_head, hp.n_head_kv, hp.head_dim_k, hp.n_vocab, hp.n_ctx, hp.rope_base,
           hp.rms_eps);

    if (hp.n_layer > 0 && hp.n_layer < (1 << 20)) {
        layer_bytes = calloc((size_t)hp.n_layer, sizeof *layer_bytes);
    }
    printf("\ntensors:\n  %-36s %-8s %-24s %14s %14s\n", "name", "type", "shape", "bytes", "offset");
    for (uint64_t i = 0; i < n_tensors; i++) {
        const ns_gguf_tensor *t = ns_gguf_tensor_at(g, i);
        char shape[96];
        int64_t l = layer_of(t->name);
        shape_str(t, shape, sizeof shape);
        printf("  %-36s %-8s %-24s %14" PRIu64 " %14" PRIu64 "%s\n", t->name, ns_type_name(t->type), shape, t->nbytes,
               t->file_offset, ns_quant_supported(t->type) ? "" : "  (unsupported type)");
        total += t->nbytes;
        n_params += t->n_elements;
        if (!ns_quant_supported(t->type)) {
            n_unsup++;
        }
        if (layer_bytes != NULL && l >= 0 && l < hp.n_layer) {
            layer_bytes[l] += t->nbytes;
        }
    }

    if (layer_bytes != NULL) {
        printf("\nbytes per layer:\n");
        for (int64_t l = 0; l < hp.n_layer; l++) {
            printf("  blk.%-4" PRId64 " %14" PRIu64 "  %s\n", l, layer_bytes[l],
                   ns_format_size(layer_bytes[l], sz, sizeof sz));
        }
        free(layer_bytes);
    }
    printf("\ntotal:       %" PRIu64 " bytes (%s) of tensor data, %" PRIu64 " parameters, %.3f bits per weight\n",
           total, ns_format_size(total, sz, sizeof sz), n_params,
           n_params ? (double)total * 8.0 / (double)n_params : 0.0);
    printf("kv cache:    %" PRIu64 " bytes per token at f16 (K and V, all layers)\n", kv_bytes_per_token(&hp));
    if (n_unsup == 0) {
        printf("unsupported: none (every tensor type can be computed)\n");
    } else {
        printf("unsupported: %" PRIu64 " tensor(s) use types the engine cannot compute yet:\n", n_unsup);
        for (uint64_t i = 0; i < n_tensors; i++) {
            const ns_gguf_tensor *t = ns_gguf_tensor_at(g, i);
            if (!ns_quant_supported(t->type)) {
                printf("  %s (%s)\n", t->name, ns_type_name(t->type));
            }
        }
    }
    return 0;
}

/* ---- JSON output ------------------------------------------------------------ */

static json_t *json_strview(const char *p, uint64_t len) {
    /* Metadata strings are untrusted bytes: invalid UTF-8 becomes a hex note. */
    if (ns_utf8_valid(p, (size_t)len)) {
        return json_stringn(p, (size_t)len);
    }
    return json_string("<invalid utf-8>");
}

static json_t *json_kv_value(const ns_gguf_kv *kv) {
    switch (kv->type) {
    case NS_GGUF_UINT8:
    case NS_GGUF_UINT16:
    case NS_GGUF_UINT32:
    case NS_GGUF_UINT64:
        return json_integer((json_int_t)kv->val.u64);
    case NS_GGUF_INT8:
    case NS_GGUF_INT16:
    case NS_GGUF_INT32:
    case NS_GGUF_INT64:
        return json_integer(kv->val.i64);
    case NS_GGUF_FLOAT32:
    case NS_GGUF_FLOAT64:
        return json_real(kv->val.f64);
    case NS_GGUF_BOOL:
        return json_boolean(kv->val.b);
    case NS_GGUF_STRING:
        return json_strview(kv->str.ptr, kv->str.len);
    case NS_GGUF_ARRAY: {
        json_t *o = json_object();
        json_t *vals = json_array();
        json_object_set_new(o, "type", json_string(ns_gguf_vtype_name(kv->arr_type)));
        json_object_set_new(o, "n", json_integer((json_int_t)kv->arr_n));
        for (uint64_t i = 0; i < kv->arr_n && i < ARRAY_PREVIEW; i++) {
            if (kv->arr_type == NS_GGUF_STRING) {
                ns_gguf_str s = ns_gguf_arr_str(kv, i);
                json_array_append_new(vals, json_strview(s.ptr, s.len));
            } else if (kv->arr_type == NS_GGUF_FLOAT32 || kv->arr_type == NS_GGUF_FLOAT64) {
                double d = 0;
                ns_gguf_arr_f64(kv, i, &d);
                json_array_append_new(vals, json_real(d));
            } else {
                int64_t v = 0;
                ns_gguf_arr_i64(kv, i, &v);
                json_array_append_new(vals, json_integer(v));
            }
        }
        json_object_set_new(o, "head", vals);
        return o;
    }
    default:
        return json_null();
    }
}

static int print_json(const char *path, const ns_gguf *g) {
    hparams hp;
    json_t *root = json_object(), *meta = json_object(), *tensors = json_array(), *h = json_object();
    json_t *layers = json_array(), *unsup = json_array();
    uint64_t total = 0, n_params = 0;
    uint64_t *layer_bytes = NULL;

    read_hparams(g, &hp);
    json_object_set_new(root, "file", json_string(path));
    json_object_set_new(root, "version", json_integer(ns_gguf_version(g)));
    json_object_set_new(root, "n_files", json_integer(ns_gguf_n_files(g)));
    json_object_set_new(root, "alignment", json_integer((json_int_t)ns_gguf_alignment(g)));
    for (uint64_t i = 0; i < ns_gguf_n_kv(g); i++) {
        const ns_gguf_kv *kv = ns_gguf_kv_at(g, i);
        json_object_set_new(meta, kv->key, json_kv_value(kv));
    }
    json_object_set_new(root, "metadata", meta);
    json_object_set_new(h, "architecture", json_string(hp.arch));
    json_object_set_new(h, "n_layer", json_integer(hp.n_layer));
    json_object_set_new(h, "n_embd", json_integer(hp.n_embd));
    json_object_set_new(h, "n_ff", json_integer(hp.n_ff));
    json_object_set_new(h, "n_head", json_integer(hp.n_head));
    json_object_set_new(h, "n_head_kv", json_integer(hp.n_head_kv));
    json_object_set_new(h, "head_dim", json_integer(hp.head_dim_k));
    json_object_set_new(h, "n_vocab", json_integer(hp.n_vocab));
    json_object_set_new(h, "n_ctx_train", json_integer(hp.n_ctx));
    json_object_set_new(h, "rope_freq_base", json_real(hp.rope_base));
    json_object_set_new(h, "rms_eps", json_real(hp.rms_eps));
    json_object_set_new(root, "hparams", h);

    if (hp.n_layer > 0 && hp.n_layer < (1 << 20)) {
        layer_bytes = calloc((size_t)hp.n_layer, sizeof *layer_bytes);
    }
    for (uint64_t i = 0; i < ns_gguf_n_tensors(g); i++) {
        const ns_gguf_tensor *t = ns_gguf_tensor_at(g, i);
        json_t *o = json_object(), *shape = json_array();
        int64_t l = layer_of(t->name);
        for (uint32_t d = 0; d < t->n_dims; d++) {
            json_array_append_new(shape, json_integer(t->ne[d]));
        }
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "type", json_string(ns_type_name(t->type)));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "bytes", json_integer((json_int_t)t->nbytes));
        json_object_set_new(o, "offset", json_integer((json_int_t)t->file_offset));
        json_object_set_new(o, "file", json_integer(t->file_index));
        json_object_set_new(o, "supported", json_boolean(ns_quant_supported(t->type)));
        json_array_append_new(tensors, o);
        total += t->nbytes;
        n_params += t->n_elements;
        if (!ns_quant_supported(t->type)) {
            json_array_append_new(unsup, json_string(t->name));
        }
        if (layer_bytes != NULL && l >= 0 && l < hp.n_layer) {
            layer_bytes[l] += t->nbytes;
        }
    }
    for (int64_t l = 0; layer_bytes != NULL && l < hp.n_layer; l++) {
        json_array_append_new(layers, json_integer((json_int_t)layer_bytes[l]));
    }
    free(layer_bytes);
    json_object_set_new(root, "tensors", tensors);
    json_object_set_new(root, "layer_bytes", layers);
    json_object_set_new(root, "total_bytes", json_integer((json_int_t)total));
    json_object_set_new(root, "n_params", json_integer((json_int_t)n_params));
    json_object_set_new(root, "bits_per_weight", json_real(n_params ? (double)total * 8.0 / (double)n_params : 0));
    json_object_set_new(root, "kv_bytes_per_token_f16", json_integer((json_int_t)kv_bytes_per_token(&hp)));
    json_object_set_new(root, "unsupported_tensors", unsup);
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(root);
    return 0;
}

/* ---- --dequant ---------------------------------------------------------------- */

static int dequant_one(const ns_gguf *g, const char *name, const char *out_path) {
    const ns_gguf_tensor *t = ns_gguf_find_tensor(g, name);
    float *row;
    FILE *f;
    int64_t row_len, n_rows;
    size_t row_bytes;
    int rc = 0;
    if (t == NULL) {
        fprintf(stderr, "nightshift inspect: no tensor named '%s'\n", name);
        return 1;
    }
    if (!ns_quant_supported(t->type)) {
        fprintf(stderr, "nightshift inspect: tensor '%s': unsupported tensor type %s\n", name, ns_type_name(t->type));
        return 1;
    }
    row_len = t->ne[0];
    n_rows = row_len > 0 ? (int64_t)(t->n_elements / (uint64_t)row_len) : 0;
    row_bytes = ns_type_row_size(t->type, row_len);
    row = malloc((size_t)(row_len > 0 ? row_len : 1) * sizeof *row);
    f = fopen(out_path, "wb");
    if (row == NULL || f == NULL) {
        fprintf(stderr, "nightshift inspect: cannot write %s: %s\n", out_path, strerror(errno));
        free(row);
        if (f != NULL) {
            fclose(f);
        }
        return 1;
    }
    for (int64_t r = 0; r < n_rows; r++) {
        ns_status st = ns_dequantize_row(t->type, t->data + (size_t)r * row_bytes, row, row_len);
        if (st != NS_OK) {
            fprintf(stderr, "nightshift inspect: dequantize '%s' row %" PRId64 ": %s\n", name, r, ns_status_str(st));
            rc = 1;
            break;
        }
        if (fwrite(row, sizeof *row, (size_t)row_len, f) != (size_t)row_len) {
            fprintf(stderr, "nightshift inspect: write %s: %s\n", out_path, strerror(errno));
            rc = 1;
            break;
        }
    }
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "nightshift inspect: close %s: %s\n", out_path, strerror(errno));
        rc = 1;
    }
    free(row);
    if (rc == 0) {
        fprintf(stderr, "wrote %" PRIu64 " floats (%" PRId64 " rows x %" PRId64 ") of %s to %s\n", t->n_elements,
                n_rows, row_len, name, out_path);
    }
    return rc;
}

int ns_cmd_inspect(int argc, char **argv) {
    const char *path = NULL, *dequant = NULL, *out = NULL;
    int json = 0, rc;
    ns_gguf *g = NULL;
    ns_err err = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--dequant") == 0 && i + 1 < argc) {
            dequant = argv[++i];
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || path != NULL) {
            fprintf(stderr, "nightshift inspect: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (path == NULL || (dequant != NULL) != (out != NULL)) {
        usage(stderr);
        return 2;
    }
    if (ns_gguf_open(path, &g, &err) != NS_OK) {
        fprintf(stderr, "nightshift inspect: %s\n", ns_err_msg(&err));
        return 1;
    }
    if (dequant != NULL) {
        rc = dequant_one(g, dequant, out);
    } else {
        rc = json ? print_json(path, g) : print_text(path, g);
    }
    ns_gguf_close(&g);
    return rc;
}
