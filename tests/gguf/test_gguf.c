/*
 * test_gguf.c - GGUF reader and writer: round trips of every value type,
 * hand-made corrupt files with their exact errors, every-byte header
 * corruption and truncation of real and synthetic files, split models.
 */
#include <stdint.h>

#include "gguf.h"
#include "gguf_fixtures.h"
#include "gguf_write.h"
#include "ns_test.h"

static char g_tmpdir[256];

static const char *tmp_path(const char *name, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s", g_tmpdir, name);
    return buf;
}

/* Touch every accessor and every tensor byte of an open file, so a
 * sanitizer sees any out-of-bounds view the validator let through. */
static void walk(const ns_gguf *g) {
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < ns_gguf_n_kv(g); i++) {
        const ns_gguf_kv *kv = ns_gguf_kv_at(g, i);
        ASSERT_TRUE(ns_gguf_find_kv(g, kv->key) != NULL);
        if (kv->type == NS_GGUF_STRING && kv->str.len > 0) {
            sink ^= (uint8_t)kv->str.ptr[kv->str.len - 1];
        }
        if (kv->type == NS_GGUF_ARRAY) {
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                if (kv->arr_type == NS_GGUF_STRING) {
                    ns_gguf_str s = ns_gguf_arr_str(kv, j);
                    if (s.len > 0) {
                        sink ^= (uint8_t)s.ptr[s.len - 1];
                    }
                } else {
                    double d;
                    int64_t v;
                    ns_gguf_arr_f64(kv, j, &d);
                    ns_gguf_arr_i64(kv, j, &v);
                }
            }
        }
    }
    for (uint64_t i = 0; i < ns_gguf_n_tensors(g); i++) {
        const ns_gguf_tensor *t = ns_gguf_tensor_at(g, i);
        ASSERT_TRUE(ns_gguf_find_tensor(g, t->name) == t);
        if (t->nbytes > 0) {
            sink ^= t->data[0];
            sink ^= t->data[t->nbytes - 1];
        }
    }
    (void)sink;
}

