/*
 * bench_enqueue.c - end-to-end enqueue throughput through a running broker:
 * client -> ZeroMQ -> broker (validate, COPY, COMMIT) -> reply.
 *
 *   bench_enqueue --broker tcp://127.0.0.1:5555 [--jobs 100000] [--chunk 1000] [--prompt-bytes 200]
 *
 * Prints jobs/s over the whole run (every job acknowledged = committed).
 * bench/bench_enqueue.sh runs it against a private PostgreSQL (fsync on).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ns_client.h"
#include "ns_mpack.h"
#include "ns_util.h"

int main(int argc, char **argv) {
    const char *ep = "tcp://127.0.0.1:5555";
    long jobs = 100000, chunk = 1000, prompt_bytes = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--broker")) {
            ep = argv[i + 1];
        } else if (!strcmp(argv[i], "--jobs")) {
            jobs = atol(argv[i + 1]);
        } else if (!strcmp(argv[i], "--chunk")) {
            chunk = atol(argv[i + 1]);
        } else if (!strcmp(argv[i], "--prompt-bytes")) {
            prompt_bytes = atol(argv[i + 1]);
        }
    }
    if (jobs < 1 || chunk < 1 || chunk > 10000 || prompt_bytes < 1 || prompt_bytes > 100000) {
        fprintf(stderr, "usage: bench_enqueue --broker EP [--jobs N] [--chunk 1..10000] [--prompt-bytes N]\n");
        return 2;
    }
    ns_client *c = NULL;
    ns_client_reply rep;
    if (ns_client_create(&c, ep, 60000) != NS_OK) {
        fprintf(stderr, "bench_enqueue: cannot create client\n");
        return 1;
    }
    msgpack_packer *pk = ns_client_begin(c, 3);
    ns_mp_pack_kv_str(pk, "model", "bench-model");
    ns_mp_pack_kv_str(pk, "name", "bench_enqueue");
    int64_t batch = 0;
    if (ns_client_call(c, NS_CMD_CREATE_BATCH, NULL, 0, &rep) != NS_OK || rep.cmd != NS_CMD_OK ||
        ns_client_get_int(&rep, "batch_id", &batch) != NS_OK) {
        fprintf(stderr, "bench_enqueue: create batch: %s\n", ns_client_errmsg(c));
        return 1;
    }
    /* Pre-encode one chunk's job frames once per chunk (ids differ). */
    char *prompt = malloc((size_t)prompt_bytes + 1);
    memset(prompt, 'x', (size_t)prompt_bytes);
    prompt[prompt_bytes] = 0;
    msgpack_sbuffer *frames = calloc((size_t)chunk, sizeof *frames);
    ns_proto_part *parts = calloc((size_t)chunk, sizeof *parts);
    double t0 = ns_time_s(), encode_s = 0;
    long sent = 0;
    while (sent < jobs) {
        long n = jobs - sent < chunk ? jobs - sent : chunk;
        double e0 = ns_time_s();
        for (long i = 0; i < n; i++) {
            msgpack_packer jp;
            char id[32];
            msgpack_sbuffer_clear(&frames[i]);
            msgpack_packer_init(&jp, &frames[i], msgpack_sbuffer_write);
            snprintf(id, sizeof id, "job-%ld", sent + i);
            msgpack_pack_map(&jp, 4);
            ns_mp_pack_kv_str(&jp, "custom_id", id);
            ns_mp_pack_kv_str(&jp, "prompt", prompt);
            ns_mp_pack_kv_int(&jp, "max_tokens", 64);
            ns_mp_pack_kv_double(&jp, "temperature", 0.0);
            parts[i].data = frames[i].data;
            parts[i].len = frames[i].size;
        }
        encode_s += ns_time_s() - e0;
        pk = ns_client_begin(c, 2);
        ns_mp_pack_kv_int(pk, "batch_id", batch);
        if (ns_client_call(c, NS_CMD_ENQUEUE, parts, (size_t)n, &rep) != NS_OK || rep.cmd != NS_CMD_OK) {
            fprintf(stderr, "bench_enqueue: enqueue: %s\n", ns_client_errmsg(c));
            return 1;
        }
        sent += n;
    }
    double dt = ns_time_s() - t0;
    printf("enqueue: %ld jobs in %.3f s = %.0f jobs/s (chunk %ld, prompt %ld bytes, client encode %.3f s)\n", jobs, dt,
           jobs / dt, chunk, prompt_bytes, encode_s);
    for (long i = 0; i < chunk; i++) {
        msgpack_sbuffer_destroy(&frames[i]);
    }
    free(frames);
    free(parts);
    free(prompt);
    ns_client_destroy(&c);
    return 0;
}
