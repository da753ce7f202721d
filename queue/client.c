/*
 * client.c - synchronous NSQ1 DEALER client (see ns_client.h).
 */
#include "ns_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ns_mpack.h"
#include "ns_util.h"

struct ns_client {
    void *ctx;
    void *sock;
    char *endpoint;
    int timeout_ms;
    int64_t next_rid;
    int64_t cur_rid;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    ns_proto_rx *rx;
    ns_err err;
};

static ns_status open_socket(ns_client *c) {
    int linger = 0;
    int64_t maxmsg = (int64_t)ns_proto_default_limits.max_frame_bytes * 4;
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (c->sock == NULL) {
        return ns__err_set(&c->err, NS_ERR_IO, "client: zmq_socket: %s", zmq_strerror(errno));
    }
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        ns_status st = ns__err_set(&c->err, NS_ERR_IO, "client: connect %s: %s", c->endpoint, zmq_strerror(errno));
        zmq_close(c->sock);
        c->sock = NULL;
        return st;
    }
    return NS_OK;
}

ns_status ns_client_create(ns_client **out, const char *endpoint, int timeout_ms) {
    *out = NULL;
    ns_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NS_ERR_NOMEM;
    }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    c->next_rid = 1;
    c->cur_rid = -1;
    msgpack_sbuffer_init(&c->sb);
    c->endpoint = strdup(endpoint);
    c->ctx = zmq_ctx_new();
    ns_status st = c->endpoint && c->ctx ? ns_proto_rx_create(&c->rx, 0) : NS_ERR_NOMEM;
    if (st == NS_OK) {
        st = open_socket(c);
    }
    if (st != NS_OK) {
        ns_client_destroy(&c);
        return st;
    }
    *out = c;
    return NS_OK;
}

void ns_client_destroy(ns_client **pc) {
    if (pc == NULL || *pc == NULL) {
        return;
    }
    ns_client *c = *pc;
    if (c->sock != NULL) {
        zmq_close(c->sock);
    }
    ns_proto_rx_destroy(&c->rx);
    if (c->ctx != NULL) {
        zmq_ctx_term(c->ctx);
    }
    msgpack_sbuffer_destroy(&c->sb);
    free(c->endpoint);
    free(c);
    *pc = NULL;
}

const char *ns_client_errmsg(const ns_client *c) {
    return ns_err_msg(&c->err);
}

msgpack_packer *ns_client_begin(ns_client *c, uint32_t n_fields) {
    c->cur_rid = c->next_rid++;
    ns_proto_pack_begin(&c->sb, &c->pk, n_fields, c->cur_rid);
    return &c->pk;
}

/* Receive into rep the next message carrying cur_rid, waiting <= timeout_ms. */
static ns_status wait_reply(ns_client *c, int timeout_ms, ns_client_reply *rep) {
    double deadline = ns_time_s() + timeout_ms / 1000.0;
    memset(rep, 0, sizeof *rep);
    for (;;) {
        double left = deadline - ns_time_s();
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        if (left <= 0) {
            return ns__err_set(&c->err, NS_ERR_TIMEOUT, "client: no reply within %d ms", timeout_ms);
        }
        int rc = zmq_poll(&it, 1, (long)(left * 1000) + 1);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            return ns__err_set(&c->err, NS_ERR_IO, "client: poll: %s", zmq_strerror(errno));
        }
        if (rc == 0) {
            continue;
        }
        ns_status st = ns_proto_recv(c->sock, ZMQ_DONTWAIT, c->rx);
        if (st == NS_ERR_TIMEOUT) {
            continue;
        }
        if (st != NS_OK) {
            return ns__err_set(&c->err, st, "client: recv: %s", zmq_strerror(errno));
        }
        if (ns_proto_parse(c->rx, false, &c->err) != NS_OK) {
            continue; /* not ours to answer; drop */
        }
        if (ns_mp_check(c->rx->body, c->rx->body_len, NULL, &c->err) != NS_OK) {
            return ns__err_set(&c->err, NS_ERR_PROTOCOL, "client: malformed reply body");
        }
        int64_t rid = ns_proto_body_rid(c->rx->body, c->rx->body_len);
        if (rid != c->cur_rid && !(c->rx->cmd == NS_CMD_ERROR && rid < 0)) {
            continue; /* a late reply to an earlier request */
        }
        rep->cmd = c->rx->cmd;
        rep->rid = rid;
        rep->body = c->rx->body;
        rep->body_len = c->rx->body_len;
        if (rep->cmd == NS_CMD_ERROR) {
            const char *s;
            size_t n;
            if (ns_client_get_str(rep, "code", &s, &n) == NS_OK) {
                snprintf(rep->code, sizeof rep->code, "%.*s", (int)n, s);
            }
            if (ns_client_get_str(rep, "message", &s, &n) == NS_OK) {
                snprintf(rep->message, sizeof rep->message, "%.*s", (int)n, s);
            }
            ns__err_set(&c->err, NS_ERR_PROTOCOL, "%s: %s", rep->code, rep->message);
        }
        return NS_OK;
    }
}

