/*
 * ns_proto.h - the nightshift wire protocol (NSQ1) over ZeroMQ.
 *
 * A message is a multipart ZeroMQ message:
 *   [routing id (ROUTER side only)] ["" (optional, REQ compatibility)]
 *   ["NSQ1"] [command: 1 byte] [body: one msgpack map] [payload frames...]
 * docs/protocol.md is the normative description (commands, fields, errors,
 * limits); this header gives the constants and the framing helpers shared by
 * the broker, the worker, the CLI and the tests.
 *
 * Receiving (ns_proto_recv) reads every part of one message into a receive
 * context whose frame count is capped, so a peer cannot make us keep more
 * than max_frames parts; extra parts are read and dropped, and the message is
 * marked oversized. Bodies are NOT validated here: call ns_mp_check first.
 *
 * Ownership: an ns_proto_rx owns the zmq_msg_t frames it holds until the next
 * ns_proto_recv or ns_proto_rx_destroy. Thread safety: one rx per thread;
 * ZeroMQ sockets are not thread-safe.
 */
#ifndef NS_PROTO_H
#define NS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "ns_status.h"

#define NS_PROTO_TAG "NSQ1"
#define NS_PROTO_TAG_LEN 4

/* Command bytes. Client requests 0x01-0x1f, worker traffic 0x20-0x3f,
 * replies 0x80-0x8f. */
typedef enum ns_cmd {
    NS_CMD_CREATE_BATCH = 0x01,
    NS_CMD_ENQUEUE = 0x02,
    NS_CMD_SEAL = 0x03,
    NS_CMD_STATUS = 0x04,
    NS_CMD_WATCH = 0x05,
    NS_CMD_RESULTS = 0x06,
    NS_CMD_CANCEL = 0x07,
    NS_CMD_RETRY = 0x08,
    NS_CMD_WORKERS = 0x09,
    NS_CMD_PING = 0x0a,

    NS_CMD_READY = 0x20,      /* worker -> broker */
    NS_CMD_CREDIT = 0x21,     /* worker -> broker */
    NS_CMD_JOB = 0x22,        /* broker -> worker */
    NS_CMD_DONE = 0x23,       /* worker -> broker */
    NS_CMD_HEARTBEAT = 0x24,  /* both ways */
    NS_CMD_CANCEL_JOB = 0x25, /* broker -> worker */
    NS_CMD_DISCONNECT = 0x26, /* both ways */

    NS_CMD_OK = 0x80,
    NS_CMD_ERROR = 0x81,
    NS_CMD_EVENT = 0x82,
} ns_cmd;

/* Name of a command byte ("enqueue"), or NULL when unknown. */
const char *ns_cmd_name(int cmd);

/* Error codes carried in ERROR replies ("code" field). */
#define NS_EC_BAD_REQUEST "bad_request"         /* malformed frames, msgpack or fields */
#define NS_EC_UNKNOWN_COMMAND "unknown_command" /* command byte not known on this socket */
#define NS_EC_TOO_LARGE "too_large"             /* a documented limit was exceeded */
#define NS_EC_NOT_FOUND "not_found"             /* no such batch */
#define NS_EC_DUPLICATE "duplicate_custom_id"   /* custom_id already in the batch (or twice in the message) */
#define NS_EC_INVALID_STATE "invalid_state"     /* e.g. enqueue into a sealed batch */
#define NS_EC_UNAVAILABLE "unavailable"         /* database down: retry later */
#define NS_EC_SHUTTING_DOWN "shutting_down"     /* broker draining: retry on another/restarted broker */
#define NS_EC_UNKNOWN_WORKER "unknown_worker"   /* worker message before READY: send READY again */
#define NS_EC_BUSY "busy"                       /* a bounded broker table is full (watchers) */
#define NS_EC_INTERNAL "internal"

