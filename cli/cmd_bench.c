/*
 * cmd_bench.c - `nightshift bench -m MODEL [-t N] [--prompt P] [--gen G]
 * [--batches 1,16,64] [--json] [--backend ...]`
 *
 * Measures, in one run, the machine's limits and the engine against them
 * (see ../shared/BENCH.md):
 *   - memory bandwidth: a STREAM-like triad a = b + s*c over arrays far
 *     larger than the LLC, on every thread (bytes = 3 arrays x 4 B);
 *   - FMA peak: a register-resident AVX2 FMA loop on every thread;
 *   - prefill tokens/s for one P-token prompt, against the FLOP bound
 *     peak / (2 * matmul params);
 *   - decode tokens/s at each batch B (B sequences, G steps of B tokens
 *     after a short prefill), against the bandwidth bound
 *     B * bandwidth / (weight bytes read per step).
 * On a shared machine both the limits and the engine figures swing with
 * other load, so every figure is timed R times and the best is kept, and the
 * limits are measured before and after the figures and the best of those is
 * kept (as STREAM does): a ratio compares best with best.
 * One line per figure: name, value, unit, limit, ratio; or JSON.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "commands.h"
#include "engine.h"
#include "engine_cli.h"
#include "ns_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift bench -m MODEL.gguf [options]\n"
               "  -t N                 threads (default: all cores)\n"
               "  --prompt P           prefill tokens (default 512)\n"
               "  --gen G              decode steps per batch size (default 16)\n"
               "  --batches LIST       decode batch sizes (default 1,16,64)\n"
               "  --repeat R           time every figure R times, keep the best (default 3)\n"
               "  --json               print JSON\n"
               "  --backend cpu|cuda|auto  (default cpu)\n" CLI_PLACEMENT_HELP);
}

/* ---- limits ---------------------------------------------------------------- */

typedef struct limit_job {
    int kind; /* 0 triad, 1 fma */
    float *a, *b, *c;
    size_t n; /* elements per thread */
    int reps;
    double flops;
    pthread_barrier_t *bar;
} limit_job;

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static double fma_loop(long iters) {
    __m256 acc[10];
    for (int k = 0; k < 10; k++) {
        acc[k] = _mm256_set1_ps(1.0f + (float)k * 1e-3f);
    }
    const __m256 m = _mm256_set1_ps(0.999999f), ad = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++) {
        for (int k = 0; k < 10; k++) {
            acc[k] = _mm256_fmadd_ps(acc[k], m, ad);
        }
    }
    __m256 s = acc[0];
    for (int k = 1; k < 10; k++) {
        s = _mm256_add_ps(s, acc[k]);
    }
    float out[8];
    _mm256_storeu_ps(out, s);
    return (double)out[0] + out[7]; /* keep the loop alive */
}
#endif

static void *limit_thread(void *p) {
    limit_job *j = p;
    pthread_barrier_wait(j->bar);
    if (j->kind == 0) {
        for (int r = 0; r < j->reps; r++) {
            const float s = 1.0001f;
            for (size_t i = 0; i < j->n; i++) {
                j->a[i] = j->b[i] + s * j->c[i];
            }
        }
    } else {
#if defined(__x86_64__)
        j->flops = fma_loop(20000000) > 0 ? 20000000.0 * 10 * 8 * 2 : 0;
#endif
    }
    pthread_barrier_wait(j->bar);
    return NULL;
}

/* Run `kind` on n_threads threads; returns seconds between the barriers. */
static double run_limit(int kind, int n_threads, limit_job *jobs) {
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)n_threads + 1);
    pthread_t *th = calloc((size_t)n_threads, sizeof(pthread_t));
    for (int t = 0; t < n_threads; t++) {
        jobs[t].kind = kind;
        jobs[t].bar = &bar;
        pthread_create(&th[t], NULL, limit_thread, &jobs[t]);
    }
    pthread_barrier_wait(&bar);
    double t0 = ns_time_s();
    pthread_barrier_wait(&bar);
    double dt = ns_time_s() - t0;
    for (int t = 0; t < n_threads; t++) {
        pthread_join(th[t], NULL);
    }
    free(th);
    pthread_barrier_destroy(&bar);
    return dt;
}

