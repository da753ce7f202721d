/* test_model_sizes.c - per-layer byte accounting from GGUF tensor tables. */
#include "model_sizes.h"
#include "ns_test.h"
#include "shape_table.h"

static void test_hand_table(void) {
    /* 2 layers, E=256, F=512, 4 heads / 2 kv heads (hd 64), vocab 1000. */
    shape_table s;
    ns_synth_shape shape = {"t", 2, 256, 512, 4, 2, 1000, 128, 10000.0f, false};
    ASSERT_EQ(shape_table_build(&s, &shape, NS_FTYPE_F16, 0), 0);
    ns_model_sizes ms;
    ns_err err;
    ASSERT_OK(ns_model_sizes_build(&s.hp, s.t, s.n, &ms, &err));
    /* f16 weights: q 256x256, k 256x128, v 256x128, o 256x256, gate/up 256x512, down 512x256; norms f32. */
    uint64_t params = 256 * 256 * 2 + 256 * 128 * 2 + 256 * 512 * 3;
    uint64_t bytes = params * 2 + 256 * 4 * 2;
    for (uint32_t il = 0; il < 2; il++) {
        ASSERT_EQ(ms.layers[il].matmul_params, params);
        ASSERT_EQ(ms.layers[il].bytes, bytes);
        /* Every f16 matrix is a multiple of 256 bytes; each 1 KiB norm is too. */
        ASSERT_EQ(ms.layers[il].dev_bytes, bytes);
        ASSERT_EQ(ms.layers[il].max_matrix_elems, 256 * 512);
    }
    ASSERT_TRUE(!ms.output_tied);
    ASSERT_EQ(ms.embd_bytes, 256 * 1000 * 2);
    ASSERT_EQ(ms.embd_row_bytes, 512);
    ASSERT_EQ(ms.head_bytes, 256 * 1000 * 2);
    ASSERT_EQ(ms.head_params, 256 * 1000);
    ASSERT_EQ(ms.output_norm_bytes, 1024);
    ASSERT_EQ(ms.globals_dev_bytes, 1024);
    ASSERT_EQ(ms.total_bytes, 2 * bytes + 2 * 256 * 1000 * 2 + 1024);
    ASSERT_EQ(ms.max_matrix_elems, 256 * 1000);
    /* KV: 2 layers * 2 kv heads * (64 + 64) * 2 bytes. */
    ASSERT_EQ(ms.kv_bytes_per_token, 2 * 2 * 128 * 2);
    ns_model_sizes_free(&ms);
    ns_model_sizes_free(&ms); /* idempotent */
    ASSERT_TRUE(ms.layers == NULL);

    /* A 1-D tensor of 10 f32 (40 bytes) rounds up to one 256-byte unit on the device. */
    ASSERT_EQ(ns_msize_align(40), 256);
    ASSERT_EQ(ns_msize_align(256), 256);
    ASSERT_EQ(ns_msize_align(0), 0);
    shape_table_free(&s);
}

