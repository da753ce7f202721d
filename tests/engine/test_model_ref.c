/*
 * test_model_ref.c - whole-model logits against llama.cpp's reference logits
 * for every model in ../shared/reference/models and prompts p1, p2; greedy
 * continuation of stories260K against llama.cpp's.
 *
 * Usage: test_model_ref [MODEL_NAME] (default: all). Bars: relative RMS
 * difference per position <= 0.002 (stories260K, F32) or <= 0.035
 * (quantized models).
 */
#include "engine_test_util.h"

static const char *g_models[] = {"stories260K", "micro-llama-q8_0", "micro-llama-q4_k_m", "micro-qwen2-q8_0",
                                 "tiny-llama-q4_k_m"};

static void check_logits(const char *name, const char *tag, bool simd) {
    char path[1024], jpath[1024], lpath[1024], rel[256];
    snprintf(rel, sizeof(rel), "models/%s.gguf", name);
    ns_test_reference(rel, path, sizeof(path));
    snprintf(rel, sizeof(rel), "models/%s.%s.json", name, tag);
    ns_test_reference(rel, jpath, sizeof(jpath));
    snprintf(rel, sizeof(rel), "models/%s.%s.logits.f32", name, tag);
    ns_test_reference(rel, lpath, sizeof(lpath));

    char *json = et_read_file(jpath, NULL);
    int32_t prompt[512], greedy[512];
    int n_prompt = et_json_ints(json, "prompt_tokens", prompt, 512);
    int n_greedy = et_json_ints(json, "greedy", greedy, 512);
    ASSERT_TRUE(n_prompt > 0 && n_prompt <= 512);
    size_t ref_len;
    float *ref = (float *)et_read_file(lpath, &ref_len);

    et_engine e;
    et_engine_open(&e, path, 64, 1, 256, 2, simd);
    ASSERT_EQ(ref_len, (size_t)n_prompt * (size_t)e.n_vocab * sizeof(float));
    int32_t seq;
    ASSERT_OK(ns_kv_seq_add(e.kv, &seq));
    for (int i = 0; i < n_prompt; i++) {
        ASSERT_TRUE(ns_ubatch_add(&e.ub, prompt[i], i, seq, true));
    }
    et_engine_run(&e);
    double bar = strcmp(name, "stories260K") == 0 ? 0.002 : 0.035;
    double worst = 0;
    for (int i = 0; i < n_prompt; i++) {
        double r = et_rel_rms(e.logits + (size_t)i * e.n_vocab, ref + (size_t)i * e.n_vocab, (size_t)e.n_vocab);
        worst = r > worst ? r : worst;
        if (r > bar) {
            NS_FAIL("%s %s pos %d: relative RMS %.5f > %.3f", name, tag, i, r, bar);
        }
    }
    printf("%-20s %s %s: %d positions, worst relative RMS %.5f (bar %.3f)\n", name, tag, simd ? "simd" : "scalar",
           n_prompt, worst, bar);

    if (n_greedy > 0) {
        int32_t tok = et_argmax(e.logits + (size_t)(n_prompt - 1) * e.n_vocab, e.n_vocab);
        for (int g = 0; g < n_greedy; g++) {
            if (tok != greedy[g]) {
                NS_FAIL("%s %s greedy token %d: got %d, want %d", name, tag, g, tok, greedy[g]);
            }
            ns_ubatch_clear(&e.ub);
            ns_ubatch_add(&e.ub, tok, n_prompt + g, seq, true);
            et_engine_run(&e);
            tok = et_argmax(e.logits, e.n_vocab);
        }
        printf("%-20s %s greedy: %d tokens identical\n", name, tag, n_greedy);
    }
    et_engine_close(&e);
    free(ref);
    free(json);
}

int main(int argc, char **argv) {
    for (size_t m = 0; m < sizeof(g_models) / sizeof(g_models[0]); m++) {
        if (argc > 1 && strcmp(argv[1], g_models[m]) != 0) {
            continue;
        }
        check_logits(g_models[m], "p1", true);
        check_logits(g_models[m], "p2", true);
    }
    /* The portable kernels must meet the same bar. */
    if (argc <= 1) {
        check_logits("stories260K", "p2", false);
        check_logits("micro-qwen2-q8_0", "p1", false);
    }
    return 0;
}