static int measure_limits(int n_threads, double *bw, double *flops) {
    const size_t total = (size_t)64 << 20; /* floats per array: 256 MiB each */
    size_t per = total / (size_t)n_threads;
    limit_job *jobs = calloc((size_t)n_threads, sizeof(limit_job));
    float *mem = malloc(3 * total * sizeof(float));
    if (jobs == NULL || mem == NULL) {
        free(jobs);
        free(mem);
        return -1;
    }
    for (size_t i = 0; i < 3 * total; i++) {
        mem[i] = 1.0f; /* touch every page */
    }
    for (int t = 0; t < n_threads; t++) {
        jobs[t].a = mem + (size_t)t * per;
        jobs[t].b = mem + total + (size_t)t * per;
        jobs[t].c = mem + 2 * total + (size_t)t * per;
        jobs[t].n = per;
        jobs[t].reps = 2;
    }
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double dt = run_limit(0, n_threads, jobs);
        best = dt < best ? dt : best;
    }
    *bw = 3.0 * (double)per * n_threads * sizeof(float) * 2 / best;
    best = 1e30;
    double fl = 0;
    for (int r = 0; r < 2; r++) {
        double dt = run_limit(1, n_threads, jobs);
        fl = 0;
        for (int t = 0; t < n_threads; t++) {
            fl += jobs[t].flops;
        }
        best = dt < best ? dt : best;
    }
    *flops = fl / best;
    free(mem);
    free(jobs);
    return 0;
}

/* ---- engine ---------------------------------------------------------------- */

typedef struct bench_ctx {
    ns_engine *eng;
    const ns_model *m;
    ns_ubatch ub;
    ns_arena arena;
    float *logits;
    ns_err err;
} bench_ctx;

static int run_pass(bench_ctx *b) {
    if (ns_kv_cache_prepare(ns_engine_kv(b->eng), &b->ub, &b->err) != NS_OK ||
        ns_forward(b->m, ns_engine_backend(b->eng), &b->ub, b->logits, &b->err) != NS_OK) {
        fprintf(stderr, "bench: %s\n", ns_err_msg(&b->err));
        return -1;
    }
    return 0;
}

typedef struct figure {
    char name[48];
    double value, limit;
    const char *unit;
} figure;

