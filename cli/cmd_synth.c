/*
 * cmd_synth.c - `nightshift synth --shape SHAPE --ftype FTYPE [--vocab VOCAB.gguf]
 *               [--seed N] -o OUT.gguf`: write a random-weight model of a real shape.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ns_util.h"
#include "synth.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift synth --shape SHAPE --ftype FTYPE [--vocab VOCAB.gguf] [--seed N] -o OUT.gguf\n"
               "  shapes:");
    for (uint32_t i = 0; ns_synth_shape_at(i) != NULL; i++) {
        fprintf(f, " %s", ns_synth_shape_at(i)->name);
    }
    fprintf(f, "\n  ftypes: f32 f16 q4_0 q8_0 q2_k q3_k_m q4_k_m q5_k_m q6_k\n");
}

int ns_cmd_synth(int argc, char **argv) {
    const char *shape_name = NULL, *ftype_name = NULL, *vocab_path = NULL, *out = NULL;
    ns_synth_opts opts;
    ns_gguf *vocab = NULL;
    ns_err err = {0};
    double t0;
    int rc = 0;
    memset(&opts, 0, sizeof opts);
    opts.seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nightshift synth: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--shape") == 0) {
            shape_name = argv[++i];
        } else if (strcmp(a, "--ftype") == 0) {
            ftype_name = argv[++i];
        } else if (strcmp(a, "--vocab") == 0) {
            vocab_path = argv[++i];
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            opts.seed = strtoull(argv[++i], &end, 10);
            if (*end != '\0') {
                fprintf(stderr, "nightshift synth: --seed needs an integer\n");
                return 2;
            }
        } else if (strcmp(a, "-o") == 0) {
            out = argv[++i];
        } else {
            fprintf(stderr, "nightshift synth: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (shape_name == NULL || ftype_name == NULL || out == NULL) {
        usage(stderr);
        return 2;
    }
    opts.shape = ns_synth_shape_find(shape_name);
    if (opts.shape == NULL) {
        fprintf(stderr, "nightshift synth: unknown shape '%s'\n", shape_name);
        usage(stderr);
        return 2;
    }
    if (!ns_synth_ftype_parse(ftype_name, &opts.ftype)) {
        fprintf(stderr, "nightshift synth: unknown ftype '%s'\n", ftype_name);
        usage(stderr);
        return 2;
    }
    if (vocab_path != NULL) {
        if (ns_gguf_open(vocab_path, &vocab, &err) != NS_OK) {
            fprintf(stderr, "nightshift synth: %s\n", ns_err_msg(&err));
            return 1;
        }
        opts.vocab = vocab;
    }
    t0 = ns_time_s();
    if (ns_synth_write(out, &opts, &err) != NS_OK) {
        fprintf(stderr, "nightshift synth: %s\n", ns_err_msg(&err));
        rc = 1;
    } else {
        fprintf(stderr, "wrote %s (%s, %s) in %.2f s\n", out, opts.shape->name, ns_synth_ftype_name(opts.ftype),
                ns_time_s() - t0);
    }
    ns_gguf_close(&vocab);
    return rc;
}
