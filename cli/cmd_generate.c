/*
 * cmd_generate.c - `nightshift generate -m MODEL (-p TEXT | -f PROMPTS.txt)
 * [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--chat]
 * [--json] [-t N] [--backend cpu|cuda|auto] ...`
 *
 * Generates a continuation for one prompt (-p) or for every line of a file
 * (-f, one prompt per line, all run as one continuously batched set through
 * the engine scheduler). With --chat the prompt is wrapped as a user turn in
 * the model's chat template. Without --json a single prompt's text streams to
 * stdout; several prompts print in input order, separated by blank lines.
 * With --json each prompt prints one JSON line: index, prompt, prompt token
 * ids, generated ids, text, finish reason and timings. Prompt i uses seed
 * S + i. A summary goes to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "commands.h"
#include "engine.h"
#include "engine_cli.h"
#include "ns_util.h"

#define MAX_STOP 16

static void usage(FILE *f) {
    fprintf(f,
            "usage: nightshift generate -m MODEL.gguf (-p TEXT | -f PROMPTS.txt) [options]\n"
            "  -n N                     tokens to generate per prompt (default 128)\n"
            "  --temp T                 temperature (default 0.8; 0 = greedy)\n"
            "  --top-k K                (default 40; 0 = off)\n"
            "  --top-p P                (default 0.95; 1 = off)\n"
            "  --min-p P                (default 0.05; 0 = off)\n"
            "  --repeat-penalty R       (default 1 = off)\n"
            "  --seed S                 RNG seed; prompt i uses S + i (default 0)\n"
            "  --stop STR               stop string (repeatable, up to %d)\n"
            "  --ignore-eos             keep generating past end-of-generation tokens\n"
            "  --chat                   wrap each prompt as a user turn in the model's chat template\n"
            "  --chat-template NAME     force a template family (chatml, llama3, llama2, ...)\n"
            "  --json                   one JSON line per prompt\n"
            "  --parallel N             sequences decoded together (default: min(prompts, 64))\n"
            "  --batch N                tokens per forward pass (default 512)\n"
            "  -t N                     CPU threads (default: all cores)\n"
            "  --backend cpu|cuda|auto  (default auto)\n" CLI_PLACEMENT_HELP,
            MAX_STOP);
}

typedef struct gen_seq {
    int32_t index;
    const char *prompt;
    int32_t *prompt_ids;
    int32_t n_prompt;
    int32_t *ids; /* generated */
    int32_t n_ids, cap_ids;
    char *text;
    size_t n_text, cap_text;
    ns_sched_finish finish;
    ns_status status;
    ns_sched_result res;
    bool done;
    bool stream; /* write text to stdout as it comes */
} gen_seq;

static bool grow(void **p, size_t elem, size_t need, size_t *cap) {
    if (need <= *cap) {
        return true;
    }
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (q == NULL) {
        return false;
    }
    *p = q;
    *cap = nc;
    return true;
}

static bool on_token(void *user, uint64_t id, int32_t token, const char *text, size_t len) {
    (void)id;
    gen_seq *g = user;
    size_t cap = (size_t)g->cap_ids;
    if (!grow((void **)&g->ids, sizeof(int32_t), (size_t)g->n_ids + 1, &cap)) {
        return true;
    }
    g->cap_ids = (int32_t)cap;
    g->ids[g->n_ids++] = token;
    if (len > 0) {
        if (!grow((void **)&g->text, 1, g->n_text + len + 1, &g->cap_text)) {
            return true;
        }
        memcpy(g->text + g->n_text, text, len);
        g->n_text += len;
        g->text[g->n_text] = 0;
        if (g->stream) {
            fwrite(text, 1, len, stdout);
            fflush(stdout);
        }
    }
    return false;
}

static void on_finish(void *user, uint64_t id, ns_sched_finish reason, ns_status st, const ns_sched_result *r) {
    (void)id;
    gen_seq *g = user;
    g->finish = reason;
    g->status = st;
    g->res = *r;
    g->done = true;
}

static void json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (c < 0x20) {
                fprintf(f, "\\u%04x", c);
            } else {
                fputc(c, f);
            }
        }
    }
    fputc('"', f);
}