static void test_roundtrip(uint32_t alignment) {
    char path[512];
    ns_gguf *g = NULL;
    ns_err err = {0};
    const ns_gguf_kv *kv;
    const ns_gguf_tensor *t;
    uint32_t u32;
    int64_t i64;
    float f32;
    bool b;
    ns_gguf_str s;
    tmp_path("roundtrip.gguf", path, sizeof path);
    ASSERT_EQ(ns_fixture_all_types(path, alignment), 0);
    if (ns_gguf_open(path, &g, &err) != NS_OK) {
        NS_FAIL("open: %s", ns_err_msg(&err));
    }
    ASSERT_EQ(ns_gguf_version(g), 3);
    ASSERT_EQ(ns_gguf_alignment(g), alignment ? alignment : 32);
    ASSERT_EQ(ns_gguf_n_tensors(g), 4);
    ASSERT_OK(ns_gguf_get_u32(g, "t.u8", &u32));
    ASSERT_EQ(u32, 200);
    ASSERT_OK(ns_gguf_get_i64(g, "t.i8", &i64));
    ASSERT_EQ(i64, -100);
    ASSERT_OK(ns_gguf_get_u32(g, "t.u16", &u32));
    ASSERT_EQ(u32, 60000);
    ASSERT_OK(ns_gguf_get_i64(g, "t.i16", &i64));
    ASSERT_EQ(i64, -30000);
    ASSERT_OK(ns_gguf_get_u32(g, "t.u32", &u32));
    ASSERT_EQ(u32, 4000000000u);
    ASSERT_OK(ns_gguf_get_i64(g, "t.i32", &i64));
    ASSERT_EQ(i64, -2000000000);
    ASSERT_OK(ns_gguf_get_f32(g, "t.f32", &f32));
    ASSERT_NEAR(f32, 1.5, 0);
    ASSERT_OK(ns_gguf_get_bool(g, "t.bool", &b));
    ASSERT_TRUE(b);
    ASSERT_OK(ns_gguf_get_str(g, "t.str", &s));
    ASSERT_EQ(s.len, 5);
    ASSERT_TRUE(memcmp(s.ptr, "hello", 5) == 0);
    kv = ns_gguf_find_kv(g, "t.u64");
    ASSERT_TRUE(kv != NULL && kv->type == NS_GGUF_UINT64 && kv->val.u64 == 18000000000000000000ull);
    /* A uint64 above INT64_MAX does not convert silently. */
    ASSERT_EQ(ns_gguf_get_i64(g, "t.u64", &i64), NS_ERR_FORMAT);
    ASSERT_OK(ns_gguf_get_i64(g, "t.i64", &i64));
    ASSERT_EQ(i64, -9000000000000000000ll);
    kv = ns_gguf_find_kv(g, "t.f64");
    ASSERT_TRUE(kv != NULL && kv->type == NS_GGUF_FLOAT64 && kv->val.f64 == -2.25);
    /* Wrong types and absent keys are distinct errors. */
    ASSERT_EQ(ns_gguf_get_u32(g, "t.str", &u32), NS_ERR_FORMAT);
    ASSERT_EQ(ns_gguf_get_u32(g, "t.i8", &u32), NS_ERR_FORMAT); /* negative */
    ASSERT_EQ(ns_gguf_get_u32(g, "no.such.key", &u32), NS_ERR_NOT_FOUND);
    kv = ns_gguf_find_kv(g, "t.arr_i32");
    ASSERT_TRUE(kv != NULL && kv->type == NS_GGUF_ARRAY && kv->arr_type == NS_GGUF_INT32 && kv->arr_n == 5);
    ASSERT_TRUE(ns_gguf_arr_i64(kv, 3, &i64));
    ASSERT_EQ(i64, -4);
    ASSERT_TRUE(!ns_gguf_arr_i64(kv, 5, &i64));
    kv = ns_gguf_find_kv(g, "t.arr_f32");
    {
        double d;
        ASSERT_TRUE(ns_gguf_arr_f64(kv, 1, &d));
        ASSERT_NEAR(d, -1.25, 0);
    }
    kv = ns_gguf_find_kv(g, "t.arr_str");
    ASSERT_TRUE(kv != NULL && kv->arr_type == NS_GGUF_STRING && kv->arr_n == 3);
    s = ns_gguf_arr_str(kv, 1);
    ASSERT_EQ(s.len, 0);
    s = ns_gguf_arr_str(kv, 2);
    ASSERT_EQ(s.len, strlen("gamma \xe2\x96\x81 delta"));
    ASSERT_TRUE(memcmp(s.ptr, "gamma \xe2\x96\x81 delta", (size_t)s.len) == 0);
    ASSERT_TRUE(ns_gguf_arr_str(kv, 3).ptr == NULL);

    t = ns_gguf_find_tensor(g, "c.q4k");
    ASSERT_TRUE(t != NULL);
    ASSERT_EQ(t->type, NS_TYPE_Q4_K);
    ASSERT_EQ(t->n_dims, 3);
    ASSERT_EQ(t->ne[0], 256);
    ASSERT_EQ(t->ne[2], 2);
    ASSERT_EQ(t->ne[3], 1);
    ASSERT_EQ(t->nbytes, 4 * 144);
    ASSERT_EQ(t->file_offset % ns_gguf_alignment(g), 0);
    /* Data came back in order: byte k of the data stream is k*31+7. */
    {
        size_t base = 3 * 34 + 7 * 4;
        for (size_t k = 0; k < t->nbytes; k++) {
            ASSERT_EQ(t->data[k], (uint8_t)((base + k) * 31u + 7u));
        }
    }
    ASSERT_TRUE(ns_gguf_find_tensor(g, "missing") == NULL);
    walk(g);
    ns_gguf_close(&g);
    ASSERT_TRUE(g == NULL);
    ns_gguf_close(&g); /* NULL-safe */
}

/* ---- hand-made corrupt files ------------------------------------------------ */

typedef struct bb {
    uint8_t p[4096];
    size_t n;
} bb;

static void bb_u32(bb *b, uint32_t v) {
    memcpy(b->p + b->n, &v, 4);
    b->n += 4;
}
static void bb_u64(bb *b, uint64_t v) {
    memcpy(b->p + b->n, &v, 8);
    b->n += 8;
}
static void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    memcpy(b->p + b->n, s, strlen(s));
    b->n += strlen(s);
}
static void bb_header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b->n = 0;
    bb_u32(b, NS_GGUF_MAGIC);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
static void bb_tensor(bb *b, const char *name, uint64_t ne0, uint32_t type, uint64_t off) {
    bb_str(b, name);
    bb_u32(b, 1);
    bb_u64(b, ne0);
    bb_u32(b, type);
    bb_u64(b, off);
}
static void bb_pad(bb *b, size_t extra) {
    size_t target = (b->n + 31) / 32 * 32 + extra;
    memset(b->p + b->n, 0, target - b->n);
    b->n = target;
}

