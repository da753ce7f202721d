/*
 * cmd_logits.c - `nightshift logits -m MODEL (-p TEXT | --token-ids 1,2,3)
 * -o OUT.f32 [-t N] [--backend cpu|cuda|auto]`
 *
 * Runs the prompt through the model and writes the logits of every prompt
 * position as little-endian float32 [n_tokens][n_vocab]. Text is tokenized
 * as the model's metadata says (BOS added when add_bos is set). Long prompts
 * run in passes of up to 512 tokens over one sequence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "engine.h"
#include "engine_cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift logits -m MODEL.gguf (-p TEXT | --token-ids 1,2,3) -o OUT.f32 [options]\n"
               "  writes float32 logits [n_tokens][n_vocab] for every prompt position\n"
               "  -t N                   CPU threads (default: all cores)\n"
               "  --backend cpu|cuda|auto  (default auto)\n" CLI_PLACEMENT_HELP
               "  --print-ids            print the prompt token ids on stdout\n");
}

int ns_cmd_logits(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *ids_arg = NULL, *out_path = NULL;
    ns_engine_params ep;
    ns_engine_params_default(&ep);
    bool placement_ok = true;
    bool print_ids = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-m") == 0 && v) {
            model = v, i++;
        } else if (strcmp(a, "-p") == 0 && v) {
            prompt = v, i++;
        } else if (strcmp(a, "--token-ids") == 0 && v) {
            ids_arg = v, i++;
        } else if (strcmp(a, "-o") == 0 && v) {
            out_path = v, i++;
        } else if (strcmp(a, "-t") == 0 && v && cli_parse_i32(v, 1, 1024, &ep.n_threads)) {
            i++;
        } else if (cli_placement_opt(a, v, &ep, &placement_ok) && placement_ok) {
            i++;
        } else if (strcmp(a, "--backend") == 0 && v && ns_backend_kind_parse(v, &ep.backend)) {
            i++;
        } else if (strcmp(a, "--print-ids") == 0) {
            print_ids = true;
        } else {
            fprintf(stderr, "logits: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (model == NULL || out_path == NULL || (prompt == NULL) == (ids_arg == NULL)) {
        usage(stderr);
        return 2;
    }
    if (cli_placement_check("logits", &ep) != 0) {
        return 2;
    }
    if (ep.workload == NULL) {
        ep.workload = "single"; /* one sequence at a time */
    }
    int32_t *ids = NULL, n = 0;
    if (ids_arg != NULL && !cli_parse_ids(ids_arg, &ids, &n)) {
        fprintf(stderr, "logits: bad --token-ids '%s'\n", ids_arg);
        return 2;
    }
    int rc = 1;
    ns_err err = {0};
    ns_engine *eng = NULL;
    float *logits = NULL;
    FILE *fo = NULL;
    ns_arena arena = {0};
    ep.model_path = model;
    ep.max_seqs = 1;
    ep.max_tokens = 512;
    /* Default context first (the tokenizer comes with the engine); reopen
     * with a longer one only when the prompt needs it. */
    ep.max_seq_len = 0;
    if (ns_engine_create(&ep, &eng, &err) != NS_OK) {
        fprintf(stderr, "logits: %s\n", ns_err_msg(&err));
        goto done;
    }
    cli_print_device("logits", eng);
    if (prompt != NULL &&
        cli_tokenize(ns_engine_tokenizer(eng), prompt, strlen(prompt), true, true, &ids, &n, &err) != NS_OK) {
        fprintf(stderr, "logits: %s\n", ns_err_msg(&err));
        goto done;
    }
    if (n == 0) {
        fprintf(stderr, "logits: empty prompt\n");
        goto done;
    }
    if (n > ns_kv_cache_params(ns_engine_kv(eng))->max_seq_len) {
        ns_engine_free(&eng);
        ep.max_seq_len = n;
        if (ns_engine_create(&ep, &eng, &err) != NS_OK) {
            fprintf(stderr, "logits: %s\n", ns_err_msg(&err));
            goto done;
        }
        cli_print_device("logits", eng);
    }
    const ns_model *m = ns_engine_model(eng);
    int32_t n_vocab = ns_model_hparams(m)->n_vocab;
    int32_t step = ns_engine_backend_params(eng)->max_tokens;
    ns_kv_cache *kv = ns_engine_kv(eng);
    int32_t max_pages = ns_kv_pages_for(kv, ns_kv_cache_params(kv)->max_seq_len);
    ns_ubatch ub;
    logits = malloc((size_t)step * (size_t)n_vocab * sizeof(float));
    if (logits == NULL || ns_arena_init(&arena, ns_ubatch_bytes(step, max_pages)) != NS_OK ||
        ns_ubatch_init(&ub, &arena, step, max_pages) != NS_OK) {
        fprintf(stderr, "logits: out of memory\n");
        goto done;
    }
    fo = fopen(out_path, "wb");
    if (fo == NULL) {
        fprintf(stderr, "logits: cannot open %s for writing\n", out_path);
        goto done;
    }
    int32_t seq;
    if (ns_kv_seq_add(kv, &seq) != NS_OK) {
        goto done;
    }
    for (int32_t i0 = 0; i0 < n; i0 += step) {
        ns_ubatch_clear(&ub);
        for (int32_t i = i0; i < n && i < i0 + step; i++) {
            ns_ubatch_add(&ub, ids[i], i, seq, true);
        }
        if (ns_kv_cache_prepare(kv, &ub, &err) != NS_OK ||
            ns_forward(m, ns_engine_backend(eng), &ub, logits, &err) != NS_OK) {
            fprintf(stderr, "logits: %s\n", ns_err_msg(&err));
            goto done;
        }
        if (fwrite(logits, sizeof(float) * (size_t)n_vocab, (size_t)ub.n_tokens, fo) != (size_t)ub.n_tokens) {
            fprintf(stderr, "logits: write failed\n");
            goto done;
        }
    }
    if (fclose(fo) != 0) {
        fo = NULL;
        fprintf(stderr, "logits: write failed\n");
        goto done;
    }
    fo = NULL;
    if (print_ids) {
        for (int32_t i = 0; i < n; i++) {
            printf("%s%d", i ? " " : "", ids[i]);
        }
        printf("\n");
    }
    fprintf(stderr, "logits: %d tokens x %d vocab -> %s (backend %s)\n", n, n_vocab, out_path,
            ns_backend_name(ns_engine_backend(eng)));
    rc = 0;
done:
    if (fo != NULL) {
        fclose(fo);
    }
    ns_arena_free(&arena);
    free(logits);
    free(ids);
    ns_engine_free(&eng);
    return rc;
}