static void json_ids(FILE *f, const int32_t *ids, int32_t n) {
    fputc('[', f);
    for (int32_t i = 0; i < n; i++) {
        fprintf(f, "%s%d", i ? "," : "", ids[i]);
    }
    fputc(']', f);
}

static void print_json(const gen_seq *g, const char *backend) {
    const ns_sched_result *r = &g->res;
    double prefill = r->t_first_token > 0 ? r->t_first_token - r->t_admit : 0;
    double decode = r->t_first_token > 0 ? r->t_done - r->t_first_token : 0;
    printf("{\"index\":%d,\"prompt\":", g->index);
    json_str(stdout, g->prompt, strlen(g->prompt));
    printf(",\"prompt_tokens\":");
    json_ids(stdout, g->prompt_ids, g->n_prompt);
    printf(",\"tokens\":");
    json_ids(stdout, g->ids, g->n_ids);
    printf(",\"text\":");
    json_str(stdout, g->text ? g->text : "", g->n_text);
    printf(",\"finish_reason\":\"%s\",\"backend\":\"%s\",\"timings\":{\"queue_s\":%.4f,\"prefill_s\":%.4f,"
           "\"decode_s\":%.4f,\"total_s\":%.4f,\"decode_tokens_per_s\":%.2f}}\n",
           ns_sched_finish_str(g->finish), backend, r->t_admit - r->t_submit, prefill, decode, r->t_done - r->t_submit,
           decode > 0 && g->n_ids > 1 ? (g->n_ids - 1) / decode : 0.0);
}

