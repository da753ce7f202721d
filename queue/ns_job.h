/*
 * ns_job.h - one job's input: decoding and checking it from msgpack, and
 * packing it back.
 *
 * A job spec is the map a client sends per job in ENQUEUE (docs/protocol.md,
 * "Job map"): custom_id, prompt or messages, and sampling settings. The JOB
 * message the broker sends a worker is the same map plus job_id, batch_id,
 * attempt, model and lease_ms; ns_job_msg_decode reads it.
 *
 * Ownership: every pointer in an ns_job_spec borrows the caller's bytes
 * (the received frame); nothing is allocated. Thread safety: reentrant.
 */
#ifndef NS_JOB_H
#define NS_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "ns_mpack.h"
#include "ns_proto.h"
#include "ns_status.h"

/* Defaults for absent sampling fields. */
#define NS_JOB_DEFAULT_MAX_TOKENS 256
#define NS_JOB_DEFAULT_TEMPERATURE 1.0f
#define NS_JOB_DEFAULT_TOP_K 0
#define NS_JOB_DEFAULT_TOP_P 1.0f
#define NS_JOB_DEFAULT_MIN_P 0.0f

typedef struct ns_job_spec {
    const char *custom_id; /* UTF-8, no NUL, 1..max_custom_id_bytes bytes */
    size_t custom_id_len;
    const char *prompt; /* raw prompt; NULL when `messages` is set */
    size_t prompt_len;
    const uint8_t *messages; /* checked msgpack array of {role, content} maps; NULL when `prompt` is set */
    size_t messages_len;     /* bytes of that array */
    uint32_t n_messages;
    int32_t max_tokens; /* 1..max_max_tokens */
    float temperature;  /* 0..100 (0 = greedy) */
    int32_t top_k;      /* 0 = off */
    float top_p;        /* (0, 1] */
    float min_p;        /* [0, 1] */
    bool has_seed;      /* false: the worker picks a seed */
    int64_t seed;
    const uint8_t *stop; /* checked msgpack array of strings; NULL when none */
    size_t stop_len;
    uint32_t n_stop;
} ns_job_spec;

/* Decode one job map from bytes that passed ns_mp_check. Applies defaults,
 * checks types, ranges, limits (lim NULL: defaults) and that every string is
 * valid UTF-8 without NUL. Unknown keys are ignored; a repeated key is an
 * error. NS_ERR_FORMAT / NS_ERR_RANGE / NS_ERR_CAPACITY with a message naming
 * the field. */
ns_status ns_job_spec_decode(const uint8_t *buf, size_t len, const ns_proto_limits *lim, ns_job_spec *out, ns_err *err);

/* Pack the spec as a job map (the ENQUEUE payload form), `extra` more pairs to
 * follow (the caller packs them right after). */
int ns_job_spec_pack(msgpack_packer *pk, const ns_job_spec *spec, uint32_t extra);

/* A JOB message as a worker receives it. */
typedef struct ns_job_msg {
    int64_t job_id;
    int64_t batch_id;
    int32_t attempt;  /* lease epoch: pass it to ns_queue_complete / ns_queue_fail */
    int64_t lease_ms; /* the lease the broker took; it renews it while the worker heartbeats */
    const char *model;
    size_t model_len;
    ns_job_spec spec;
} ns_job_msg;

/* Decode a JOB body (checked bytes). Same rules as ns_job_spec_decode. */
ns_status ns_job_msg_decode(const uint8_t *buf, size_t len, const ns_proto_limits *lim, ns_job_msg *out, ns_err *err);

/* Iterate chat messages: init over spec->messages, then next() until false. */
typedef struct ns_chat_iter {
    ns_mp_reader r;
    uint32_t left;
} ns_chat_iter;

void ns_chat_iter_init(ns_chat_iter *it, const ns_job_spec *spec);
/* Next message's role and content (borrowed, not NUL-terminated). */
bool ns_chat_iter_next(ns_chat_iter *it, const char **role, size_t *role_len, const char **content,
                       size_t *content_len);

/* Iterate stop strings the same way. */
void ns_stop_iter_init(ns_chat_iter *it, const ns_job_spec *spec);
bool ns_stop_iter_next(ns_chat_iter *it, const char **s, size_t *len);

#endif /* NS_JOB_H */
