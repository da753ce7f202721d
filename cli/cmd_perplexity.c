/*
 * cmd_perplexity.c - `nightshift perplexity -m MODEL -f TEXT.txt [--ctx N]
 * [--chunks K] [--json] [-t N] [--backend cpu|cuda|auto]`
 *
 * llama.cpp's `llama-perplexity` method: the whole text is tokenized (BOS as
 * the metadata says), cut into non-overlapping chunks of N tokens, the first
 * token of each chunk is set to BOS (when the model adds one), each chunk
 * runs as a fresh sequence, and the negative log-likelihood is counted over
 * the second half of each chunk only (positions N/2 .. N-2 predicting the
 * next token). Prints the running estimate per chunk on stderr and the final
 * perplexity with its standard error on stdout (or JSON with --json).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "engine.h"
#include "engine_cli.h"
#include "ns_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift perplexity -m MODEL.gguf -f TEXT.txt [options]\n"
               "  --ctx N                  tokens per chunk (default 512)\n"
               "  --chunks K               stop after K chunks (default: all)\n"
               "  --json                   print the result as JSON\n"
               "  -t N                     CPU threads (default: all cores)\n"
               "  --backend cpu|cuda|auto  (default auto)\n" CLI_PLACEMENT_HELP);
}

int ns_cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    int32_t n_ctx = 512, max_chunks = 0;
    bool json = false;
    ns_engine_params ep;
    ns_engine_params_default(&ep);
    bool placement_ok = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-m") == 0 && v) {
            model = v, i++;
        } else if (strcmp(a, "-f") == 0 && v) {
            file = v, i++;
        } else if (strcmp(a, "--ctx") == 0 && v && cli_parse_i32(v, 4, 1 << 20, &n_ctx)) {
            i++;
        } else if (strcmp(a, "--chunks") == 0 && v && cli_parse_i32(v, 1, 1 << 30, &max_chunks)) {
            i++;
        } else if (strcmp(a, "-t") == 0 && v && cli_parse_i32(v, 1, 1024, &ep.n_threads)) {
            i++;
        } else if (cli_placement_opt(a, v, &ep, &placement_ok) && placement_ok) {
            i++;
        } else if (strcmp(a, "--backend") == 0 && v && ns_backend_kind_parse(v, &ep.backend)) {
            i++;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "perplexity: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (model == NULL || file == NULL) {
        usage(stderr);
        return 2;
    }
    if (cli_placement_check("perplexity", &ep) != 0) {
        return 2;
    }
    if (ep.workload == NULL) {
        ep.workload = "single"; /* one sequence at a time */
    }
    int rc = 1;
    ns_err err = {0};
    ns_engine *eng = NULL;
    char *text = NULL;
    int32_t *ids = NULL, n = 0;
    float *logits = NULL;
    ns_arena arena = {0};
    size_t len;
    text = cli_read_file(file, &len);
    if (text == NULL) {
        fprintf(stderr, "perplexity: cannot read %s\n", file);
        goto done;
    }
    ep.model_path = model;
    ep.max_seqs = 1;
    ep.max_seq_len = n_ctx;
    ep.max_tokens = n_ctx < 512 ? n_ctx : 512;
    if (ns_engine_create(&ep, &eng, &err) != NS_OK) {
        fprintf(stderr, "perplexity: %s\n", ns_err_msg(&err));
        goto done;
    }
    cli_print_device("perplexity", eng);
    const ns_tokenizer *tok = ns_engine_tokenizer(eng);
    if (cli_tokenize(tok, text, len, true, false, &ids, &n, &err) != NS_OK) {
        fprintf(stderr, "perplexity: %s\n", ns_err_msg(&err));
        goto done;
    }
    int32_t n_chunks = n / n_ctx;
    if (max_chunks > 0 && n_chunks > max_chunks) {
        n_chunks = max_chunks;
    }
    if (n_chunks < 1) {
        fprintf(stderr, "perplexity: %d tokens is less than one chunk of %d\n", n, n_ctx);
        goto done;
    }
    const ns_model *m = ns_engine_model(eng);
    const int32_t n_vocab = ns_model_hparams(m)->n_vocab;
    const int32_t step = ns_engine_backend_params(eng)->max_tokens;
    const bool add_bos = ns_tokenizer_add_bos(tok) && ns_tokenizer_bos(tok) >= 0;
    const int32_t first = n_ctx / 2;
    ns_kv_cache *kv = ns_engine_kv(eng);
    int32_t max_pages = ns_kv_pages_for(kv, n_ctx);
    ns_ubatch ub;
    logits = malloc((size_t)step * (size_t)n_vocab * sizeof(float));
    if (logits == NULL || ns_arena_init(&arena, ns_ubatch_bytes(step, max_pages)) != NS_OK ||
        ns_ubatch_init(&ub, &arena, step, max_pages) != NS_OK) {
        fprintf(stderr, "perplexity: out of memory\n");
        goto done;
    }
    double nll = 0, nll2 = 0, t0 = ns_time_s();
    int64_t count = 0;
    for (int32_t c = 0; c < n_chunks; c++) {
        int32_t *chunk = ids + (size_t)c * n_ctx;
        int32_t saved = chunk[0];
        if (add_bos) {
            chunk[0] = ns_tokenizer_bos(tok);
        }
        int32_t seq;
        if (ns_kv_seq_add(kv, &seq) != NS_OK) {
            goto done;
        }
        for (int32_t i0 = 0; i0 < n_ctx; i0 += step) {
            ns_ubatch_clear(&ub);
            for (int32_t i = i0; i < n_ctx && i < i0 + step; i++) {
                ns_ubatch_add(&ub, chunk[i], i, seq, i >= first && i < n_ctx - 1);
            }
            if (ns_kv_cache_prepare(kv, &ub, &err) != NS_OK ||
                ns_forward(m, ns_engine_backend(eng), &ub, logits, &err) != NS_OK) {
                fprintf(stderr, "perplexity: %s\n", ns_err_msg(&err));
                goto done;
            }
            for (int32_t j = 0; j < ub.n_logits; j++) {
                int32_t pos = i0 + ub.logit_rows[j];
                const float *lg = logits + (size_t)j * n_vocab;
                float mx = lg[0];
                for (int32_t k = 1; k < n_vocab; k++) {
                    mx = lg[k] > mx ? lg[k] : mx;
                }
                double sum = 0;
                for (int32_t k = 0; k < n_vocab; k++) {
                    sum += exp((double)(lg[k] - mx));
                }
                double lp = (double)(lg[chunk[pos + 1]] - mx) - log(sum);
                nll -= lp;
                nll2 += lp * lp;
                count++;
            }
        }
        ns_kv_seq_remove(kv, seq);
        chunk[0] = saved;
        fprintf(stderr, "[%d] %.4f\n", c + 1, exp(nll / (double)count));
    }
    double dt = ns_time_s() - t0;
    double mean = nll / (double)count;
    double var = count > 1 ? (nll2 / (double)count - mean * mean) / (double)(count - 1) : 0;
    double ppl = exp(mean);
    double ppl_err = var > 0 ? ppl * sqrt(var) : 0;
    double tps = (double)n_chunks * n_ctx / dt;
    if (json) {
        printf("{\"ppl\": %.6f, \"ppl_err\": %.6f, \"nll\": %.6f, \"n_ctx\": %d, \"n_chunks\": %d, \"n_tokens\": %d, "
               "\"scored\": %lld, \"seconds\": %.3f, \"tokens_per_s\": %.1f, \"backend\": \"%s\"}\n",
               ppl, ppl_err, mean, n_ctx, n_chunks, n, (long long)count, dt, tps,
               ns_backend_name(ns_engine_backend(eng)));
    } else {
        printf("Final estimate: PPL = %.4f +/- %.5f (%d chunks of %d tokens, %.1f tokens/s)\n", ppl, ppl_err, n_chunks,
               n_ctx, tps);
    }
    rc = 0;
done:
    ns_arena_free(&arena);
    free(logits);
    free(ids);
    free(text);
    ns_engine_free(&eng);
    return rc;
}
