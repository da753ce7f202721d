/*
 * proto.c - NSQ1 framing: receive with a frame cap, parse, send (see ns_proto.h).
 */
#include "ns_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ns_mpack.h"
#include "ns_util.h"

const ns_proto_limits ns_proto_default_limits = {
    .max_frame_bytes = 16u << 20,
    .max_jobs_per_msg = 10000,
    .max_prompt_bytes = 1u << 20,
    .max_custom_id_bytes = 256,
    .max_messages = 1024,
    .max_stop = 16,
    .max_stop_bytes = 256,
    .max_name_bytes = 256,
    .max_metadata_bytes = 64u << 10,
    .max_max_tokens = 1000000,
};

const char *ns_cmd_name(int cmd) {
    switch (cmd) {
    case NS_CMD_CREATE_BATCH:
        return "create_batch";
    case NS_CMD_ENQUEUE:
        return "enqueue";
    case NS_CMD_SEAL:
        return "seal";
    case NS_CMD_STATUS:
        return "status";
    case NS_CMD_WATCH:
        return "watch";
    case NS_CMD_RESULTS:
        return "results";
    case NS_CMD_CANCEL:
        return "cancel";
    case NS_CMD_RETRY:
        return "retry";
    case NS_CMD_WORKERS:
        return "workers";
    case NS_CMD_PING:
        return "ping";
    case NS_CMD_READY:
        return "ready";
    case NS_CMD_CREDIT:
        return "credit";
    case NS_CMD_JOB:
        return "job";
    case NS_CMD_DONE:
        return "done";
    case NS_CMD_HEARTBEAT:
        return "heartbeat";
    case NS_CMD_CANCEL_JOB:
        return "cancel_job";
    case NS_CMD_DISCONNECT:
        return "disconnect";
    case NS_CMD_OK:
        return "ok";
    case NS_CMD_ERROR:
        return "error";
    case NS_CMD_EVENT:
        return "event";
    default:
        return NULL;
    }
}

ns_status ns_proto_rx_create(ns_proto_rx **out, uint32_t max_payload) {
    *out = NULL;
    ns_proto_rx *rx = calloc(1, sizeof *rx);
    if (rx == NULL) {
        return NS_ERR_NOMEM;
    }
    rx->max_frames = NS_PROTO_MAX_HEAD_FRAMES + max_payload;
    rx->frames = calloc(rx->max_frames, sizeof(zmq_msg_t));
    if (rx->frames == NULL) {
        free(rx);
        return NS_ERR_NOMEM;
    }
    zmq_msg_t *f = rx->frames;
    for (uint32_t i = 0; i < rx->max_frames; i++) {
        zmq_msg_init(&f[i]);
    }
    *out = rx;
    return NS_OK;
}

void ns_proto_rx_destroy(ns_proto_rx **prx) {
    if (prx == NULL || *prx == NULL) {
        return;
    }
    ns_proto_rx *rx = *prx;
    zmq_msg_t *f = rx->frames;
    for (uint32_t i = 0; i < rx->max_frames; i++) {
        zmq_msg_close(&f[i]);
    }
    free(rx->frames);
    free(rx);
    *prx = NULL;
}

ns_status ns_proto_recv(void *sock, int flags, ns_proto_rx *rx) {
    zmq_msg_t *f = rx->frames;
    rx->n_frames = 0;
    rx->n_dropped = 0;
    rx->oversized = false;
    zmq_msg_t spill;
    zmq_msg_init(&spill);
    for (;;) {
        zmq_msg_t *m = rx->n_frames < rx->max_frames ? &f[rx->n_frames] : &spill;
        /* Only the first part may block / return EAGAIN: the rest of a
         * multipart message is already queued (atomic delivery). */
        int rc = zmq_msg_recv(m, sock, rx->n_frames == 0 && rx->n_dropped == 0 ? flags : 0);
        if (rc < 0) {
            int e = errno;
            zmq_msg_close(&spill);
            if (rx->n_frames == 0 && e == EAGAIN) {
                return NS_ERR_TIMEOUT;
            }
            errno = e;
            return NS_ERR_IO;
        }
        if (m == &spill) {
            rx->n_dropped++;
            rx->oversized = true;
        } else {
            rx->n_frames++;
        }
        if (!zmq_msg_more(m)) {
            break;
        }
    }
    zmq_msg_close(&spill);
    return NS_OK;
}

