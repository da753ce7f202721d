/*
 * cmd_plan.c - `nightshift plan -m MODEL --vram-budget SIZE [...]`
 *
 * Prints the VRAM plan before any weight is read: bytes per arena component
 * (summing exactly to the arena the CUDA backend allocates for it: both use
 * ns_arena_layout_compute), resident and streamed layers, KV capacity, the
 * maximum number of concurrent sequences and the predicted throughput for a
 * workload. Opens the model description (ns_model_load: the GGUF header and
 * tensor table, mmapped; no weight byte is touched) so that the accounting
 * counts exactly the tensors the engine uploads. Without --device and
 * without --measure it assumes the default profile (rtx3060-12gb) and says
 * so. --measure (CUDA builds with a device) measures PCIe, HBM and GEMM
 * throughput with ns_cuda_measure on a small arena of its own.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "gguf.h"
#include "model.h"
#include "model_sizes.h"
#include "ns_util.h"
#include "planner.h"
#if defined(NS_HAVE_CUDA)
#include "ns_cuda.h"
#endif

/* Arena of the --measure handle: room for the 8192^3 fp16 GEMM (3 x 128 MiB)
 * and the copy buffers (ns_cuda_measure halves the GEMM when less is free). */
#define MEASURE_ARENA ((size_t)1 << 30)
/* Bytes copied host -> device by --measure (>= 1 GiB, as ns_cuda_measure asks). */
#define MEASURE_H2D ((size_t)1 << 30)

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift plan -m MODEL.gguf --vram-budget SIZE [options]\n"
               "\n"
               "Plan the device arena for MODEL under an exact VRAM budget and predict throughput.\n"
               "\n"
               "options:\n"
               "  -m, --model PATH         GGUF model (only the header and tensor table are read)\n"
               "  --vram-budget SIZE       arena upper bound, e.g. 11.5GiB, 12000MiB (required)\n"
               "  --ctx N                  longest sequence in tokens (default: workload prompt + output)\n"
               "  --workload NAME          summarize | label | single (default summarize)\n"
               "  --device NAME            GPU profile (default rtx3060-12gb; see --list-devices)\n"
               "  --pcie-gbps X            override effective host->device GB/s\n"
               "  --hbm-gbps X             override device memory GB/s\n"
               "  --tflops X               override fp16 GEMM TFLOP/s (fp32 accumulate, dense)\n"
               "  --measure                measure PCIe, HBM and GEMM on this machine's GPU (CUDA builds;\n"
               "                           needs about 1 GiB of free device memory and a few seconds)\n"
               "  --gpu N                  CUDA device for --measure (default 0)\n"
               "  --resident-layers N      force N resident layers (spread evenly)\n"
               "  --slots K                staging slots (2..8, default 2)\n"
               "  --step-tokens N          token budget of one forward pass (default: chosen)\n"
               "  --kv-block N             KV page size in tokens (default 16)\n"
               "  --json                   print the plan as JSON\n"
               "  --list-devices           list the GPU profiles\n");
}

static bool parse_u32(const char *s, uint32_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 || v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool parse_pos_double(const char *s, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || !(v > 0.0) || v > 1e9) {
        return false;
    }
    *out = v;
    return true;
}

static void list_devices(void) {
    printf("%-16s %10s %10s %10s %5s %8s  %s\n", "name", "PCIe GB/s", "HBM GB/s", "TFLOP/s", "SMs", "VRAM",
           "description");
    for (size_t i = 0; i < ns_gpu_profile_count(); i++) {
        const ns_gpu_profile *g = ns_gpu_profile_at(i);
        char v[32];
        printf("%-16s %10.1f %10.1f %10.1f %5u %8s  %s\n", g->name, g->p.pcie_gbps, g->p.hbm_gbps, g->p.tflops,
               g->p.n_sm, ns_format_size(g->p.vram_bytes, v, sizeof v), g->desc);
    }
}

static const char *sz(uint64_t b, char *buf, size_t n) {
    return ns_format_size(b, buf, n);
}