int ns_cmd_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL, *chat_name = NULL;
    int32_t n_gen = 128, parallel = 0, batch = 512;
    bool chat = false, json = false;
    uint64_t seed = 0;
    const char *stops[MAX_STOP];
    size_t n_stop = 0;
    ns_sampler_params sp;
    ns_sampler_params_default(&sp);
    ns_engine_params ep;
    ns_engine_params_default(&ep);
    bool batch_given = false;
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
        } else if (strcmp(a, "-p") == 0 && v) {
            prompt = v;
        } else if (strcmp(a, "-f") == 0 && v) {
            file = v;
        } else if (strcmp(a, "-n") == 0 && v) {
            ok = cli_parse_i32(v, 1, 1 << 24, &n_gen);
        } else if (strcmp(a, "--temp") == 0 && v) {
            ok = cli_parse_f32(v, &sp.temperature);
        } else if (strcmp(a, "--top-k") == 0 && v) {
            ok = cli_parse_i32(v, 0, 1 << 30, &sp.top_k);
        } else if (strcmp(a, "--top-p") == 0 && v) {
            ok = cli_parse_f32(v, &sp.top_p);
        } else if (strcmp(a, "--min-p") == 0 && v) {
            ok = cli_parse_f32(v, &sp.min_p);
        } else if (strcmp(a, "--repeat-penalty") == 0 && v) {
            ok = cli_parse_f32(v, &sp.repeat_penalty);
        } else if (strcmp(a, "--seed") == 0 && v) {
            ok = cli_parse_u64(v, &seed);
        } else if (strcmp(a, "--stop") == 0 && v) {
            ok = n_stop < MAX_STOP && *v != 0;
            if (ok) {
                stops[n_stop++] = v;
            }
        } else if (strcmp(a, "--chat-template") == 0 && v) {
            chat_name = v;
            chat = true;
        } else if (strcmp(a, "--parallel") == 0 && v) {
            ok = cli_parse_i32(v, 1, 4096, &parallel);
        } else if (strcmp(a, "--batch") == 0 && v) {
            ok = cli_parse_i32(v, 1, 65536, &batch);
            batch_given = true;
        } else if (strcmp(a, "-t") == 0 && v) {
            ok = cli_parse_i32(v, 1, 1024, &ep.n_threads);
        } else if (strcmp(a, "--backend") == 0 && v) {
            ok = ns_backend_kind_parse(v, &ep.backend);
        } else if (cli_placement_opt(a, v, &ep, &ok)) {
            /* --vram-budget, --resident-layers, --workload */
        } else if (strcmp(a, "--ignore-eos") == 0) {
            sp.ignore_eos = true;
            used = 1;
        } else if (strcmp(a, "--chat") == 0) {
            chat = true;
            used = 1;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
            used = 1;
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "generate: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i += used;
    }
    if (model == NULL || (prompt == NULL) == (file == NULL)) {
        usage(stderr);
        return 2;
    }
    if (cli_placement_check("generate", &ep) != 0) {
        return 2;
    }

    int rc = 1;
    ns_err err = {0};
    ns_engine *eng = NULL;
    char *filebuf = NULL, *templated = NULL;
    gen_seq *seqs = NULL;
    int32_t n_prompts = 0;

    /* Collect the prompts (one per non-empty line for -f). */
    const char **texts = NULL;
    if (file != NULL) {
        size_t len;
        filebuf = cli_read_file(file, &len);
        if (filebuf == NULL) {
            fprintf(stderr, "generate: cannot read %s\n", file);
            goto done;
        }
        size_t cap = 1;
        for (size_t k = 0; k < len; k++) {
            cap += filebuf[k] == '\n';
        }
        texts = calloc(cap, sizeof(*texts));
        if (texts == NULL) {
            goto done;
        }
        for (char *line = strtok(filebuf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            size_t l = strlen(line);
            if (l > 0 && line[l - 1] == '\r') {
                line[l - 1] = 0;
            }
            if (*line != 0) {
                texts[n_prompts++] = line;
            }
        }
    } else {
        texts = calloc(1, sizeof(*texts));
        if (texts == NULL) {
            goto done;
        }
        texts[n_prompts++] = prompt;
    }
    if (n_prompts == 0) {
        fprintf(stderr, "generate: no prompts\n");
        goto done;
    }
    seqs = calloc((size_t)n_prompts, sizeof(*seqs));
    if (seqs == NULL) {
        goto done;
    }

    /* Open with a provisional context to get the tokenizer, tokenize, then
     * size the engine for the longest prompt. */
    ep.model_path = model;
    ns_engine_params tp = ep; /* tokenizer only: no device, no plan */
    tp.backend = NS_BACKEND_CPU;
    tp.vram_budget = 0;
    tp.resident_layers = -1;
    tp.max_seqs = 1;
    tp.max_tokens = 1;
    tp.max_seq_len = 1;
    if (ns_engine_create(&tp, &eng, &err) != NS_OK) {
        fprintf(stderr, "generate: %s\n", ns_err_msg(&err));
        goto done;
    }
    const ns_tokenizer *tok = ns_engine_tokenizer(eng);
    ns_chat_family fam = NS_CHAT_UNKNOWN;
    if (chat && ns_chat_select(ns_model_gguf(ns_engine_model(eng)), chat_name, &fam, NULL, &err) != NS_OK) {
        fprintf(stderr, "generate: %s\n", ns_err_msg(&err));
        rc = 2;
        goto done;
    }
    int32_t max_prompt = 0;
    for (int32_t i = 0; i < n_prompts; i++) {
        const char *t = texts[i];
        size_t tl = strlen(t);
        if (chat) {
            ns_chat_msg msg = {"user", t};
            size_t need = 0;
            ns_chat_apply(fam, &msg, 1, true, NULL, 0, &need);
            free(templated);
            templated = malloc(need + 1);
            if (templated == NULL || ns_chat_apply(fam, &msg, 1, true, templated, need + 1, &need) != NS_OK) {
                fprintf(stderr, "generate: chat template failed\n");
                goto done;
            }
            t = templated;
            tl = need;
        }
        if (cli_tokenize(tok, t, tl, true, chat, &seqs[i].prompt_ids, &seqs[i].n_prompt, &err) != NS_OK) {
            fprintf(stderr, "generate: %s\n", ns_err_msg(&err));
            goto done;
        }
        if (seqs[i].n_prompt == 0) {
            fprintf(stderr, "generate: prompt %d is empty after tokenizing\n", i);
            goto done;
        }
        seqs[i].index = i;
        seqs[i].prompt = texts[i];
        seqs[i].stream = !json && n_prompts == 1;
        max_prompt = seqs[i].n_prompt > max_prompt ? seqs[i].n_prompt : max_prompt;
    }
    ns_engine_free(&eng);
    ep.max_seqs = parallel > 0 ? parallel : (n_prompts < 64 ? n_prompts : 64);
    ep.max_tokens = batch > ep.max_seqs ? batch : ep.max_seqs;
    ep.max_seq_len = max_prompt + n_gen;
    if (ep.vram_budget > 0) {
        /* The planner picks the pass size unless --batch was given, and plans for this run's shape. */
        ep.max_tokens = batch_given ? ep.max_tokens : 0;
        if (ep.workload == NULL) {
            ep.workload = n_prompts == 1 ? "single" : "summarize";
        }
    }
    if (ns_engine_create(&ep, &eng, &err) != NS_OK) {
        fprintf(stderr, "generate: %s\n", ns_err_msg(&err));
        goto done;
    }
    cli_print_device("generate", eng);
    ns_sched *sched = ns_engine_sched(eng);
    const char *backend = ns_backend_name(ns_engine_backend(eng));

    double t0 = ns_time_s();
    int32_t next = 0;
    int64_t pass_tokens = 0;
    int32_t printed = 0;
    while (next < n_prompts || !ns_sched_idle(sched)) {
        while (next < n_prompts) {
            ns_sched_request rq = {.prompt = seqs[next].prompt_ids,
                                   .n_prompt = seqs[next].n_prompt,
                                   .sampling = sp,
                                   .user = &seqs[next],
                                   .on_token = on_token,
                                   .on_finish = on_finish};
            rq.sampling.max_tokens = n_gen;
            rq.sampling.seed = seed + (uint64_t)next;
            rq.sampling.stop = stops;
            rq.sampling.n_stop = n_stop;
            uint64_t id;
            ns_status st = ns_sched_submit(sched, &rq, &id, &err);
            if (st == NS_ERR_CAPACITY && ns_sched_n_queued(sched) > 0) {
                break; /* queue full: step first */
            }
            if (st != NS_OK) {
                fprintf(stderr, "generate: prompt %d: %s\n", next, ns_err_msg(&err));
                rc = st == NS_ERR_INVALID_ARG ? 2 : 1;
                goto done;
            }
            next++;
        }
        int32_t nt;
        if (ns_sched_step(sched, &nt, &err) != NS_OK) {
            fprintf(stderr, "generate: %s\n", ns_err_msg(&err));
            goto done;
        }
        pass_tokens += nt;
        /* Print finished results in input order. */
        while (printed < n_prompts && seqs[printed].done) {
            gen_seq *g = &seqs[printed];
            if (json) {
                print_json(g, backend);
            } else if (!g->stream) {
                printf("%s%s\n", printed ? "\n" : "", g->text ? g->text : "");
            }
            fflush(stdout);
            printed++;
        }
    }
    double dt = ns_time_s() - t0;
    int64_t gen_total = 0, prompt_total = 0;
    for (int32_t i = 0; i < n_prompts; i++) {
        gen_total += seqs[i].n_ids;
        prompt_total += seqs[i].n_prompt;
        if (seqs[i].finish == NS_SCHED_FINISH_ERROR) {
            fprintf(stderr, "generate: prompt %d failed: %s\n", i, ns_status_str(seqs[i].status));
        }
    }
    if (!json && n_prompts == 1) {
        printf("\n");
    }
    fprintf(stderr,
            "generate: %d prompts, %lld prompt + %lld generated tokens in %.2f s (%.1f generated tokens/s, %lld "
            "tokens through the model), backend %s\n",
            n_prompts, (long long)prompt_total, (long long)gen_total, dt, dt > 0 ? (double)gen_total / dt : 0.0,
            (long long)pass_tokens, backend);
    rc = 0;
done:
    if (seqs != NULL) {
        for (int32_t i = 0; i < n_prompts; i++) {
            free(seqs[i].prompt_ids);
            free(seqs[i].ids);
            free(seqs[i].text);
        }
    }
    free(seqs);
    free(texts);
    free(templated);
    free(filebuf);
    ns_engine_free(&eng);
    return rc;
}
