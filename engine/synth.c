/*
 * synth.c - synthetic model writer; see synth.h.
 *
 * Random bytes are valid quant blocks for every supported format: only the
 * fp16 block scales (d, dmin, m) need values, and those are set so that each
 * weight has a standard deviation of about 1/sqrt(row length), which keeps
 * activations O(1) through the layers. Data is produced in 4 MiB chunks from
 * xoshiro256** and streamed to the writer.
 */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fp16.h"
#include "gguf_write.h"

#define SYNTH_CHUNK (4u << 20)

static const ns_synth_shape g_shapes[] = {
    /* name              layers embd   ff     head kv  vocab   ctx    rope     70b */
    {"tiny", 4, 256, 768, 8, 4, 512, 2048, 10000.0f, false},
    {"tinyllama-1.1b", 22, 2048, 5632, 32, 4, 32000, 2048, 10000.0f, false},
    {"llama2-7b", 32, 4096, 11008, 32, 32, 32000, 4096, 10000.0f, false},
    {"llama3-8b", 32, 4096, 14336, 32, 8, 128256, 8192, 500000.0f, false},
    {"llama2-13b", 40, 5120, 13824, 40, 40, 32000, 4096, 10000.0f, false},
    {"llama2-70b", 80, 8192, 28672, 64, 8, 32000, 4096, 10000.0f, true},
    {"llama3-70b", 80, 8192, 28672, 64, 8, 128256, 8192, 500000.0f, true},
};

const ns_synth_shape *ns_synth_shape_at(uint32_t i) {
    return i < sizeof g_shapes / sizeof g_shapes[0] ? &g_shapes[i] : NULL;
}

const ns_synth_shape *ns_synth_shape_find(const char *name) {
    for (uint32_t i = 0; i < sizeof g_shapes / sizeof g_shapes[0]; i++) {
        if (strcasecmp(g_shapes[i].name, name) == 0) {
            return &g_shapes[i];
        }
    }
    return NULL;
}

static const struct {
    const char *name;
    ns_synth_ftype ft;
} g_ftypes[] = {
    {"f32", NS_FTYPE_F32},       {"f16", NS_FTYPE_F16},       {"q4_0", NS_FTYPE_Q4_0},
    {"q8_0", NS_FTYPE_Q8_0},     {"q2_k", NS_FTYPE_Q2_K},     {"q3_k_m", NS_FTYPE_Q3_K_M},
    {"q4_k_m", NS_FTYPE_Q4_K_M}, {"q5_k_m", NS_FTYPE_Q5_K_M}, {"q6_k", NS_FTYPE_Q6_K},
};

bool ns_synth_ftype_parse(const char *name, ns_synth_ftype *out) {
    for (size_t i = 0; i < sizeof g_ftypes / sizeof g_ftypes[0]; i++) {
        if (strcasecmp(g_ftypes[i].name, name) == 0) {
            *out = g_ftypes[i].ft;
            return true;
        }
    }
    return false;
}

const char *ns_synth_ftype_name(ns_synth_ftype ft) {
    for (size_t i = 0; i < sizeof g_ftypes / sizeof g_ftypes[0]; i++) {
        if (g_ftypes[i].ft == ft) {
            return g_ftypes[i].name;
        }
    }
    return "unknown";
}

/* ---- llama.cpp's type mix ---------------------------------------------------- */

/* llama.cpp's use_more_bits(i, n). */
static bool more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) {
        return -1;
    }
    return l;
}

static bool has(const char *name, const char *part) {
    return strstr(name, part) != NULL;
}