/* "label N of L: 1,3,5-7" (or "none") for the resident or streamed set. */
static void print_layers(const char *label, const ns_plan *pl, bool resident) {
    uint32_t count = 0;
    for (uint32_t i = 0; i < pl->n_layer; i++) {
        count += ns_plan_layer_resident(pl, i) == resident;
    }
    printf("%s %u of %u", label, count, pl->n_layer);
    const char *sep = ": ";
    for (uint32_t i = 0; i < pl->n_layer;) {
        if (ns_plan_layer_resident(pl, i) != resident) {
            i++;
            continue;
        }
        uint32_t j = i;
        while (j + 1 < pl->n_layer && ns_plan_layer_resident(pl, j + 1) == resident) {
            j++;
        }
        if (j == i) {
            printf("%s%u", sep, i);
        } else {
            printf("%s%u-%u", sep, i, j);
        }
        sep = ",";
        i = j + 1;
    }
    printf("\n");
}

static void print_text(const char *model, const ns_model_sizes *ms, const ns_plan *pl, const char *device_note) {
    char a[32], b[32];
    const ns_msize_hparams *hp = &ms->hp;
    printf("model      %s\n", model);
    printf("           %s, %u layers, %u embd, %u ffn, %u heads, %u kv heads, %u vocab, %s of weights\n", hp->arch,
           hp->n_layer, hp->n_embd, hp->n_ff, hp->n_head, hp->n_head_kv, hp->n_vocab, sz(ms->total_bytes, a, sizeof a));
    printf("device     %s%s\n", pl->dev.name, device_note);
    printf("           PCIe %.1f GB/s, HBM %.1f GB/s, GEMM %.1f TFLOP/s\n", pl->dev.pcie_gbps, pl->dev.hbm_gbps,
           pl->dev.tflops);
    printf("budget     %s (%llu bytes); CUDA context overhead is outside the budget and measured at start-up\n",
           sz(pl->budget_bytes, a, sizeof a), (unsigned long long)pl->budget_bytes);
    printf("\n%-20s %16s %12s %16s\n", "component", "bytes", "size", "offset");
    for (int c = 0; c < NS_PLAN_COMP_COUNT; c++) {
        printf("%-20s %16llu %12s %16llu\n", ns_plan_comp_name((ns_plan_comp)c), (unsigned long long)pl->comp_bytes[c],
               sz(pl->comp_bytes[c], a, sizeof a), (unsigned long long)pl->comp_offset[c]);
    }
    printf("%-20s %16llu %12s\n", "arena (sum)", (unsigned long long)pl->arena_bytes, sz(pl->arena_bytes, a, sizeof a));
    printf("%-20s %16llu %12s\n\n", "unused budget", (unsigned long long)(pl->budget_bytes - pl->arena_bytes),
           sz(pl->budget_bytes - pl->arena_bytes, b, sizeof b));

    print_layers("resident layers ", pl, true);
    print_layers("streamed layers ", pl, false);
    if (pl->n_slots > 0) {
        printf("staging          %u slots of %s; %s streamed per forward pass\n", pl->n_slots,
               sz(pl->slot_bytes, a, sizeof a), sz(pl->host_bytes_per_pass, b, sizeof b));
    } else {
        printf("staging          none (nothing streams)\n");
    }
    printf("output head      resident%s\n", ms->output_tied ? " (tied to token_embd)" : "");
    printf("token_embd       %s\n",
           pl->embd_on_host ? "host (only the rows of each step are gathered)" : "resident (it is the output head)");
    printf("KV pool          %llu pages of %u tokens (%s each) = %llu tokens; %u pages per job\n",
           (unsigned long long)pl->kv_blocks, pl->kv_block_tokens, sz(pl->kv_block_bytes, a, sizeof a),
           (unsigned long long)pl->kv_capacity_tokens, pl->blocks_per_job);
    printf("sequences        at most %u at once (token budget %u per pass, ctx %u)\n", pl->max_seqs,
           pl->max_step_tokens, pl->n_ctx);
    printf("minimum arena    %s for this model and ctx\n", sz(pl->min_arena_bytes, a, sizeof a));
    printf("\nprediction for workload '%s' (%u jobs, %u prompt -> %u output tokens)%s\n", pl->workload.name,
           pl->workload.n_jobs, pl->workload.prompt_tokens, pl->workload.output_tokens,
           pl->forced ? ", resident layers forced" : "");
    printf("  prefill   %10.1f tok/s  (%u tokens per pass, %.3f s, streaming fraction %.2f)\n",
           pl->prefill.tokens_per_s, pl->prefill.n_tokens, pl->prefill.step_s, pl->prefill.stream_frac);
    if (pl->workload.output_tokens > 0) {
        printf("  decode    %10.1f tok/s  (%u sequences per pass, %.3f s, streaming fraction %.2f)\n",
               pl->decode.tokens_per_s, pl->decode.n_seqs, pl->decode.step_s, pl->decode.stream_frac);
    }
    printf("  workload  %10.1f s      (%.1f tok/s prompt+output, %.2f output tok/s)\n", pl->workload_s,
           pl->workload_tok_s, pl->workload_out_tok_s);
}

