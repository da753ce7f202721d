/*
 * ns_client.h - a small synchronous NSQ1 client (DEALER socket), for the CLI,
 * tools and tests. It speaks only the framing; callers pack request bodies
 * with msgpack-c and read replies with ns_mp_reader (see docs/protocol.md).
 *
 *   ns_client *c; ns_client_create(&c, "tcp://127.0.0.1:5555", 10000);
 *   msgpack_packer *pk = ns_client_begin(c, 3);          // rid + 2 fields
 *   ns_mp_pack_kv_str(pk, "name", "nightly");
 *   ns_mp_pack_kv_str(pk, "model", "tinyllama");
 *   ns_client_reply rep;
 *   if (ns_client_call(c, NS_CMD_CREATE_BATCH, NULL, 0, &rep) == NS_OK && rep.cmd == NS_CMD_OK) ...
 *
 * Requests get a fresh request id ("rid"), and replies whose rid does not
 * match are dropped. On a timeout the socket is closed and reopened (the
 * "Lazy Pirate" pattern), so a late reply or a request still queued for an
 * unreachable broker cannot be confused with a later one.
 *
 * Ownership: the client owns its ZeroMQ context and socket; a reply's views
 * stay valid until the next call on the client. Thread safety: none.
 */
#ifndef NS_CLIENT_H
#define NS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "ns_proto.h"
#include "ns_status.h"

typedef struct ns_client ns_client;

/* A received reply or event. Views point into the client's receive buffer. */
typedef struct ns_client_reply {
    int cmd;             /* NS_CMD_OK, NS_CMD_ERROR or NS_CMD_EVENT */
    int64_t rid;         /* echoed request id */
    const uint8_t *body; /* checked msgpack map */
    size_t body_len;
    char code[32];               /* ERROR: the error code ("not_found"), else "" */
    char message[NS_ERRMSG_LEN]; /* ERROR: the message, else "" */
} ns_client_reply;

/* Connect a DEALER socket to `endpoint`. timeout_ms bounds each call's wait
 * for its reply (<= 0: 30 s). */
ns_status ns_client_create(ns_client **out, const char *endpoint, int timeout_ms);

/* Close the socket and context; *c becomes NULL. NULL-safe. */
void ns_client_destroy(ns_client **c);

/* Last error detail; never NULL. */
const char *ns_client_errmsg(const ns_client *c);

/* Start a request body: a map of n_fields entries whose first is "rid"
 * (packed here with a fresh id). Pack the other n_fields - 1 pairs with the
 * returned packer, then call ns_client_call. */
msgpack_packer *ns_client_begin(ns_client *c, uint32_t n_fields);

/* Send the body built since ns_client_begin with command `cmd` and optional
 * payload frames, and wait for the reply with the same rid.
 * NS_OK: *rep holds it (rep->cmd tells OK from ERROR). NS_ERR_TIMEOUT after
 * timeout_ms (the socket is then reset), NS_ERR_IO on a socket error,
 * NS_ERR_PROTOCOL when the reply is malformed. */
ns_status ns_client_call(ns_client *c, int cmd, const ns_proto_part *payloads, size_t n_payloads, ns_client_reply *rep);

/* Wait up to timeout_ms for the next message with the current rid (WATCH
 * events). NS_ERR_TIMEOUT when none came. */
ns_status ns_client_next(ns_client *c, int timeout_ms, ns_client_reply *rep);

/* Look up a key in a reply body: an int / a string (borrowed) / a float.
 * NS_ERR_NOT_FOUND when absent, NS_ERR_FORMAT on a type mismatch. */
ns_status ns_client_get_int(const ns_client_reply *rep, const char *key, int64_t *out);
ns_status ns_client_get_str(const ns_client_reply *rep, const char *key, const char **s, size_t *len);
ns_status ns_client_get_double(const ns_client_reply *rep, const char *key, double *out);

#endif /* NS_CLIENT_H */