/* K-quant rows must be a multiple of 256; llama.cpp falls back like this. */
static ns_type fallback(ns_type t, int64_t ne0) {
    const ns_type_traits *tr = ns_type_get((uint32_t)t);
    if (tr == NULL || ne0 % tr->blck_size == 0) {
        return t;
    }
    switch (t) {
    case NS_TYPE_Q2_K:
    case NS_TYPE_Q3_K:
    case NS_TYPE_IQ4_XS:
        return NS_TYPE_IQ4_NL;
    case NS_TYPE_Q4_K:
        return NS_TYPE_Q5_0;
    case NS_TYPE_Q5_K:
        return NS_TYPE_Q5_1;
    case NS_TYPE_Q6_K:
        return NS_TYPE_Q8_0;
    default:
        return ne0 % 32 == 0 ? NS_TYPE_Q8_0 : NS_TYPE_F16;
    }
}

ns_type ns_synth_tensor_type(const ns_synth_shape *s, ns_synth_ftype ft, const char *name, int64_t ne0) {
    int n = (int)s->n_layer;
    int i = layer_of(name);
    bool is_v = has(name, "attn_v.weight");
    bool is_down = has(name, "ffn_down.weight");
    bool is_out = strcmp(name, "output.weight") == 0;
    ns_type t;
    if (has(name, "_norm.weight")) {
        return NS_TYPE_F32;
    }
    switch (ft) {
    case NS_FTYPE_F32:
        return NS_TYPE_F32;
    case NS_FTYPE_F16:
        return NS_TYPE_F16;
    case NS_FTYPE_Q8_0:
        t = NS_TYPE_Q8_0;
        break;
    case NS_FTYPE_Q4_0:
        t = is_out ? NS_TYPE_Q6_K : NS_TYPE_Q4_0;
        break;
    case NS_FTYPE_Q6_K:
        t = NS_TYPE_Q6_K;
        break;
    case NS_FTYPE_Q4_K_M:
        t = is_out ? NS_TYPE_Q6_K : ((is_v || is_down) && more_bits(i, n)) ? NS_TYPE_Q6_K : NS_TYPE_Q4_K;
        break;
    case NS_FTYPE_Q5_K_M:
        t = is_out ? NS_TYPE_Q6_K : ((is_v || is_down) && more_bits(i, n)) ? NS_TYPE_Q6_K : NS_TYPE_Q5_K;
        break;
    case NS_FTYPE_Q3_K_M:
        if (is_out) {
            t = NS_TYPE_Q6_K;
        } else if (is_v) {
            t = i < 2 ? NS_TYPE_Q5_K : NS_TYPE_Q4_K;
        } else if (is_down) {
            t = i < n / 16 ? NS_TYPE_Q5_K : NS_TYPE_Q4_K;
        } else if (has(name, "attn_output.weight")) {
            t = NS_TYPE_Q4_K;
        } else {
            t = NS_TYPE_Q3_K;
        }
        break;
    case NS_FTYPE_Q2_K:
        if (is_out) {
            t = NS_TYPE_Q6_K;
        } else if (is_v) {
            t = s->n_head / s->n_head_kv >= 4 ? NS_TYPE_Q4_K : NS_TYPE_Q3_K;
        } else if (is_down || has(name, "attn_output.weight")) {
            t = NS_TYPE_Q3_K;
        } else {
            t = NS_TYPE_Q2_K;
        }
        break;
    default:
        t = NS_TYPE_F32;
    }
    if (s->is_70b && is_v && (t == NS_TYPE_Q3_K || t == NS_TYPE_Q4_K)) {
        t = NS_TYPE_Q5_K;
    }
    return fallback(t, ne0);
}

/* ---- random blocks ------------------------------------------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static void rng_seed(rng *r, uint64_t seed) {
    /* splitmix64 expands the seed. */
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        r->s[i] = z ^ (z >> 31);
    }
}

static float rng_unit(rng *r) {
    return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Roughly normal: the sum of four uniforms, scaled to unit variance. */
static float rng_normal(rng *r) {
    float s = rng_unit(r) + rng_unit(r) + rng_unit(r) + rng_unit(r) - 2.0f;
    return s * 1.7320508f;
}

static void fill_random(rng *r, uint8_t *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = rng_next(r);
        memcpy(p + i, &v, 8);
    }
    if (i < n) {
        uint64_t v = rng_next(r);
        memcpy(p + i, &v, n - i);
    }
}