static json_t *perf_json(const ns_plan_perf *p) {
    return json_pack("{s:I,s:I,s:f,s:f,s:f,s:f,s:f}", "tokens", (json_int_t)p->n_tokens, "sequences",
                     (json_int_t)p->n_seqs, "copy_s", p->copy_s, "compute_s", p->compute_s, "step_s", p->step_s,
                     "tokens_per_s", p->tokens_per_s, "streaming_fraction", p->stream_frac);
}

static int print_json(const char *model, const ns_model_sizes *ms, const ns_plan *pl, bool assumed) {
    json_t *comp = json_array();
    for (int c = 0; c < NS_PLAN_COMP_COUNT; c++) {
        json_array_append_new(comp, json_pack("{s:s,s:I,s:I}", "name", ns_plan_comp_name((ns_plan_comp)c), "bytes",
                                              (json_int_t)pl->comp_bytes[c], "offset", (json_int_t)pl->comp_offset[c]));
    }
    json_t *res = json_array();
    for (uint32_t i = 0; i < pl->n_layer; i++) {
        if (ns_plan_layer_resident(pl, i)) {
            json_array_append_new(res, json_integer(i));
        }
    }
    json_t *root = json_pack(
        "{s:s,s:{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:{s:s,s:b,s:f,s:f,s:f},s:I,s:I,s:I,s:o}", "model", model, "hparams",
        "arch", ms->hp.arch, "n_layer", (json_int_t)ms->hp.n_layer, "n_embd", (json_int_t)ms->hp.n_embd, "n_ff",
        (json_int_t)ms->hp.n_ff, "n_head", (json_int_t)ms->hp.n_head, "n_head_kv", (json_int_t)ms->hp.n_head_kv,
        "n_vocab", (json_int_t)ms->hp.n_vocab, "weight_bytes", (json_int_t)ms->total_bytes, "device", "name",
        pl->dev.name, "assumed", assumed, "pcie_gbps", pl->dev.pcie_gbps, "hbm_gbps", pl->dev.hbm_gbps, "tflops",
        pl->dev.tflops, "budget_bytes", (json_int_t)pl->budget_bytes, "arena_bytes", (json_int_t)pl->arena_bytes,
        "min_arena_bytes", (json_int_t)pl->min_arena_bytes, "components", comp);
    if (root == NULL) {
        fprintf(stderr, "nightshift plan: cannot build JSON\n");
        return 1;
    }
    json_object_set_new(root, "n_layer", json_integer(pl->n_layer));
    json_object_set_new(root, "resident_layers", res);
    json_object_set_new(root, "n_resident", json_integer(pl->n_resident));
    json_object_set_new(root, "resident_forced", json_boolean(pl->forced));
    json_object_set_new(root, "output_resident", json_boolean(pl->output_resident));
    json_object_set_new(root, "output_tied", json_boolean(ms->output_tied));
    json_object_set_new(root, "token_embd_on_host", json_boolean(pl->embd_on_host));
    json_object_set_new(root, "staging_slots", json_integer(pl->n_slots));
    json_object_set_new(root, "slot_bytes", json_integer((json_int_t)pl->slot_bytes));
    json_object_set_new(root, "host_bytes_per_pass", json_integer((json_int_t)pl->host_bytes_per_pass));
    json_object_set_new(root, "kv_block_tokens", json_integer(pl->kv_block_tokens));
    json_object_set_new(root, "kv_block_bytes", json_integer((json_int_t)pl->kv_block_bytes));
    json_object_set_new(root, "kv_blocks", json_integer((json_int_t)pl->kv_blocks));
    json_object_set_new(root, "kv_capacity_tokens", json_integer((json_int_t)pl->kv_capacity_tokens));
    json_object_set_new(root, "kv_bytes_per_token", json_integer((json_int_t)pl->kv_bytes_per_token));
    json_object_set_new(root, "blocks_per_job", json_integer(pl->blocks_per_job));
    json_object_set_new(root, "max_seqs", json_integer(pl->max_seqs));
    json_object_set_new(root, "max_step_tokens", json_integer(pl->max_step_tokens));
    json_object_set_new(root, "n_ctx", json_integer(pl->n_ctx));
    json_object_set_new(root, "workload",
                        json_pack("{s:s,s:I,s:I,s:I}", "name", pl->workload.name, "jobs",
                                  (json_int_t)pl->workload.n_jobs, "prompt_tokens",
                                  (json_int_t)pl->workload.prompt_tokens, "output_tokens",
                                  (json_int_t)pl->workload.output_tokens));
    json_t *bufs = json_array();
    for (int b = 0; b < NS_ACTBUF_COUNT; b++) {
        json_array_append_new(bufs, json_pack("{s:s,s:I,s:I}", "name", ns_actbuf_name((ns_actbuf)b), "bytes",
                                              (json_int_t)pl->layout.buf_bytes[b], "offset",
                                              (json_int_t)pl->layout.buf_offset[b]));
    }
    json_object_set_new(root, "buffers", bufs);
    const ns_arena_config *ac = &pl->arena_cfg;
    json_object_set_new(root, "arena_config",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I}", "max_tokens", (json_int_t)ac->max_tokens,
                                  "n_pages", (json_int_t)ac->n_pages, "page_size", (json_int_t)ac->page_size,
                                  "max_seq_len", (json_int_t)ac->max_seq_len, "n_resident", (json_int_t)ac->n_resident,
                                  "n_slots", (json_int_t)ac->n_slots, "embd_on_host", ac->embd_on_host,
                                  "cublas_ws_bytes", (json_int_t)ac->cublas_ws_bytes));
    json_object_set_new(root, "prefill", perf_json(&pl->prefill));
    json_object_set_new(root, "decode", perf_json(&pl->decode));
    json_object_set_new(root, "workload_s", json_real(pl->workload_s));
    json_object_set_new(root, "workload_tokens_per_s", json_real(pl->workload_tok_s));
    json_object_set_new(root, "workload_output_tokens_per_s", json_real(pl->workload_out_tok_s));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (s == NULL) {
        fprintf(stderr, "nightshift plan: cannot format JSON\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

/* --measure: PCIe H2D, HBM and fp16 GEMM throughput of CUDA device `gpu`,
 * through a handle of its own with a MEASURE_ARENA arena (released before
 * the plan is printed). Returns 0, or 1 after printing why. */
static int measure_device(int gpu, ns_device_params *dev) {
#if defined(NS_HAVE_CUDA)
    if (ns_cuda_device_count() <= 0) {
        fprintf(stderr, "nightshift plan: --measure needs a CUDA device and none was found; use --device NAME\n");
        return 1;
    }
    ns_err err;
    ns_err_clear(&err);
    ns_cuda *cu = NULL;
    if (ns_cuda_create(&cu, gpu, MEASURE_ARENA, &err) != NS_OK) {
        fprintf(stderr, "nightshift plan: --measure: %s\n", ns_err_msg(&err));
        return 1;
    }
    ns_cuda_measurements mm;
    memset(&mm, 0, sizeof mm);
    ns_status st = ns_cuda_measure(cu, MEASURE_H2D, &mm);
    if (st != NS_OK) {
        fprintf(stderr, "nightshift plan: --measure: %s\n", ns_cuda_errmsg(cu));
        ns_cuda_destroy(&cu);
        return 1;
    }
    const ns_cuda_info *info = ns_cuda_get_info(cu);
    if (!(mm.h2d_bytes_per_s > 0.0) || !(mm.d2d_bytes_per_s > 0.0) || !(mm.gemm_flops > 0.0)) {
        fprintf(stderr, "nightshift plan: --measure: the device returned no usable figures\n");
        ns_cuda_destroy(&cu);
        return 1;
    }
    snprintf(dev->name, sizeof dev->name, "measured");
    dev->pcie_gbps = mm.h2d_bytes_per_s / 1e9;
    dev->hbm_gbps = mm.d2d_bytes_per_s / 1e9;
    dev->tflops = mm.gemm_flops / 1e12;
    dev->n_sm = info->sm_count > 0 ? (uint32_t)info->sm_count : 0;
    dev->vram_bytes = info->total_bytes;
    fprintf(stderr,
            "nightshift plan: measured %s in %.1f s: PCIe H2D %.1f GB/s, HBM %.1f GB/s (copy, read+write), "
            "fp16 GEMM %.1f TFLOP/s (n=%d); CUDA context overhead %.1f MiB\n",
            info->name, mm.seconds, dev->pcie_gbps, dev->hbm_gbps, dev->tflops, mm.gemm_n,
            (double)info->context_overhead / (1024.0 * 1024.0));
    ns_cuda_destroy(&cu);
    return 0;
#else
    (void)gpu;
    (void)dev;
    fprintf(stderr, "nightshift plan: --measure needs a CUDA device (this build has no CUDA); use --device NAME\n");
    return 1;
#endif
}

int ns_cmd_plan(int argc, char **argv) {
    const char *model = NULL, *device = NULL, *budget_s = NULL, *workload = "summarize";
    double pcie = 0, hbm = 0, tflops = 0;
    bool json = false, measure = false;
    int gpu = 0;
    ns_plan_params pp;
    ns_plan_params_default(&pp);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                                                   \
    do {                                                                                                               \
        if (v == NULL) {                                                                                               \
            fprintf(stderr, "nightshift plan: %s needs a value\n", a);                                                 \
            return 2;                                                                                                  \
        }                                                                                                              \
        i++;                                                                                                           \
    } while (0)
#define BAD_VALUE()                                                                                                    \
    do {                                                                                                               \
        fprintf(stderr, "nightshift plan: bad value '%s' for %s\n", v, a);                                             \
        return 2;                                                                                                      \
    } while (0)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--list-devices") == 0) {
            list_devices();
            return 0;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
            NEED_VALUE();
            model = v;
        } else if (strcmp(a, "--vram-budget") == 0) {
            NEED_VALUE();
            budget_s = v;
        } else if (strcmp(a, "--ctx") == 0) {
            NEED_VALUE();
            if (!parse_u32(v, &pp.n_ctx) || pp.n_ctx == 0) {
                BAD_VALUE();
            }
        } else if (strcmp(a, "--workload") == 0) {
            NEED_VALUE();
            workload = v;
        } else if (strcmp(a, "--device") == 0) {
            NEED_VALUE();
            device = v;
        } else if (strcmp(a, "--pcie-gbps") == 0) {
            NEED_VALUE();
            if (!parse_pos_double(v, &pcie)) {
                BAD_VALUE();
            }
        } else if (strcmp(a, "--hbm-gbps") == 0) {
            NEED_VALUE();
            if (!parse_pos_double(v, &hbm)) {
                BAD_VALUE();
            }
        } else if (strcmp(a, "--tflops") == 0) {
            NEED_VALUE();
            if (!parse_pos_double(v, &tflops)) {
                BAD_VALUE();
            }
        } else if (strcmp(a, "--resident-layers") == 0) {
            uint32_t r;
            NEED_VALUE();
            if (!parse_u32(v, &r) || r > INT32_MAX) {
                BAD_VALUE();
            }
            pp.resident_layers = (int32_t)r;
        } else if (strcmp(a, "--gpu") == 0) {
            uint32_t d;
            NEED_VALUE();
            if (!parse_u32(v, &d) || d > 255) {
                BAD_VALUE();
            }
            gpu = (int)d;
        } else if (strcmp(a, "--slots") == 0) {
            NEED_VALUE();
            if (!parse_u32(v, &pp.n_slots) || pp.n_slots < 2) {
                BAD_VALUE();
            }
        } else if (strcmp(a, "--step-tokens") == 0) {
            NEED_VALUE();
            if (!parse_u32(v, &pp.max_step_tokens) || pp.max_step_tokens == 0) {
                BAD_VALUE();
            }
        } else if (strcmp(a, "--kv-block") == 0) {
            NEED_VALUE();
            if (!parse_u32(v, &pp.kv_block_tokens) || pp.kv_block_tokens == 0) {
                BAD_VALUE();
            }
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--measure") == 0) {
            measure = true;
        } else if (model == NULL && a[0] != '-') {
            model = a;
        } else {
            fprintf(stderr, "nightshift plan: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
#undef NEED_VALUE
#undef BAD_VALUE
    }
    if (model == NULL || budget_s == NULL) {
        fprintf(stderr, "nightshift plan: -m MODEL and --vram-budget SIZE are required\n");
        usage(stderr);
        return 2;
    }
    if (ns_parse_size(budget_s, &pp.vram_budget) != NS_OK || pp.vram_budget == 0) {
        fprintf(stderr, "nightshift plan: bad --vram-budget '%s' (try 11.5GiB or 12000MiB)\n", budget_s);
        return 2;
    }
    if (ns_workload_get(workload, &pp.workload) != NS_OK) {
        fprintf(stderr, "nightshift plan: unknown workload '%s' (summarize, label, single)\n", workload);
        return 2;
    }
    const ns_gpu_profile *prof = ns_gpu_profile_default();
    bool assumed = (device == NULL && !measure);
    if (device != NULL) {
        prof = ns_gpu_profile_find(device);
        if (prof == NULL) {
            fprintf(stderr, "nightshift plan: unknown device '%s'; known profiles:\n", device);
            for (size_t i = 0; i < ns_gpu_profile_count(); i++) {
                fprintf(stderr, "  %s\n", ns_gpu_profile_at(i)->name);
            }
            return 2;
        }
    }
    pp.dev = prof->p;
    if (measure && measure_device(gpu, &pp.dev) != 0) {
        return 1;
    }
    bool custom = false;
    if (pcie > 0) {
        pp.dev.pcie_gbps = pcie;
        custom = true;
    }
    if (hbm > 0) {
        pp.dev.hbm_gbps = hbm;
        custom = true;
    }
    if (tflops > 0) {
        pp.dev.tflops = tflops;
        custom = true;
    }
    char note[160];
    snprintf(note, sizeof note, "%s%s", assumed ? " (assumed: no --device given and no GPU measured)" : "",
             custom ? " with overrides from the command line" : "");
    if (measure) {
        snprintf(note, sizeof note, " (measured on this machine%s)",
                 custom ? ", with overrides from the command line" : "");
    }

    ns_err err;
    ns_err_clear(&err);
    ns_model *m = NULL;
    ns_model_sizes ms;
    memset(&ms, 0, sizeof ms);
    if (ns_model_load(model, &m, &err) != NS_OK) {
        fprintf(stderr, "nightshift plan: %s\n", ns_err_msg(&err));
        return 1;
    }
    ns_status st = ns_model_sizes_from_model(m, &ms, &err);
    ns_model_free(&m);
    if (st != NS_OK) {
        fprintf(stderr, "nightshift plan: %s\n", ns_err_msg(&err));
        return 1;
    }
    ns_plan plan;
    st = ns_plan_compute(&ms, &pp, &plan, &err);
    if (st != NS_OK) {
        fprintf(stderr, "nightshift plan: %s\n", ns_err_msg(&err));
        ns_model_sizes_free(&ms);
        return st == NS_ERR_INVALID_ARG ? 2 : 1;
    }
    int rc = 0;
    if (json) {
        rc = print_json(model, &ms, &plan, assumed);
    } else {
        print_text(model, &ms, &plan, note);
    }
    ns_model_sizes_free(&ms);
    return rc;
}