ns_status ns_proto_parse(ns_proto_rx *rx, bool router, ns_err *err) {
    zmq_msg_t *f = rx->frames;
    uint32_t i = 0;
    rx->identity = NULL;
    rx->identity_len = 0;
    rx->empty_delim = false;
    rx->cmd = -1;
    rx->body = NULL;
    rx->body_len = 0;
    rx->n_payload = 0;
    rx->first_payload = 0;
    if (router) {
        if (rx->n_frames < 1) {
            return ns__err_set(err, NS_ERR_PROTOCOL, "empty message");
        }
        rx->identity = zmq_msg_data(&f[0]);
        rx->identity_len = zmq_msg_size(&f[0]);
        i = 1;
    }
    if (i < rx->n_frames && zmq_msg_size(&f[i]) == 0) {
        rx->empty_delim = true;
        i++;
    }
    if (rx->n_frames < i + 3) {
        return ns__err_set(err, NS_ERR_PROTOCOL, "expected [tag][command][body] frames, got %u frames",
                           rx->n_frames - i);
    }
    if (zmq_msg_size(&f[i]) != NS_PROTO_TAG_LEN || memcmp(zmq_msg_data(&f[i]), NS_PROTO_TAG, NS_PROTO_TAG_LEN) != 0) {
        return ns__err_set(err, NS_ERR_PROTOCOL, "bad protocol tag (expected \"" NS_PROTO_TAG "\")");
    }
    if (zmq_msg_size(&f[i + 1]) != 1) {
        return ns__err_set(err, NS_ERR_PROTOCOL, "command frame must be exactly 1 byte, got %zu",
                           zmq_msg_size(&f[i + 1]));
    }
    rx->cmd = ((const uint8_t *)zmq_msg_data(&f[i + 1]))[0];
    rx->body = zmq_msg_data(&f[i + 2]);
    rx->body_len = zmq_msg_size(&f[i + 2]);
    rx->first_payload = i + 3;
    rx->n_payload = rx->n_frames - (i + 3);
    if (rx->oversized) {
        return ns__err_set(err, NS_ERR_CAPACITY, "too many frames in one message (more than %u payload frames)",
                           rx->max_frames - NS_PROTO_MAX_HEAD_FRAMES);
    }
    return NS_OK;
}

const uint8_t *ns_proto_payload(const ns_proto_rx *rx, uint32_t i, size_t *len) {
    zmq_msg_t *f = rx->frames;
    NS_ASSERT(i < rx->n_payload);
    *len = zmq_msg_size(&f[rx->first_payload + i]);
    return zmq_msg_data(&f[rx->first_payload + i]);
}

static int send_part(void *sock, const void *data, size_t len, int flags) {
    return zmq_send(sock, data, len, flags) < 0 ? -1 : 0;
}

ns_status ns_proto_send(void *sock, const void *identity, size_t identity_len, bool empty_delim, int cmd,
                        const void *body, size_t body_len, const ns_proto_part *payloads, size_t n_payloads,
                        int flags) {
    uint8_t c = (uint8_t)cmd;
    /* With ZMQ_ROUTER_MANDATORY the first part fails with EHOSTUNREACH when
     * the peer is gone, before anything is queued; later parts of a started
     * message are always accepted. */
    if (identity != NULL && send_part(sock, identity, identity_len, flags | ZMQ_SNDMORE) != 0) {
        return NS_ERR_IO;
    }
    if (empty_delim && send_part(sock, "", 0, flags | ZMQ_SNDMORE) != 0) {
        return NS_ERR_IO;
    }
    if (send_part(sock, NS_PROTO_TAG, NS_PROTO_TAG_LEN, flags | ZMQ_SNDMORE) != 0 ||
        send_part(sock, &c, 1, flags | ZMQ_SNDMORE) != 0 ||
        send_part(sock, body, body_len, flags | (n_payloads > 0 ? ZMQ_SNDMORE : 0)) != 0) {
        return NS_ERR_IO;
    }
    for (size_t i = 0; i < n_payloads; i++) {
        if (send_part(sock, payloads[i].data, payloads[i].len, flags | (i + 1 < n_payloads ? ZMQ_SNDMORE : 0)) != 0) {
            return NS_ERR_IO;
        }
    }
    return NS_OK;
}

int64_t ns_proto_body_rid(const uint8_t *body, size_t len) {
    ns_mp_reader r;
    uint32_t n;
    ns_mp_reader_init(&r, body, len);
    if (ns_mp_read_map(&r, &n) != NS_OK) {
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (ns_mp_read_str(&r, &k, &kl) != NS_OK) {
            return -1;
        }
        if (ns_mp_str_eq(k, kl, "rid")) {
            int64_t v;
            return ns_mp_read_int(&r, &v) == NS_OK && v >= 0 ? v : -1;
        }
        if (ns_mp_skip(&r) != NS_OK) {
            return -1;
        }
    }
    return -1;
}

int ns_proto_pack_begin(msgpack_sbuffer *sb, msgpack_packer *pk, uint32_t n_fields, int64_t rid) {
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(pk, n_fields);
    rc |= ns_mp_pack_cstr(pk, "rid");
    rc |= rid >= 0 ? msgpack_pack_int64(pk, rid) : msgpack_pack_nil(pk);
    return rc;
}

/* Length of the longest valid UTF-8 prefix of s (messages may have been cut
 * mid-character by a fixed-size buffer). */
static size_t utf8_prefix(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        int n = ns_utf8_len((unsigned char)s[i]);
        if (n == 0 || i + (size_t)n > len || !ns_utf8_valid(s + i, (size_t)n)) {
            break;
        }
        i += (size_t)n;
    }
    return i;
}

int ns_proto_pack_error(msgpack_sbuffer *sb, int64_t rid, const char *code, const char *message) {
    msgpack_packer pk;
    int rc = ns_proto_pack_begin(sb, &pk, 3, rid);
    rc |= ns_mp_pack_kv_str(&pk, "code", code);
    rc |= ns_mp_pack_cstr(&pk, "message");
    rc |= ns_mp_pack_strn(&pk, message, utf8_prefix(message, strlen(message)));
    return rc;
}
