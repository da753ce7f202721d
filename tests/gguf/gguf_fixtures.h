/*
 * gguf_fixtures.h - small GGUF files built with the project's own writer, for
 * the reader tests and as the fuzzer's seed corpus. Header-only (test code).
 */
#ifndef NS_GGUF_FIXTURES_H
#define NS_GGUF_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_write.h"

/* A file with every metadata value type, string and numeric arrays, and
 * tensors of several types and ranks. Returns 0 on success. */
static inline int ns_fixture_all_types(const char *path, uint32_t alignment) {
    ns_gguf_writer *w = NULL;
    ns_err err = {0};
    static const char *const strs[] = {"alpha", "", "gamma \xe2\x96\x81 delta"};
    int32_t iarr[5] = {1, -2, 3, -4, 5};
    float farr[3] = {0.5f, -1.25f, 3.0f};
    int64_t ne_a[2] = {32, 3}, ne_b[1] = {7}, ne_c[3] = {256, 2, 2}, ne_d[2] = {64, 2};
    uint8_t buf[4096];
    int rc = 1;
    if (ns_gguf_writer_new(&w) != NS_OK) {
        return 1;
    }
    if (alignment != 0) {
        ns_gguf_writer_set_u32(w, "general.alignment", alignment);
    }
    ns_gguf_writer_set_str(w, "general.architecture", "llama", 5);
    ns_gguf_writer_set_u8(w, "t.u8", 200);
    ns_gguf_writer_set_i8(w, "t.i8", -100);
    ns_gguf_writer_set_u16(w, "t.u16", 60000);
    ns_gguf_writer_set_i16(w, "t.i16", -30000);
    ns_gguf_writer_set_u32(w, "t.u32", 4000000000u);
    ns_gguf_writer_set_i32(w, "t.i32", -2000000000);
    ns_gguf_writer_set_f32(w, "t.f32", 1.5f);
    ns_gguf_writer_set_bool(w, "t.bool", true);
    ns_gguf_writer_set_str(w, "t.str", "hello", 5);
    ns_gguf_writer_set_u64(w, "t.u64", 18000000000000000000ull);
    ns_gguf_writer_set_i64(w, "t.i64", -9000000000000000000ll);
    ns_gguf_writer_set_f64(w, "t.f64", -2.25);
    ns_gguf_writer_set_arr(w, "t.arr_i32", NS_GGUF_INT32, iarr, 5);
    ns_gguf_writer_set_arr(w, "t.arr_f32", NS_GGUF_FLOAT32, farr, 3);
    ns_gguf_writer_set_arr_str(w, "t.arr_str", strs, NULL, 3);
    ns_gguf_writer_add_tensor(w, "a.q8", NS_TYPE_Q8_0, 2, ne_a);
    ns_gguf_writer_add_tensor(w, "b.f32", NS_TYPE_F32, 1, ne_b);
    ns_gguf_writer_add_tensor(w, "c.q4k", NS_TYPE_Q4_K, 3, ne_c);
    ns_gguf_writer_add_tensor(w, "d.f16", NS_TYPE_F16, 2, ne_d);
    if (ns_gguf_writer_begin(w, path, &err) != NS_OK) {
        fprintf(stderr, "fixture: %s\n", ns_err_msg(&err));
        goto done;
    }
    /* Tensor bytes: a pattern that depends on position, written in odd chunks. */
    {
        size_t total = 3 * 34 + 7 * 4 + 4 * 144 + 128 * 2;
        size_t pos = 0;
        while (pos < total) {
            size_t n = total - pos < 37 ? total - pos : 37;
            for (size_t i = 0; i < n; i++) {
                buf[i] = (uint8_t)((pos + i) * 31u + 7u);
            }
            if (ns_gguf_writer_write_data(w, buf, n, &err) != NS_OK) {
                fprintf(stderr, "fixture: %s\n", ns_err_msg(&err));
                goto done;
            }
            pos += n;
        }
    }
    if (ns_gguf_writer_finish(w, &err) != NS_OK) {
        fprintf(stderr, "fixture: %s\n", ns_err_msg(&err));
        goto done;
    }
    rc = 0;
done:
    ns_gguf_writer_free(&w);
    return rc;
}

/* Read a whole file into a malloc'd buffer. */
static inline uint8_t *ns_fixture_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

#endif /* NS_GGUF_FIXTURES_H */
