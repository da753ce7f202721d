/*
 * fuzz_frame.c - libFuzzer target for the NSQ1 frame/msgpack validators:
 * ns_proto_parse (framing), ns_mp_check (structure), then everything the
 * broker and workers decode from checked bytes (rid, job maps, JOB messages,
 * chat/stop iterators, msgpack -> JSON).
 *
 * Input layout: byte 0 = flags (bit 0: ROUTER side, i.e. the first frame is a
 * routing id; bits 1-3: frame count - 1), then each frame as a 2-byte
 * big-endian length and its bytes; the last frame takes whatever is left.
 * Invariant checked (trap on violation): bytes that pass ns_mp_check are
 * consumed exactly by ns_mp_skip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ns_job.h"
#include "ns_mpack.h"
#include "ns_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_object(const uint8_t *p, size_t n) {
    static const ns_mp_limits lim = {16, 100000};
    if (ns_mp_check(p, n, &lim, NULL) != NS_OK) {
        return;
    }
    ns_mp_reader r;
    ns_mp_reader_init(&r, p, n);
    if (ns_mp_skip(&r) != NS_OK || r.p != r.end) {
        __builtin_trap(); /* checked bytes must be exactly one skippable object */
    }
    (void)ns_proto_body_rid(p, n);
    ns_job_spec spec;
    if (ns_job_spec_decode(p, n, NULL, &spec, NULL) == NS_OK) {
        ns_chat_iter it;
        const char *a, *b;
        size_t al, bl;
        ns_chat_iter_init(&it, &spec);
        while (ns_chat_iter_next(&it, &a, &al, &b, &bl)) {
        }
        ns_stop_iter_init(&it, &spec);
        while (ns_stop_iter_next(&it, &a, &al)) {
        }
    }
    ns_job_msg msg;
    (void)ns_job_msg_decode(p, n, NULL, &msg, NULL);
    ns_buf json;
    ns_buf_init(&json, 1u << 20);
    ns_mp_reader_init(&r, p, n);
    (void)ns_mp_to_json(&r, &json, NULL);
    ns_buf_free(&json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) {
        return 0;
    }
    bool router = data[0] & 1;
    uint32_t n_frames = 1 + ((data[0] >> 1) & 7);
    size_t pos = 1;
    ns_proto_rx *rx = NULL;
    if (ns_proto_rx_create(&rx, 4) != NS_OK) {
        return 0;
    }
    zmq_msg_t *f = rx->frames;
    uint32_t i = 0;
    for (; i < n_frames && i < rx->max_frames && pos <= size; i++) {
        size_t len = size - pos;
        if (i + 1 < n_frames) {
            if (size - pos < 2) {
                break;
            }
            len = (size_t)data[pos] << 8 | data[pos + 1];
            pos += 2;
            if (len > size - pos) {
                len = size - pos;
            }
        }
        zmq_msg_close(&f[i]);
        zmq_msg_init_size(&f[i], len);
        memcpy(zmq_msg_data(&f[i]), data + pos, len);
        pos += len;
    }
    rx->n_frames = i;
    if (ns_proto_parse(rx, router, NULL) == NS_OK) {
        check_object(rx->body, rx->body_len);
        for (uint32_t k = 0; k < rx->n_payload; k++) {
            size_t len;
            const uint8_t *p = ns_proto_payload(rx, k, &len);
            check_object(p, len);
        }
    }
    /* The whole input as one msgpack object, too. */
    check_object(data + 1, size - 1);
    ns_proto_rx_destroy(&rx);
    return 0;
}