/* Limits. The broker enforces them and docs/protocol.md documents them. */
typedef struct ns_proto_limits {
    size_t max_frame_bytes;     /* ZMQ_MAXMSGSIZE: largest single frame (16 MiB) */
    uint32_t max_jobs_per_msg;  /* payload frames in one ENQUEUE (10000) */
    size_t max_prompt_bytes;    /* prompt, or sum of chat message contents (1 MiB) */
    size_t max_custom_id_bytes; /* 256 */
    uint32_t max_messages;      /* chat messages per job (1024) */
    uint32_t max_stop;          /* stop strings per job (16) */
    size_t max_stop_bytes;      /* bytes per stop string (256) */
    size_t max_name_bytes;      /* batch name, model, worker name, idempotency key, role (256) */
    size_t max_metadata_bytes;  /* batch metadata as JSON (64 KiB) */
    uint32_t max_max_tokens;    /* largest max_tokens (1,000,000) */
} ns_proto_limits;

extern const ns_proto_limits ns_proto_default_limits;

/* Maximum frames kept per received message: identity, delimiter, tag,
 * command, body, then the payload frames. */
#define NS_PROTO_MAX_HEAD_FRAMES 5

/* One received message. The views point into `frames`. */
typedef struct ns_proto_rx {
    void *frames;        /* zmq_msg_t[max_frames], allocated once by ns_proto_rx_create */
    uint32_t max_frames; /* capacity of frames */
    uint32_t n_frames;   /* frames kept for this message */
    uint64_t n_dropped;  /* parts beyond max_frames that were read and dropped */
    bool oversized;      /* n_dropped > 0 */
    /* views, valid after NS_OK from ns_proto_parse */
    const uint8_t *identity; /* ROUTER routing id (NULL on DEALER side) */
    size_t identity_len;
    bool empty_delim;    /* an empty delimiter frame followed the identity (REQ peer) */
    int cmd;             /* command byte */
    const uint8_t *body; /* msgpack map (unchecked) */
    size_t body_len;
    uint32_t n_payload;     /* payload frames after the body */
    uint32_t first_payload; /* index of the first payload frame in frames */
} ns_proto_rx;

/* Allocate an rx able to keep `max_payload` payload frames per message. */
ns_status ns_proto_rx_create(ns_proto_rx **out, uint32_t max_payload);
void ns_proto_rx_destroy(ns_proto_rx **rx);

/* Receive every part of the next message on `sock` (flags: 0 or ZMQ_DONTWAIT).
 * NS_OK when a whole message was read; NS_ERR_TIMEOUT when none is ready
 * (ZMQ_DONTWAIT / EAGAIN); NS_ERR_IO on a socket error. Never allocates. */
ns_status ns_proto_recv(void *sock, int flags, ns_proto_rx *rx);

/* Split the received frames into the views above. `router` says whether the
 * first frame is a routing id. NS_ERR_PROTOCOL (message in err) when the
 * framing is wrong: too few frames, a bad tag, a command frame that is not
 * one byte, or oversized. The identity view is set whenever it exists, so the
 * caller can still reply. */
ns_status ns_proto_parse(ns_proto_rx *rx, bool router, ns_err *err);

/* Data and size of payload frame i (0-based) of a parsed message. */
const uint8_t *ns_proto_payload(const ns_proto_rx *rx, uint32_t i, size_t *len);

/* One frame to send. */
typedef struct ns_proto_part {
    const void *data;
    size_t len;
} ns_proto_part;

/* Send [identity][""?][tag][cmd][body][payloads...] on `sock`.
 * identity may be NULL (DEALER side). `flags` is added to every part
 * (ZMQ_DONTWAIT for the broker). NS_ERR_IO with errno preserved
 * (EHOSTUNREACH: peer gone under ZMQ_ROUTER_MANDATORY; EAGAIN: HWM full). */
ns_status ns_proto_send(void *sock, const void *identity, size_t identity_len, bool empty_delim, int cmd,
                        const void *body, size_t body_len, const ns_proto_part *payloads, size_t n_payloads, int flags);

/* Read "rid" from a (checked) body map; *rid = -1 when absent or not an
 * integer. Never fails. */
int64_t ns_proto_body_rid(const uint8_t *body, size_t len);

/* Pack an ERROR body {rid, code, message} (rid < 0 packs nil). Resets sb. */
int ns_proto_pack_error(msgpack_sbuffer *sb, int64_t rid, const char *code, const char *message);

/* Begin a map body with `n_fields` entries, the first being rid (so pass the
 * total count including rid). Resets sb and inits pk over it. */
int ns_proto_pack_begin(msgpack_sbuffer *sb, msgpack_packer *pk, uint32_t n_fields, int64_t rid);

#endif /* NS_PROTO_H */
