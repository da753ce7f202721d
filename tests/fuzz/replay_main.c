/*
 * replay_main.c - runs a libFuzzer target without libFuzzer: every file in the
 * corpus directories given on the command line, then a fixed number of
 * deterministic random mutations of each (byte flips, truncations, inserted
 * large length fields). This keeps the fuzz targets exercised as ordinary unit
 * tests in every build (gcc, sanitizers); the real coverage-guided run is the
 * `fuzz` label, built with -DNS_FUZZ=ON and clang.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void mutate_and_run(const uint8_t *seed, size_t len, int rounds) {
    uint8_t *buf = malloc(len + 16);
    if (buf == NULL) {
        return;
    }
    for (int r = 0; r < rounds; r++) {
        size_t n = len;
        memcpy(buf, seed, len);
        switch (next_rand() % 4) {
        case 0: /* flip a few bytes */
            for (int k = 0; k < 1 + (int)(next_rand() % 4) && n > 0; k++) {
                buf[next_rand() % n] ^= (uint8_t)(1u << (next_rand() % 8));
            }
            break;
        case 1: /* truncate */
            n = len > 0 ? (size_t)(next_rand() % len) : 0;
            break;
        case 2: /* a huge little-endian length somewhere */
            if (n >= 8) {
                uint64_t big = next_rand() | (1ull << 62);
                memcpy(buf + next_rand() % (n - 7), &big, 8);
            }
            break;
        default: /* random byte values */
            for (int k = 0; k < 8 && n > 0; k++) {
                buf[next_rand() % n] = (uint8_t)next_rand();
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    free(buf);
}

int main(int argc, char **argv) {
    int files = 0;
    int rounds = argc > 2 ? atoi(argv[2]) : 2000;
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [mutations-per-seed]\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    struct dirent *e;
    if (d == NULL) {
        fprintf(stderr, "cannot open corpus %s\n", argv[1]);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        FILE *f;
        uint8_t *buf;
        long n;
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(n > 0 ? (size_t)n : 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            LLVMFuzzerTestOneInput(buf, (size_t)n);
            mutate_and_run(buf, (size_t)n, rounds);
            files++;
        }
        free(buf);
        fclose(f);
    }
    closedir(d);
    printf("replayed %d seed file(s) with %d mutations each\n", files, rounds);
    return files > 0 ? 0 : 1;
}