static void put_f16(uint8_t *p, float v) {
    uint16_t h = ns_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* Standard deviation of the integer part of one weight, per format, so that
 * d = sigma / int_std gives weights of standard deviation sigma. */
static float int_std(ns_type t) {
    switch (t) {
    case NS_TYPE_Q4_0:
    case NS_TYPE_Q4_1:
        return 4.64f;
    case NS_TYPE_Q5_0:
    case NS_TYPE_Q5_1:
        return 9.25f;
    case NS_TYPE_Q8_0:
        return 73.9f;
    case NS_TYPE_Q2_K:
        return 12.0f;
    case NS_TYPE_Q3_K:
        return 43.0f;
    case NS_TYPE_Q4_K:
        return 220.0f;
    case NS_TYPE_Q5_K:
        return 442.0f;
    case NS_TYPE_Q6_K:
        return 1366.0f;
    case NS_TYPE_IQ4_NL:
        return 67.5f;
    case NS_TYPE_IQ4_XS:
        return 1246.0f;
    default:
        return 1.0f;
    }
}

/* Fill `nb` blocks of type t at p with random data and well-scaled scales. */
static void fill_blocks(rng *r, ns_type t, uint8_t *p, size_t nb, float sigma) {
    const ns_type_traits *tr = ns_type_get((uint32_t)t);
    size_t bs = tr->type_size;
    if (t == NS_TYPE_F32 || t == NS_TYPE_F16 || t == NS_TYPE_BF16) {
        for (size_t i = 0; i < nb; i++) {
            float v = rng_normal(r) * sigma;
            if (t == NS_TYPE_F32) {
                memcpy(p + i * 4, &v, 4);
            } else {
                uint16_t h = t == NS_TYPE_F16 ? ns_fp32_to_fp16(v) : ns_fp32_to_bf16(v);
                memcpy(p + i * 2, &h, 2);
            }
        }
        return;
    }
    fill_random(r, p, nb * bs);
    for (size_t i = 0; i < nb; i++) {
        uint8_t *b = p + i * bs;
        float d = sigma / int_std(t) * (0.75f + 0.5f * rng_unit(r));
        switch (t) {
        case NS_TYPE_Q4_0:
        case NS_TYPE_Q5_0:
        case NS_TYPE_Q8_0:
        case NS_TYPE_IQ4_NL:
        case NS_TYPE_IQ4_XS:
            put_f16(b, d);
            break;
        case NS_TYPE_Q4_1:
            put_f16(b, d);
            put_f16(b + 2, -8.0f * d);
            break;
        case NS_TYPE_Q5_1:
            put_f16(b, d);
            put_f16(b + 2, -16.0f * d);
            break;
        case NS_TYPE_Q2_K:
            put_f16(b + 80, d);
            put_f16(b + 82, 1.5f * d);
            break;
        case NS_TYPE_Q3_K:
            put_f16(b + 108, d);
            break;
        case NS_TYPE_Q4_K:
            put_f16(b, d);
            put_f16(b + 2, 7.5f * d);
            break;
        case NS_TYPE_Q5_K:
            put_f16(b, d);
            put_f16(b + 2, 15.5f * d);
            break;
        case NS_TYPE_Q6_K:
            put_f16(b + 208, d);
            break;
        default:
            break;
        }
    }
}

/* ---- tokenizer ---------------------------------------------------------------- */

/* GPT-2's byte -> code point map. */
static uint32_t byte_cp(int b) {
    int n = 0;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        return (uint32_t)b;
    }
    for (int x = 0; x < b; x++) {
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) {
            n++;
        }
    }
    return 256u + (uint32_t)n;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* out = a + sep + b; the caller sizes out (symbols are at most 2 bytes). */
