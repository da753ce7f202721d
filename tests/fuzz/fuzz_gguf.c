/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader (untrusted model files).
 *
 * Any input must either fail to open with an error, or open into a handle
 * whose every metadata value, array element and tensor byte is in bounds.
 */
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ns_gguf *g = NULL;
    ns_err err = {0};
    volatile uint8_t sink = 0;
    if (ns_gguf_open_memory(data, size, &g, &err) != NS_OK) {
        return 0;
    }
    for (uint64_t i = 0; i < ns_gguf_n_kv(g); i++) {
        const ns_gguf_kv *kv = ns_gguf_kv_at(g, i);
        (void)ns_gguf_find_kv(g, kv->key);
        if (kv->type == NS_GGUF_STRING && kv->str.len > 0) {
            sink ^= (uint8_t)kv->str.ptr[kv->str.len - 1];
        } else if (kv->type == NS_GGUF_ARRAY) {
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                if (kv->arr_type == NS_GGUF_STRING) {
                    ns_gguf_str s = ns_gguf_arr_str(kv, j);
                    if (s.len > 0) {
                        sink ^= (uint8_t)s.ptr[s.len - 1];
                    }
                } else {
                    double d;
                    (void)ns_gguf_arr_f64(kv, j, &d);
                }
            }
        }
    }
    for (uint64_t i = 0; i < ns_gguf_n_tensors(g); i++) {
        const ns_gguf_tensor *t = ns_gguf_tensor_at(g, i);
        (void)ns_gguf_find_tensor(g, t->name);
        if (t->nbytes > 0) {
            sink ^= t->data[0] ^ t->data[t->nbytes - 1];
        }
    }
    (void)sink;
    ns_gguf_close(&g);
    return 0;
}