static void expect_error(const bb *b, const char *needle) {
    ns_gguf *g = NULL;
    ns_err err = {0};
    ns_status st = ns_gguf_open_memory(b->p, b->n, &g, &err);
    if (st == NS_OK) {
        ns_gguf_close(&g);
        NS_FAIL("expected an error containing '%s', got success", needle);
    }
    ASSERT_TRUE(g == NULL);
    if (strstr(err.msg, needle) == NULL) {
        NS_FAIL("expected an error containing '%s', got '%s'", needle, err.msg);
    }
    if (strstr(err.msg, "at byte") == NULL && st == NS_ERR_FORMAT && strstr(err.msg, "duplicate tensor") == NULL) {
        NS_FAIL("error '%s' does not name a byte offset", err.msg);
    }
}

static void test_corrupt_cases(void) {
    bb b;
    /* bad magic */
    bb_header(&b, 3, 0, 0);
    b.p[0] = 'X';
    expect_error(&b, "bad magic");
    /* versions */
    bb_header(&b, 1, 0, 0);
    expect_error(&b, "version 1");
    bb_header(&b, 7, 0, 0);
    expect_error(&b, "unsupported GGUF version 7");
    /* counts that cannot fit: no allocation of 2^60 entries */
    bb_header(&b, 3, 0, 1ull << 60);
    expect_error(&b, "metadata count");
    bb_header(&b, 3, 1ull << 60, 0);
    expect_error(&b, "tensor count");
    /* a string longer than the file */
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, 1ull << 40);
    bb_pad(&b, 64);
    expect_error(&b, "metadata key");
    /* invalid value type */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, 13);
    bb_pad(&b, 64);
    expect_error(&b, "invalid value type 13");
    /* nested array */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, NS_GGUF_ARRAY);
    bb_u32(&b, NS_GGUF_ARRAY);
    bb_u64(&b, 1);
    bb_pad(&b, 64);
    expect_error(&b, "nested arrays");
    /* array count larger than the bytes left */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, NS_GGUF_ARRAY);
    bb_u32(&b, NS_GGUF_UINT64);
    bb_u64(&b, 1ull << 59);
    expect_error(&b, "does not fit");
    /* duplicate key */
    bb_header(&b, 3, 0, 2);
    bb_str(&b, "k");
    bb_u32(&b, NS_GGUF_UINT32);
    bb_u32(&b, 1);
    bb_str(&b, "k");
    bb_u32(&b, NS_GGUF_UINT32);
    bb_u32(&b, 2);
    expect_error(&b, "duplicate metadata key 'k'");
    /* bad alignment */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_u32(&b, NS_GGUF_UINT32);
    bb_u32(&b, 48);
    expect_error(&b, "power of two");
    /* bad bool */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, NS_GGUF_BOOL);
    b.p[b.n++] = 7;
    expect_error(&b, "bool");
    /* tensors: dims, types, block multiples, alignment, bounds, duplicates */
    bb_header(&b, 3, 1, 0);
    bb_str(&b, "t");
    bb_u32(&b, 5);
    bb_pad(&b, 64);
    expect_error(&b, "5 dimensions");
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "t", 32, 99, 0);
    bb_pad(&b, 64);
    expect_error(&b, "unknown type id 99");
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "t", 33, NS_TYPE_Q8_0, 0);
    bb_pad(&b, 64);
    expect_error(&b, "not a multiple");
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "t", 32, NS_TYPE_F32, 3);
    bb_pad(&b, 64);
    expect_error(&b, "not aligned");
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "t", 32, NS_TYPE_F32, 0);
    bb_pad(&b, 64); /* 128 bytes needed */
    expect_error(&b, "past the end");
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "t", 8, NS_TYPE_F32, 0);
    bb_tensor(&b, "t", 8, NS_TYPE_F32, 32);
    bb_pad(&b, 64);
    expect_error(&b, "duplicate tensor name 't'");
    /* dimension product overflow */
    bb_header(&b, 3, 1, 0);
    bb_str(&b, "t");
    bb_u32(&b, 2);
    bb_u64(&b, 1ull << 40);
    bb_u64(&b, 1ull << 40);
    bb_u32(&b, NS_TYPE_F32);
    bb_u64(&b, 0);
    expect_error(&b, "overflows");
    /* and a valid minimal file opens */
    {
        ns_gguf *g = NULL;
        bb_header(&b, 2, 1, 0);
        bb_tensor(&b, "t", 8, NS_TYPE_F32, 0);
        bb_pad(&b, 32);
        ASSERT_OK(ns_gguf_open_memory(b.p, b.n, &g, NULL));
        ASSERT_EQ(ns_gguf_version(g), 2);
        ASSERT_EQ(ns_gguf_find_tensor(g, "t")->nbytes, 32);
        ns_gguf_close(&g);
    }
}