static void cat3(char *out, const char *a, const char *sep, const char *b) {
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    memcpy(out, a, la);
    memcpy(out + la, sep, ls);
    memcpy(out + la + ls, b, lb + 1);
}

/* A byte-level BPE vocabulary of n_vocab tokens: 256 byte tokens, BOS/EOS,
 * then merged pairs and triples over a 64-symbol alphabet. EOS is named
 * <|endoftext|> so llama.cpp puts it in its end-of-generation set. */
static ns_status write_byte_vocab(ns_gguf_writer *w, uint32_t n_vocab) {
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .";
    ns_status st = NS_ERR_NOMEM;
    char **toks = calloc(n_vocab, sizeof *toks);
    char **merges = calloc(n_vocab, sizeof *merges);
    int32_t *types = calloc(n_vocab, sizeof *types);
    float *scores = calloc(n_vocab, sizeof *scores);
    uint32_t n = 0, n_merge = 0;
    char sym[64][3];
    if (toks == NULL || merges == NULL || types == NULL || scores == NULL || n_vocab < 258 + 64) {
        st = n_vocab < 258 + 64 ? NS_ERR_INVALID_ARG : NS_ERR_NOMEM;
        goto done;
    }
    for (int b = 0; b < 256; b++) {
        char buf[4] = {0};
        put_utf8(buf, byte_cp(b));
        toks[n] = strdup(buf);
        types[n++] = 1;
    }
    toks[n] = strdup("<|bos|>");
    types[n++] = 3;
    toks[n] = strdup("<|endoftext|>"); /* llama.cpp counts this text as end-of-generation */
    types[n++] = 3;
    for (int a = 0; a < 64; a++) {
        memset(sym[a], 0, sizeof sym[a]);
        put_utf8(sym[a], byte_cp((unsigned char)alpha[a]));
    }
    for (int a = 0; a < 64 && n < n_vocab; a++) {
        for (int b = 0; b < 64 && n < n_vocab; b++) {
            char t[8], m[8];
            cat3(t, sym[a], "", sym[b]);
            cat3(m, sym[a], " ", sym[b]);
            toks[n] = strdup(t);
            types[n++] = 1;
            merges[n_merge++] = strdup(m);
        }
    }
    for (int a = 0; a < 64 && n < n_vocab; a++) {
        for (int b = 0; b < 64 && n < n_vocab; b++) {
            for (int c = 0; c < 64 && n < n_vocab; c++) {
                char t[12], m[12], ab[8];
                cat3(ab, sym[a], "", sym[b]);
                cat3(t, ab, "", sym[c]);
                cat3(m, ab, " ", sym[c]);
                toks[n] = strdup(t);
                types[n++] = 1;
                merges[n_merge++] = strdup(m);
            }
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (toks[i] == NULL) {
            goto done;
        }
    }
    for (uint32_t i = 0; i < n_merge; i++) {
        if (merges[i] == NULL) {
            goto done;
        }
    }
    if (n < n_vocab) {
        st = NS_ERR_INVALID_ARG;
        goto done;
    }
    if ((st = ns_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4)) != NS_OK ||
        (st = ns_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default", 7)) != NS_OK ||
        (st = ns_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, n)) != NS_OK ||
        (st = ns_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", NS_GGUF_INT32, types, n)) != NS_OK ||
        (st = ns_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, NULL, n_merge)) !=
            NS_OK ||
        (st = ns_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 256)) != NS_OK ||
        (st = ns_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 257)) != NS_OK ||
        (st = ns_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true)) != NS_OK ||
        (st = ns_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false)) != NS_OK) {
        goto done;
    }
    st = NS_OK;
done:
    for (uint32_t i = 0; toks != NULL && i < n_vocab; i++) {
        free(toks[i]);
        free(merges[i]);
    }
    free(toks);
    free(merges);
    free(types);
    free(scores);
    return st;
}

/* ---- the model ------------------------------------------------------------------ */

typedef struct synth_tensor {
    char name[64];
    int64_t ne[2];
    uint32_t n_dims;
    ns_type type;
} synth_tensor;