int ns_cmd_bench(int argc, char **argv) {
    const char *model = NULL, *batches_arg = "1,16,64";
    int32_t n_prompt = 512, n_gen = 16, n_repeat = 3;
    bool json = false;
    ns_engine_params ep;
    ns_engine_params_default(&ep);
    ep.backend = NS_BACKEND_CPU;
    for (int i = 1; i < argc;) {
        const char *a = argv[i];
        int used = 2; /* option and value; flags set 1 */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-m") == 0 && v) {
            model = v;
        } else if (strcmp(a, "-t") == 0 && v) {
            ok = cli_parse_i32(v, 1, 1024, &ep.n_threads);
        } else if (strcmp(a, "--prompt") == 0 && v) {
            ok = cli_parse_i32(v, 1, 1 << 16, &n_prompt);
        } else if (strcmp(a, "--gen") == 0 && v) {
            ok = cli_parse_i32(v, 1, 1 << 16, &n_gen);
        } else if (strcmp(a, "--repeat") == 0 && v) {
            ok = cli_parse_i32(v, 1, 100, &n_repeat);
        } else if (strcmp(a, "--batches") == 0 && v) {
            batches_arg = v;
        } else if (strcmp(a, "--backend") == 0 && v) {
            ok = ns_backend_kind_parse(v, &ep.backend);
        } else if (strcmp(a, "--json") == 0) {
            json = true;
            used = 1;
        } else if (cli_placement_opt(a, v, &ep, &ok)) {
            /* --vram-budget, --resident-layers, --workload */
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "bench: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i += used;
    }
    if (cli_placement_check("bench", &ep) != 0) {
        return 2;
    }
    int32_t *batches = NULL, n_batches = 0;
    if (model == NULL || !cli_parse_ids(batches_arg, &batches, &n_batches)) {
        usage(stderr);
        return 2;
    }
    int32_t max_b = 1;
    for (int32_t i = 0; i < n_batches; i++) {
        if (batches[i] < 1 || batches[i] > 4096) {
            fprintf(stderr, "bench: batch sizes must be in 1..4096\n");
            free(batches);
            return 2;
        }
        max_b = batches[i] > max_b ? batches[i] : max_b;
    }
    int rc = 1;
    bench_ctx b = {0};
    figure figs[32];
    int n_figs = 0;
    int n_threads = ep.n_threads > 0 ? ep.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    const int32_t n_ctx_prefill = 16; /* prompt of each decode sequence */

    double bw = 0, peak = 0;
    if (measure_limits(n_threads, &bw, &peak) != 0) {
        fprintf(stderr, "bench: out of memory measuring limits\n");
        goto done;
    }

    ep.model_path = model;
    ep.max_seqs = max_b;
    ep.max_tokens = n_prompt > max_b ? (n_prompt < 512 ? n_prompt : 512) : max_b;
    if (ep.max_tokens < max_b) {
        ep.max_tokens = max_b;
    }
    ep.max_seq_len = (n_prompt > n_ctx_prefill + n_gen ? n_prompt : n_ctx_prefill + n_gen) + 1;
    if (ns_engine_create(&ep, &b.eng, &b.err) != NS_OK) {
        fprintf(stderr, "bench: %s\n", ns_err_msg(&b.err));
        goto done;
    }
    cli_print_device("bench", b.eng);
    b.m = ns_engine_model(b.eng);
    const ns_hparams *hp = ns_model_hparams(b.m);
    ns_kv_cache *kv = ns_engine_kv(b.eng);
    int32_t cap = ns_engine_backend_params(b.eng)->max_tokens;
    int32_t max_pages = ns_kv_pages_for(kv, ns_kv_cache_params(kv)->max_seq_len);
    b.logits = malloc((size_t)max_b * (size_t)hp->n_vocab * sizeof(float));
    if (b.logits == NULL || ns_arena_init(&b.arena, ns_ubatch_bytes(cap, max_pages)) != NS_OK ||
        ns_ubatch_init(&b.ub, &b.arena, cap, max_pages) != NS_OK) {
        fprintf(stderr, "bench: out of memory\n");
        goto done;
    }
    /* Bytes read per decode step: every weight except the embedding table
     * (one row per token), which counts when it is also the output. */
    const ns_tensor *emb = ns_model_tok_embd(b.m);
    double step_bytes = (double)ns_model_weight_bytes(b.m) - (hp->tied_output ? 0.0 : (double)emb->nbytes);
    double params = 0;
    for (int32_t i = 0; i < ns_model_n_tensors(b.m); i++) {
        const ns_tensor *t = ns_model_tensor(b.m, i);
        if (t->ne[1] > 1 && t != emb) {
            params += (double)t->ne[0] * (double)t->ne[1];
        }
    }
    if (hp->tied_output) {
        params += (double)emb->ne[0] * (double)emb->ne[1];
    }

    snprintf(figs[n_figs].name, sizeof(figs[n_figs].name), "memory_bandwidth");
    figs[n_figs].value = bw / 1e9, figs[n_figs].unit = "GB/s", figs[n_figs].limit = 0, n_figs++;
    snprintf(figs[n_figs].name, sizeof(figs[n_figs].name), "fma_peak");
    figs[n_figs].value = peak / 1e9, figs[n_figs].unit = "GFLOP/s", figs[n_figs].limit = 0, n_figs++;

    /* Prefill: one sequence of n_prompt tokens, logits for the last only. */
    double best = 1e30;
    for (int rep = 0; rep < n_repeat; rep++) {
        int32_t seq;
        if (ns_kv_seq_add(kv, &seq) != NS_OK) {
            fprintf(stderr, "bench: no sequence slot\n");
            goto done;
        }
        double t0 = ns_time_s();
        for (int32_t i0 = 0; i0 < n_prompt; i0 += cap) {
            ns_ubatch_clear(&b.ub);
            for (int32_t i = i0; i < n_prompt && i < i0 + cap; i++) {
                ns_ubatch_add(&b.ub, (i * 7919 + 1) % hp->n_vocab, i, seq, i == n_prompt - 1);
            }
            if (run_pass(&b) != 0) {
                goto done;
            }
        }
        double dt = ns_time_s() - t0;
        ns_kv_seq_remove(kv, seq);
        best = dt < best ? dt : best;
    }
    snprintf(figs[n_figs].name, sizeof(figs[n_figs].name), "prefill_%d", n_prompt);
    figs[n_figs].value = n_prompt / best, figs[n_figs].unit = "tok/s", figs[n_figs].limit = -1; /* FLOP bound */
    n_figs++;

    /* Decode at each batch size. */
    for (int32_t bi = 0; bi < n_batches; bi++) {
        int32_t B = batches[bi];
        best = 1e30;
        for (int rep = 0; rep < n_repeat; rep++) {
            int32_t seqs[4096];
            for (int32_t s = 0; s < B; s++) {
                if (ns_kv_seq_add(kv, &seqs[s]) != NS_OK) {
                    fprintf(stderr, "bench: no sequence slot\n");
                    goto done;
                }
            }
            /* Short prompts, prefilled together (untimed). */
            int32_t per_pass = cap / n_ctx_prefill > 0 ? cap / n_ctx_prefill : 1;
            for (int32_t s0 = 0; s0 < B; s0 += per_pass) {
                ns_ubatch_clear(&b.ub);
                for (int32_t s = s0; s < B && s < s0 + per_pass; s++) {
                    for (int32_t i = 0; i < n_ctx_prefill; i++) {
                        ns_ubatch_add(&b.ub, (s * 31 + i * 7 + 1) % hp->n_vocab, i, seqs[s], i == n_ctx_prefill - 1);
                    }
                }
                if (run_pass(&b) != 0) {
                    goto done;
                }
            }
            double t0 = ns_time_s();
            for (int32_t g = 0; g < n_gen; g++) {
                ns_ubatch_clear(&b.ub);
                for (int32_t s = 0; s < B; s++) {
                    ns_ubatch_add(&b.ub, (s * 13 + g * 17 + 5) % hp->n_vocab, n_ctx_prefill + g, seqs[s], true);
                }
                if (run_pass(&b) != 0) {
                    goto done;
                }
            }
            double dt = ns_time_s() - t0;
            for (int32_t s = 0; s < B; s++) {
                ns_kv_seq_remove(kv, seqs[s]);
            }
            best = dt < best ? dt : best;
        }
        snprintf(figs[n_figs].name, sizeof(figs[n_figs].name), "decode_b%d", B);
        figs[n_figs].value = (double)B * n_gen / best, figs[n_figs].unit = "tok/s";
        figs[n_figs].limit = -2 - B; /* bandwidth bound, filled in below */
        n_figs++;
    }

    /* Limits again after the figures; keep the best of both runs. */
    double bw2 = 0, peak2 = 0;
    if (measure_limits(n_threads, &bw2, &peak2) != 0) {
        fprintf(stderr, "bench: out of memory measuring limits\n");
        goto done;
    }
    bw = bw2 > bw ? bw2 : bw;
    peak = peak2 > peak ? peak2 : peak;
    figs[0].value = bw / 1e9;
    figs[1].value = peak / 1e9;
    for (int i = 2; i < n_figs; i++) {
        if (figs[i].limit == -1) {
            figs[i].limit = peak / (2.0 * params);
        } else if (figs[i].limit <= -3) {
            figs[i].limit = (-figs[i].limit - 2) * bw / step_bytes;
        }
    }
    double load[3] = {0, 0, 0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf != NULL) {
        if (fscanf(lf, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) {
            load[0] = load[1] = load[2] = 0;
        }
        fclose(lf);
    }

    if (json) {
        printf("{\"model\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"repeat\": %d, \"loadavg\": [%.2f, %.2f, "
               "%.2f], \"weight_bytes\": %.0f, \"matmul_params\": %.0f, \"figures\": [",
               model, ns_backend_name(ns_engine_backend(b.eng)), n_threads, n_repeat, load[0], load[1], load[2],
               step_bytes, params);
        for (int i = 0; i < n_figs; i++) {
            printf("%s{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"", i ? ", " : "", figs[i].name, figs[i].value,
                   figs[i].unit);
            if (figs[i].limit > 0) {
                printf(", \"limit\": %.3f, \"ratio\": %.4f", figs[i].limit, figs[i].value / figs[i].limit);
            }
            printf("}");
        }
        printf("]}\n");
    } else {
        printf("model %s, backend %s, %d threads, %.1f MB weights read per decode step, %.3g matmul params\n", model,
               ns_backend_name(ns_engine_backend(b.eng)), n_threads, step_bytes / 1e6, params);
        printf("best of %d runs per figure; limits best of before/after; load average at end %.2f %.2f %.2f\n",
               n_repeat, load[0], load[1], load[2]);
        for (int i = 0; i < n_figs; i++) {
            if (figs[i].limit > 0) {
                printf("%-18s %12.2f %-8s limit %12.2f  ratio %.3f\n", figs[i].name, figs[i].value, figs[i].unit,
                       figs[i].limit, figs[i].value / figs[i].limit);
            } else {
                printf("%-18s %12.2f %-8s\n", figs[i].name, figs[i].value, figs[i].unit);
            }
        }
        /* With a VRAM budget the planner predicted this run: show it beside the measurements. */
        const ns_plan *pl = ns_engine_plan(b.eng);
        if (pl != NULL) {
            printf("plan prediction: prefill %.1f tok/s, decode %.1f tok/s at %u sequences, workload %.1f output "
                   "tok/s\n",
                   pl->prefill.tokens_per_s, pl->decode.tokens_per_s, pl->max_seqs, pl->workload_out_tok_s);
        }
    }
    rc = 0;
done:
    ns_arena_free(&b.arena);
    free(b.logits);
    free(batches);
    ns_engine_free(&b.eng);
    return rc;
}