/* Corrupt every header byte (three ways) and truncate at every header length:
 * each attempt either errors cleanly or yields a file whose every view is in
 * bounds (walk() touches them all; run under ASan for the full guarantee). */
static void mutate_all(const uint8_t *orig, size_t len, size_t header_len, const char *label) {
    uint8_t *buf = malloc(len);
    size_t n_err = 0, n_ok = 0;
    static const uint8_t xors[] = {0xFF, 0x01, 0x80};
    ASSERT_TRUE(buf != NULL);
    for (size_t i = 0; i < header_len; i++) {
        for (size_t k = 0; k < sizeof xors; k++) {
            ns_gguf *g = NULL;
            ns_err err = {0};
            memcpy(buf, orig, len);
            buf[i] ^= xors[k];
            if (ns_gguf_open_memory(buf, len, &g, &err) == NS_OK) {
                walk(g);
                ns_gguf_close(&g);
                n_ok++;
            } else {
                ASSERT_TRUE(g == NULL && err.msg[0] != '\0');
                n_err++;
            }
        }
    }
    for (size_t cut = 0; cut < header_len; cut++) {
        ns_gguf *g = NULL;
        ns_err err = {0};
        memcpy(buf, orig, cut);
        if (ns_gguf_open_memory(buf, cut, &g, &err) == NS_OK) {
            NS_FAIL("%s truncated to %zu bytes opened without error", label, cut);
        }
    }
    fprintf(stderr, "%s: %zu header bytes x 3 corruptions: %zu errors, %zu still-valid files; %zu truncations ok\n",
            label, header_len, n_err, n_ok, header_len);
    /* Most single-byte corruptions hit structure and must be reported. */
    ASSERT_TRUE(n_err > 0);
    free(buf);
}

static void test_mutations(void) {
    char path[512];
    uint8_t *buf;
    size_t len;
    ns_gguf *g = NULL;
    tmp_path("mut.gguf", path, sizeof path);
    ASSERT_EQ(ns_fixture_all_types(path, 0), 0);
    buf = ns_fixture_slurp(path, &len);
    ASSERT_TRUE(buf != NULL);
    ASSERT_OK(ns_gguf_open_memory(buf, len, &g, NULL));
    {
        size_t header = (size_t)ns_gguf_data_offset(g, 0);
        ns_gguf_close(&g);
        mutate_all(buf, len, header, "fixture");
    }
    free(buf);
}

static void test_stories_header_flips(void) {
    char path[512];
    uint8_t *buf;
    size_t len;
    ns_gguf *g = NULL;
    ns_err err = {0};
    const ns_gguf_tensor *t;
    char arch[32];
    uint32_t u;
    ns_test_reference("models/stories260K.gguf", path, sizeof path);
    if (ns_gguf_open(path, &g, &err) != NS_OK) {
        NS_FAIL("open %s: %s", path, ns_err_msg(&err));
    }
    /* What the file holds (see ../shared/reference/README.md). */
    ASSERT_TRUE(ns_gguf_get_cstr(g, "general.architecture", arch, sizeof arch));
    ASSERT_STREQ(arch, "llama");
    ASSERT_OK(ns_gguf_get_u32(g, "llama.block_count", &u));
    ASSERT_EQ(u, 5);
    ASSERT_OK(ns_gguf_get_u32(g, "llama.embedding_length", &u));
    ASSERT_EQ(u, 64);
    ASSERT_OK(ns_gguf_get_u32(g, "llama.attention.head_count", &u));
    ASSERT_EQ(u, 8);
    ASSERT_OK(ns_gguf_get_u32(g, "llama.attention.head_count_kv", &u));
    ASSERT_EQ(u, 4);
    ASSERT_OK(ns_gguf_get_u32(g, "llama.feed_forward_length", &u));
    ASSERT_EQ(u, 172);
    ASSERT_EQ(ns_gguf_find_kv(g, "tokenizer.ggml.tokens")->arr_n, 512);
    t = ns_gguf_find_tensor(g, "token_embd.weight");
    ASSERT_TRUE(t != NULL && t->type == NS_TYPE_F32 && t->ne[0] == 64 && t->ne[1] == 512);
    t = ns_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    ASSERT_TRUE(t != NULL && t->ne[0] == 172 && t->ne[1] == 64);
    walk(g);
    {
        size_t header = (size_t)ns_gguf_data_offset(g, 0);
        ns_gguf_close(&g);
        buf = ns_fixture_slurp(path, &len);
        ASSERT_TRUE(buf != NULL);
        mutate_all(buf, len, header, "stories260K");
        free(buf);
    }
}