static uint32_t vocab_size_of(const ns_gguf *v) {
    const ns_gguf_kv *kv = v != NULL ? ns_gguf_find_kv(v, "tokenizer.ggml.tokens") : NULL;
    return kv != NULL && kv->type == NS_GGUF_ARRAY ? (uint32_t)kv->arr_n : 0;
}

ns_status ns_synth_write(const char *path, const ns_synth_opts *o, ns_err *err) {
    const ns_synth_shape *s = o->shape;
    ns_gguf_writer *w = NULL;
    synth_tensor *ts = NULL;
    uint8_t *chunk = NULL;
    uint32_t n_t = 0, max_t;
    uint32_t n_vocab = s->n_vocab;
    uint32_t head_dim = s->n_embd / s->n_head;
    char arch_key[96];
    ns_status st;
    bool created = false;
    rng r;

    if (o->vocab != NULL) {
        n_vocab = vocab_size_of(o->vocab);
        if (n_vocab == 0) {
            return ns__err_set(err, NS_ERR_FORMAT, "synth: --vocab file has no tokenizer.ggml.tokens array");
        }
    }
    max_t = 3 + 9 * s->n_layer;
    ts = calloc(max_t, sizeof *ts);
    chunk = malloc(SYNTH_CHUNK);
    if (ts == NULL || chunk == NULL || ns_gguf_writer_new(&w) != NS_OK) {
        st = ns__err_set(err, NS_ERR_NOMEM, "synth: out of memory");
        goto fail;
    }
    rng_seed(&r, o->seed);

#define T1(nm, a)                                                                                                      \
    (snprintf(ts[n_t].name, sizeof ts[n_t].name, "%s", nm), ts[n_t].ne[0] = (a), ts[n_t].ne[1] = 1,                    \
     ts[n_t].n_dims = 1, n_t++)
#define T2(nm, a, b)                                                                                                   \
    (snprintf(ts[n_t].name, sizeof ts[n_t].name, "%s", nm), ts[n_t].ne[0] = (a), ts[n_t].ne[1] = (b),                  \
     ts[n_t].n_dims = 2, n_t++)
    T2("token_embd.weight", s->n_embd, n_vocab);
    T1("output_norm.weight", s->n_embd);
    T2("output.weight", s->n_embd, n_vocab);
    for (uint32_t l = 0; l < s->n_layer; l++) {
        char nm[64];
        uint32_t kv = s->n_head_kv * head_dim;
#define LAYER(suffix) (snprintf(nm, sizeof nm, "blk.%u." suffix, l), nm)
        T1(LAYER("attn_norm.weight"), s->n_embd);
        T2(LAYER("attn_q.weight"), s->n_embd, s->n_embd);
        T2(LAYER("attn_k.weight"), s->n_embd, kv);
        T2(LAYER("attn_v.weight"), s->n_embd, kv);
        T2(LAYER("attn_output.weight"), s->n_embd, s->n_embd);
        T1(LAYER("ffn_norm.weight"), s->n_embd);
        T2(LAYER("ffn_gate.weight"), s->n_embd, s->n_ff);
        T2(LAYER("ffn_up.weight"), s->n_embd, s->n_ff);
        T2(LAYER("ffn_down.weight"), s->n_ff, s->n_embd);
#undef LAYER
    }
#undef T1
#undef T2

    /* Metadata, in the order llama.cpp's converter writes it. */
    ns_gguf_writer_set_str(w, "general.architecture", "llama", 5);
    {
        char name[96];
        int len = snprintf(name, sizeof name, "nightshift synth %s %s", s->name, ns_synth_ftype_name(o->ftype));
        ns_gguf_writer_set_str(w, "general.name", name, (size_t)len);
    }
    ns_gguf_writer_set_u32(w, "general.file_type", (uint32_t)o->ftype);
    ns_gguf_writer_set_u32(w, "general.quantization_version", 2);
    ns_gguf_writer_set_u32(w, "general.alignment", NS_GGUF_DEFAULT_ALIGNMENT);
#define ARCH(k) (snprintf(arch_key, sizeof arch_key, "llama.%s", k), arch_key)
    ns_gguf_writer_set_u32(w, ARCH("vocab_size"), n_vocab);
    ns_gguf_writer_set_u32(w, ARCH("context_length"), s->n_ctx);
    ns_gguf_writer_set_u32(w, ARCH("embedding_length"), s->n_embd);
    ns_gguf_writer_set_u32(w, ARCH("block_count"), s->n_layer);
    ns_gguf_writer_set_u32(w, ARCH("feed_forward_length"), s->n_ff);
    ns_gguf_writer_set_u32(w, ARCH("rope.dimension_count"), head_dim);
    ns_gguf_writer_set_u32(w, ARCH("attention.head_count"), s->n_head);
    ns_gguf_writer_set_u32(w, ARCH("attention.head_count_kv"), s->n_head_kv);
    ns_gguf_writer_set_f32(w, ARCH("attention.layer_norm_rms_epsilon"), 1e-5f);
    ns_gguf_writer_set_f32(w, ARCH("rope.freq_base"), s->rope_base);
#undef ARCH
    if (o->vocab != NULL) {
        for (uint64_t i = 0; i < ns_gguf_n_kv(o->vocab); i++) {
            const ns_gguf_kv *kv = ns_gguf_kv_at(o->vocab, i);
            if (strncmp(kv->key, "tokenizer.", 10) == 0 && (st = ns_gguf_writer_copy_kv(w, kv)) != NS_OK) {
                ns__err_set(err, st, "synth: cannot copy %s", kv->key);
                goto fail;
            }
        }
    } else if ((st = write_byte_vocab(w, n_vocab)) != NS_OK) {
        ns__err_set(err, st, "synth: cannot build a %u-token vocabulary", n_vocab);
        goto fail;
    }

    for (uint32_t i = 0; i < n_t; i++) {
        ts[i].type = ns_synth_tensor_type(s, o->ftype, ts[i].name, ts[i].ne[0]);
        st = ns_gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne);
        if (st != NS_OK) {
            ns__err_set(err, st, "synth: cannot declare tensor %s", ts[i].name);
            goto fail;
        }
    }
    if ((st = ns_gguf_writer_begin(w, path, err)) != NS_OK) {
        goto fail;
    }
    created = true;
    for (uint32_t i = 0; i < n_t; i++) {
        const ns_type_traits *tr = ns_type_get((uint32_t)ts[i].type);
        uint64_t n_blocks = (uint64_t)ts[i].ne[0] * (uint64_t)ts[i].ne[1] / tr->blck_size;
        size_t per_chunk = SYNTH_CHUNK / tr->type_size;
        bool is_norm = ts[i].n_dims == 1;
        float sigma = 1.0f / sqrtf((float)ts[i].ne[0]);
        while (n_blocks > 0) {
            size_t nb = n_blocks < per_chunk ? (size_t)n_blocks : per_chunk;
            if (is_norm) {
                for (size_t k = 0; k < nb; k++) {
                    float one = 1.0f;
                    memcpy(chunk + k * 4, &one, 4);
                }
            } else {
                fill_blocks(&r, ts[i].type, chunk, nb, sigma);
            }
            if ((st = ns_gguf_writer_write_data(w, chunk, nb * tr->type_size, err)) != NS_OK) {
                goto fail;
            }
            n_blocks -= nb;
        }
    }
    if ((st = ns_gguf_writer_finish(w, err)) != NS_OK) {
        goto fail;
    }
    ns_gguf_writer_free(&w);
    free(ts);
    free(chunk);
    return NS_OK;
fail:
    ns_gguf_writer_free(&w);
    if (created) {
        unlink(path);
    }
    free(ts);
    free(chunk);
    return st;
}