ns_status ns_client_call(ns_client *c, int cmd, const ns_proto_part *payloads, size_t n_payloads,
                         ns_client_reply *rep) {
    if (c->sock == NULL) {
        NS_TRY(open_socket(c));
    }
    if (ns_proto_send(c->sock, NULL, 0, false, cmd, c->sb.data, c->sb.size, payloads, n_payloads, 0) != NS_OK) {
        return ns__err_set(&c->err, NS_ERR_IO, "client: send: %s", zmq_strerror(errno));
    }
    ns_status st = wait_reply(c, c->timeout_ms, rep);
    if (st == NS_ERR_TIMEOUT) {
        /* Lazy Pirate: drop the socket with whatever it still holds. */
        zmq_close(c->sock);
        c->sock = NULL;
        ns_status ro = open_socket(c);
        (void)ro;
        ns__err_set(&c->err, NS_ERR_TIMEOUT, "client: no reply from %s within %d ms", c->endpoint, c->timeout_ms);
    }
    return st;
}

ns_status ns_client_next(ns_client *c, int timeout_ms, ns_client_reply *rep) {
    if (c->sock == NULL) {
        return ns__err_set(&c->err, NS_ERR_STATE, "client: not connected");
    }
    return wait_reply(c, timeout_ms, rep);
}

/* Position r on the value for `key` in the reply map. */
static ns_status find_key(const ns_client_reply *rep, const char *key, ns_mp_reader *r) {
    uint32_t n;
    ns_mp_reader_init(r, rep->body, rep->body_len);
    if (ns_mp_read_map(r, &n) != NS_OK) {
        return NS_ERR_FORMAT;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (ns_mp_read_str(r, &k, &kl) != NS_OK) {
            return NS_ERR_FORMAT;
        }
        if (ns_mp_str_eq(k, kl, key)) {
            return NS_OK;
        }
        if (ns_mp_skip(r) != NS_OK) {
            return NS_ERR_FORMAT;
        }
    }
    return NS_ERR_NOT_FOUND;
}

ns_status ns_client_get_int(const ns_client_reply *rep, const char *key, int64_t *out) {
    ns_mp_reader r;
    NS_TRY(find_key(rep, key, &r));
    return ns_mp_read_int(&r, out);
}

ns_status ns_client_get_str(const ns_client_reply *rep, const char *key, const char **s, size_t *len) {
    ns_mp_reader r;
    NS_TRY(find_key(rep, key, &r));
    return ns_mp_read_str(&r, s, len);
}

ns_status ns_client_get_double(const ns_client_reply *rep, const char *key, double *out) {
    ns_mp_reader r;
    NS_TRY(find_key(rep, key, &r));
    return ns_mp_read_double(&r, out);
}