/* A model split in two parts opens from the first part with all tensors. */
static void test_split(void) {
    char p1[512], p2[512], p3[512];
    int64_t ne[1] = {8};
    float vals[8];
    ns_gguf *g = NULL;
    ns_err err = {0};
    for (int part = 0; part < 2; part++) {
        ns_gguf_writer *w = NULL;
        ASSERT_OK(ns_gguf_writer_new(&w));
        ns_gguf_writer_set_u16(w, "split.no", (uint16_t)part);
        ns_gguf_writer_set_u16(w, "split.count", 2);
        ns_gguf_writer_set_i32(w, "split.tensors.count", 3);
        if (part == 0) {
            ns_gguf_writer_set_str(w, "general.architecture", "llama", 5);
            ASSERT_OK(ns_gguf_writer_add_tensor(w, "x0", NS_TYPE_F32, 1, ne));
            ASSERT_OK(ns_gguf_writer_add_tensor(w, "x1", NS_TYPE_F32, 1, ne));
        } else {
            ASSERT_OK(ns_gguf_writer_add_tensor(w, "x2", NS_TYPE_F32, 1, ne));
        }
        snprintf(p1, sizeof p1, "%s/model-%05d-of-00002.gguf", g_tmpdir, part + 1);
        ASSERT_OK(ns_gguf_writer_begin(w, p1, NULL));
        for (int t = 0; t < (part == 0 ? 2 : 1); t++) {
            for (int i = 0; i < 8; i++) {
                vals[i] = (float)(100 * (part * 2 + t) + i);
            }
            ASSERT_OK(ns_gguf_writer_write_data(w, vals, sizeof vals, NULL));
        }
        ASSERT_OK(ns_gguf_writer_finish(w, NULL));
        ns_gguf_writer_free(&w);
    }
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.gguf", g_tmpdir);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.gguf", g_tmpdir);
    if (ns_gguf_open(p1, &g, &err) != NS_OK) {
        NS_FAIL("split open: %s", ns_err_msg(&err));
    }
    ASSERT_EQ(ns_gguf_n_files(g), 2);
    ASSERT_EQ(ns_gguf_n_tensors(g), 3);
    {
        const ns_gguf_tensor *t = ns_gguf_find_tensor(g, "x2");
        float v;
        ASSERT_TRUE(t != NULL && t->file_index == 1);
        memcpy(&v, t->data + 4, 4);
        ASSERT_NEAR(v, 201.0, 0);
    }
    ns_gguf_close(&g);
    /* Naming a later part is a clear error, as is a missing part. */
    ASSERT_EQ(ns_gguf_open(p2, &g, &err), NS_ERR_INVALID_ARG);
    ASSERT_TRUE(strstr(err.msg, "open the first part") != NULL);
    snprintf(p3, sizeof p3, "%s/gone-00001-of-00002.gguf", g_tmpdir);
    rename(p1, p3);
    ASSERT_EQ(ns_gguf_open(p3, &g, &err), NS_ERR_IO);
    ASSERT_TRUE(strstr(err.msg, "gone-00002-of-00002.gguf") != NULL);
}

static void test_open_errors(void) {
    ns_gguf *g = NULL;
    ns_err err = {0};
    char path[512];
    FILE *f;
    ASSERT_EQ(ns_gguf_open("/nonexistent/x.gguf", &g, &err), NS_ERR_IO);
    ASSERT_TRUE(strstr(err.msg, "/nonexistent/x.gguf") != NULL);
    ASSERT_EQ(ns_gguf_open(g_tmpdir, &g, &err), NS_ERR_IO); /* a directory */
    tmp_path("empty.gguf", path, sizeof path);
    f = fopen(path, "wb");
    fclose(f);
    ASSERT_EQ(ns_gguf_open(path, &g, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(strstr(err.msg, "too small") != NULL);
}

int main(void) {
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/ns_test_gguf_XXXXXX");
    if (mkdtemp(g_tmpdir) == NULL) {
        NS_FAIL("mkdtemp");
    }
    test_roundtrip(0);
    test_roundtrip(64);
    test_roundtrip(128);
    test_corrupt_cases();
    test_mutations();
    test_split();
    test_open_errors();
    test_stories_header_flips(); /* last: skips (77) when the reference is absent */
    printf("test_gguf: ok\n");
    return 0;
}