static void test_tied_and_errors(void) {
    shape_table s;
    const ns_synth_shape *shape = ns_synth_shape_find("tiny");
    ASSERT_TRUE(shape != NULL);
    ASSERT_EQ(shape_table_build(&s, shape, NS_FTYPE_Q8_0, 1), 0);
    ns_model_sizes ms;
    ns_err err;
    ASSERT_OK(ns_model_sizes_build(&s.hp, s.t, s.n, &ms, &err));
    ASSERT_TRUE(ms.output_tied);
    ASSERT_EQ(ms.head_bytes, ms.embd_bytes);
    ASSERT_EQ(ms.head_params, (uint64_t)shape->n_embd * shape->n_vocab);
    ns_model_sizes_free(&ms);

    /* A tensor of a layer past block_count. */
    ns_msize_hparams hp = s.hp;
    hp.n_layer = 2;
    ASSERT_EQ(ns_model_sizes_build(&hp, s.t, s.n, &ms, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(strstr(err.msg, "outside") != NULL);
    ASSERT_TRUE(ms.layers == NULL);
    /* A layer with no tensors. */
    hp.n_layer = shape->n_layer + 1;
    ASSERT_EQ(ns_model_sizes_build(&hp, s.t, s.n, &ms, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(strstr(err.msg, "no tensors") != NULL);
    /* A malformed layer index. */
    hp = s.hp;
    const char *saved = s.t[5].name;
    s.t[5].name = "blk.x.attn_q.weight";
    ASSERT_EQ(ns_model_sizes_build(&hp, s.t, s.n, &ms, &err), NS_ERR_FORMAT);
    s.t[5].name = saved;
    /* No token embedding (it is entry 0). */
    ASSERT_EQ(ns_model_sizes_build(&hp, s.t + 1, s.n - 1, &ms, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(strstr(err.msg, "token_embd") != NULL);
    /* nbytes 0 is computed from the shape. */
    s.t[0].nbytes = 0;
    ASSERT_OK(ns_model_sizes_build(&hp, s.t, s.n, &ms, &err));
    ASSERT_EQ(ms.embd_bytes, ns_type_row_size(s.t[0].type, s.t[0].ne[0]) * (uint64_t)s.t[0].ne[1]);
    ns_model_sizes_free(&ms);
    hp.n_layer = 0;
    ASSERT_EQ(ns_model_sizes_build(&hp, s.t, s.n, &ms, &err), NS_ERR_INVALID_ARG);
    shape_table_free(&s);
}

static void test_70b_shape(void) {
    shape_table s;
    const ns_synth_shape *shape = ns_synth_shape_find("llama2-70b");
    ASSERT_TRUE(shape != NULL);
    ASSERT_EQ(shape_table_build(&s, shape, NS_FTYPE_Q4_K_M, 0), 0);
    ns_model_sizes ms;
    ns_err err;
    ASSERT_OK(ns_model_sizes_build(&s.hp, s.t, s.n, &ms, &err));
    uint64_t sum = ms.embd_bytes + ms.head_bytes + ms.output_norm_bytes + ms.other_bytes;
    for (uint32_t il = 0; il < 80; il++) {
        sum += ms.layers[il].bytes;
        ASSERT_TRUE(ms.layers[il].dev_bytes >= ms.layers[il].bytes);
        ASSERT_TRUE(ms.layers[il].dev_bytes - ms.layers[il].bytes < 9 * NS_MSIZE_ALIGN);
        ASSERT_TRUE(ms.max_layer_dev_bytes >= ms.layers[il].dev_bytes);
    }
    ASSERT_EQ(sum, ms.total_bytes);
    /* llama.cpp's Llama-2-70B Q4_K_M is about 41.4 GB (38.6 GiB). */
    fprintf(stderr, "70B Q4_K_M: %.2f GB, largest layer %.1f MB, head %.1f MB\n", ms.total_bytes / 1e9,
            ms.max_layer_dev_bytes / 1e6, ms.head_bytes / 1e6);
    ASSERT_TRUE(ms.total_bytes > 38000000000ull && ms.total_bytes < 43000000000ull);
    /* KV f16: 2 * 80 layers * 8 kv heads * 128 dims * 2 bytes = 320 KiB per token. */
    ASSERT_EQ(ms.kv_bytes_per_token, 327680);
    /* The largest matrix is the head (8192 x 32000), not ffn (8192 x 28672). */
    ASSERT_EQ(ms.max_matrix_elems, 8192ull * 32000ull);
    ASSERT_EQ(ms.layers[0].max_matrix_elems, 8192ull * 28672ull);
    ns_model_sizes_free(&ms);
    shape_table_free(&s);
}

static void test_reference_gguf(void) {
    char path[1024];
    ns_gguf *g = NULL;
    ns_err err;
    ns_model_sizes ms;
    ns_test_reference("models/tiny-llama-q4_k_m.gguf", path, sizeof path);
    ASSERT_OK(ns_gguf_open(path, &g, &err));
    ASSERT_OK(ns_model_sizes_from_gguf(g, &ms, &err));
    ASSERT_STREQ(ms.hp.arch, "llama");
    ASSERT_EQ(ms.hp.n_layer, 4);
    ASSERT_EQ(ms.hp.n_embd, 512);
    ASSERT_EQ(ms.hp.n_vocab, 32000);
    ASSERT_EQ(ms.hp.head_dim_k, ms.hp.n_embd / ms.hp.n_head);
    uint64_t total = 0;
    for (uint64_t i = 0; i < ns_gguf_n_tensors(g); i++) {
        total += ns_gguf_tensor_at(g, i)->nbytes;
    }
    ASSERT_EQ(ms.total_bytes, total);
    const ns_gguf_tensor *te = ns_gguf_find_tensor(g, "token_embd.weight");
    ASSERT_EQ(ms.embd_bytes, te->nbytes);
    ASSERT_EQ(ms.output_tied, ns_gguf_find_tensor(g, "output.weight") == NULL);
    ns_model_sizes_free(&ms);
    ns_gguf_close(&g);

    /* qwen2 (QKV biases) and stories260K (F32) account every byte too. */
    const char *others[] = {"models/micro-qwen2-q8_0.gguf", "models/stories260K.gguf"};
    for (size_t k = 0; k < 2; k++) {
        ns_test_reference(others[k], path, sizeof path);
        ASSERT_OK(ns_gguf_open(path, &g, &err));
        ASSERT_OK(ns_model_sizes_from_gguf(g, &ms, &err));
        total = 0;
        for (uint64_t i = 0; i < ns_gguf_n_tensors(g); i++) {
            total += ns_gguf_tensor_at(g, i)->nbytes;
        }
        uint64_t sum = ms.embd_bytes + (ms.output_tied ? 0 : ms.head_bytes) + ms.output_norm_bytes + ms.other_bytes;
        for (uint32_t il = 0; il < ms.hp.n_layer; il++) {
            sum += ms.layers[il].bytes;
        }
        ASSERT_EQ(ms.total_bytes, total);
        ASSERT_EQ(sum, total);
        ns_model_sizes_free(&ms);
        ns_gguf_close(&g);
    }
}

int main(void) {
    test_hand_table();
    test_tied_and_errors();
    test_70b_shape();
    test_reference_gguf();
    printf("test_model_sizes: ok\n");
    return 0;
}
