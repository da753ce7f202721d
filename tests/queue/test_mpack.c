/*
 * test_mpack.c - unit tests for the msgpack validator and reader
 * (queue/mpack_check.c), msgpack <-> JSON (queue/mpack_json.c), job map
 * decoding (queue/job.c) and framing over inproc sockets (queue/proto.c).
 */
#include <zmq.h>

#include "ns_job.h"
#include "ns_mpack.h"
#include "ns_proto.h"
#include "ns_test.h"

#define CHECK_BYTES(expect, ...)                                                                                       \
    do {                                                                                                               \
        const uint8_t b_[] = {__VA_ARGS__};                                                                            \
        ns_err e_ = {0};                                                                                               \
        ns_status s_ = ns_mp_check(b_, sizeof b_, NULL, &e_);                                                          \
        if (s_ != (expect)) {                                                                                          \
            NS_FAIL("ns_mp_check -> %s (%s), want %s", ns_status_str(s_), ns_err_msg(&e_), ns_status_str(expect));     \
        }                                                                                                              \
    } while (0)

static void test_validator(void) {
    CHECK_BYTES(NS_OK, 0xc0);                                       /* nil */
    CHECK_BYTES(NS_OK, 0x92, 0x01, 0xa1, 'x');                      /* [1, "x"] */
    CHECK_BYTES(NS_OK, 0x81, 0xa1, 'k', 0x90);                      /* {"k": []} */
    CHECK_BYTES(NS_OK, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0);               /* float64 */
    CHECK_BYTES(NS_ERR_FORMAT, 0xc0, 0xc0);                         /* trailing byte */
    CHECK_BYTES(NS_ERR_FORMAT, 0x92, 0x01);                         /* truncated array */
    CHECK_BYTES(NS_ERR_FORMAT, 0xdd, 0xff, 0xff, 0xff, 0xff);       /* 4G elements in 5 bytes */
    CHECK_BYTES(NS_ERR_FORMAT, 0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0); /* 2G pairs */
    CHECK_BYTES(NS_ERR_FORMAT, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a');  /* str32 past the end */
    CHECK_BYTES(NS_ERR_FORMAT, 0xc1);                               /* never used */
    CHECK_BYTES(NS_ERR_FORMAT, 0xd4, 0x01, 0x02);                   /* fixext rejected */
    CHECK_BYTES(NS_ERR_FORMAT, 0xcb, 0, 0);                         /* truncated float */
    CHECK_BYTES(NS_ERR_FORMAT);                                     /* empty */
    /* Two nested arrays each claiming 3 children but only 4 bytes left. */
    CHECK_BYTES(NS_ERR_FORMAT, 0x93, 0x93, 0x01, 0x01);
    /* Depth: 16 nested arrays pass, 17 fail (default limit 16). */
    uint8_t deep[40];
    memset(deep, 0x91, sizeof deep);
    deep[16] = 0xc0;
    ASSERT_OK(ns_mp_check(deep, 17, NULL, NULL));
    deep[16] = 0x91;
    deep[17] = 0xc0;
    ASSERT_EQ(ns_mp_check(deep, 18, NULL, NULL), NS_ERR_FORMAT);
    /* Element cap. */
    ns_mp_limits lim = {16, 3};
    const uint8_t arr3[] = {0x93, 1, 2, 3};
    ASSERT_EQ(ns_mp_check(arr3, sizeof arr3, &lim, NULL), NS_ERR_FORMAT);
    lim.max_elems = 4;
    ASSERT_OK(ns_mp_check(arr3, sizeof arr3, &lim, NULL));
}

static void test_reader(void) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_int64(&pk, -5000000000ll);
    msgpack_pack_uint64(&pk, 42);
    msgpack_pack_float(&pk, 1.5f);
    ns_mp_pack_cstr(&pk, "hé");
    msgpack_pack_true(&pk);
    msgpack_pack_nil(&pk);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    ASSERT_OK(ns_mp_check((uint8_t *)sb.data, sb.size, NULL, NULL));
    ns_mp_reader r;
    uint32_t n;
    int64_t i;
    double d;
    const char *s;
    size_t len;
    bool b;
    ns_mp_reader_init(&r, sb.data, sb.size);
    ASSERT_OK(ns_mp_read_array(&r, &n));
    ASSERT_EQ(n, 7);
    ASSERT_EQ(ns_mp_read_str(&r, &s, &len), NS_ERR_FORMAT); /* wrong type leaves the cursor */
    ASSERT_OK(ns_mp_read_int(&r, &i));
    ASSERT_EQ(i, -5000000000ll);
    ASSERT_OK(ns_mp_read_double(&r, &d)); /* ints read as doubles */
    ASSERT_NEAR(d, 42.0, 0);
    ASSERT_OK(ns_mp_read_double(&r, &d));
    ASSERT_NEAR(d, 1.5, 0);
    ASSERT_OK(ns_mp_read_str(&r, &s, &len));
    ASSERT_TRUE(ns_mp_str_eq(s, len, "hé"));
    ASSERT_OK(ns_mp_read_bool(&r, &b));
    ASSERT_TRUE(b);
    ASSERT_OK(ns_mp_read_nil(&r));
    ASSERT_EQ(ns_mp_read_int(&r, &i), NS_ERR_FORMAT); /* > INT64_MAX */
    ASSERT_OK(ns_mp_skip(&r));
    ASSERT_TRUE(r.p == r.end);
    /* JSON of the same bytes. */
    ns_buf out;
    ns_buf_init(&out, 1024);
    ns_mp_reader_init(&r, sb.data, sb.size);
    ASSERT_OK(ns_mp_to_json(&r, &out, NULL));
    ns_buf_putc(&out, 0);
    ASSERT_STREQ((char *)out.data, "[-5000000000,42,1.5,\"hé\",true,null,18446744073709551615]");
    ns_buf_free(&out);
    /* JSON with escapes, round trip through jansson. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    ns_mp_pack_cstr(&pk, "k\"");
    ns_mp_pack_cstr(&pk, "a\n\t\\\x01");
    ns_buf_init(&out, 1024);
    ns_mp_reader_init(&r, sb.data, sb.size);
    ASSERT_OK(ns_mp_to_json(&r, &out, NULL));
    ns_buf_putc(&out, 0);
    ASSERT_STREQ((char *)out.data, "{\"k\\\"\":\"a\\n\\t\\\\\\u0001\"}");
    msgpack_sbuffer sb2;
    msgpack_packer pk2;
    msgpack_sbuffer_init(&sb2);
    msgpack_packer_init(&pk2, &sb2, msgpack_sbuffer_write);
    ASSERT_OK(ns_json_to_mp((char *)out.data, out.len - 1, &pk2, NULL));
    ASSERT_EQ(sb2.size, sb.size);
    ASSERT_TRUE(memcmp(sb2.data, sb.data, sb.size) == 0);
    /* JSON output cap. */
    ns_buf small;
    ns_buf_init(&small, 4);
    ns_mp_reader_init(&r, sb.data, sb.size);
    ASSERT_EQ(ns_mp_to_json(&r, &small, NULL), NS_ERR_CAPACITY);
    ns_buf_free(&small);
    ns_buf_free(&out);
    msgpack_sbuffer_destroy(&sb2);
    msgpack_sbuffer_destroy(&sb);
}

/* Decode a job map built by `fill`; returns the status. */
static ns_status decode_job(void (*fill)(msgpack_packer *), ns_job_spec *spec, ns_err *err) {
    static msgpack_sbuffer sb; /* kept alive for the spec's borrowed pointers */
    msgpack_packer pk;
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fill(&pk);
    NS_TRY(ns_mp_check((uint8_t *)sb.data, sb.size, NULL, err));
    return ns_job_spec_decode((uint8_t *)sb.data, sb.size, NULL, spec, err);
}

static void job_ok(msgpack_packer *pk) {
    msgpack_pack_map(pk, 6);
    ns_mp_pack_kv_str(pk, "custom_id", "j1");
    ns_mp_pack_cstr(pk, "messages");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    ns_mp_pack_kv_str(pk, "role", "user");
    ns_mp_pack_kv_str(pk, "content", "hi");
    ns_mp_pack_kv_str(pk, "name", "ignored");
    ns_mp_pack_kv_int(pk, "top_k", 5);
    ns_mp_pack_kv_double(pk, "top_p", 0.5);
    ns_mp_pack_cstr(pk, "stop");
    msgpack_pack_array(pk, 1);
    ns_mp_pack_cstr(pk, "###");
    ns_mp_pack_kv_str(pk, "unknown_key", "is ignored");
}
static void job_both(msgpack_packer *pk) {
    msgpack_pack_map(pk, 3);
    ns_mp_pack_kv_str(pk, "custom_id", "j");
    ns_mp_pack_kv_str(pk, "prompt", "p");
    ns_mp_pack_cstr(pk, "messages");
    msgpack_pack_array(pk, 0);
}
static void job_repeat(msgpack_packer *pk) {
    msgpack_pack_map(pk, 3);
    ns_mp_pack_kv_str(pk, "custom_id", "j");
    ns_mp_pack_kv_str(pk, "prompt", "p");
    ns_mp_pack_kv_str(pk, "prompt", "q");
}
static void job_badutf8(msgpack_packer *pk) {
    msgpack_pack_map(pk, 2);
    ns_mp_pack_kv_str(pk, "custom_id", "j\xff");
    ns_mp_pack_kv_str(pk, "prompt", "p");
}
static void job_range(msgpack_packer *pk) {
    msgpack_pack_map(pk, 3);
    ns_mp_pack_kv_str(pk, "custom_id", "j");
    ns_mp_pack_kv_str(pk, "prompt", "p");
    ns_mp_pack_kv_int(pk, "max_tokens", 0);
}
static void job_many_stops(msgpack_packer *pk) {
    msgpack_pack_map(pk, 3);
    ns_mp_pack_kv_str(pk, "custom_id", "j");
    ns_mp_pack_kv_str(pk, "prompt", "p");
    ns_mp_pack_cstr(pk, "stop");
    msgpack_pack_array(pk, 17);
    for (int i = 0; i < 17; i++) {
        ns_mp_pack_cstr(pk, "s");
    }
}

static void test_jobs(void) {
    ns_job_spec s;
    ns_err err = {0};
    ASSERT_OK(decode_job(job_ok, &s, &err));
    ASSERT_TRUE(ns_mp_str_eq(s.custom_id, s.custom_id_len, "j1"));
    ASSERT_TRUE(s.prompt == NULL && s.n_messages == 1 && s.n_stop == 1);
    ASSERT_EQ(s.max_tokens, NS_JOB_DEFAULT_MAX_TOKENS);
    ASSERT_EQ(s.top_k, 5);
    ASSERT_NEAR(s.top_p, 0.5, 0);
    ASSERT_TRUE(!s.has_seed);
    ns_chat_iter it;
    const char *role, *content;
    size_t rl, cl;
    ns_chat_iter_init(&it, &s);
    ASSERT_TRUE(ns_chat_iter_next(&it, &role, &rl, &content, &cl));
    ASSERT_TRUE(ns_mp_str_eq(role, rl, "user") && ns_mp_str_eq(content, cl, "hi"));
    ASSERT_TRUE(!ns_chat_iter_next(&it, &role, &rl, &content, &cl));
    ns_stop_iter_init(&it, &s);
    ASSERT_TRUE(ns_stop_iter_next(&it, &content, &cl) && ns_mp_str_eq(content, cl, "###"));
    /* Re-pack and decode again: same fields. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ASSERT_EQ(ns_job_spec_pack(&pk, &s, 0), 0);
    ns_job_spec s2;
    ASSERT_OK(ns_mp_check((uint8_t *)sb.data, sb.size, NULL, NULL));
    ASSERT_OK(ns_job_spec_decode((uint8_t *)sb.data, sb.size, NULL, &s2, NULL));
    ASSERT_EQ(s2.n_messages, 1);
    ASSERT_EQ(s2.top_k, 5);
    msgpack_sbuffer_destroy(&sb);

    ASSERT_EQ(decode_job(job_both, &s, &err), NS_ERR_FORMAT);
    ASSERT_EQ(decode_job(job_repeat, &s, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(strstr(ns_err_msg(&err), "repeated") != NULL);
    ASSERT_EQ(decode_job(job_badutf8, &s, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(strstr(ns_err_msg(&err), "UTF-8") != NULL);
    ASSERT_EQ(decode_job(job_range, &s, &err), NS_ERR_RANGE);
    ASSERT_EQ(decode_job(job_many_stops, &s, &err), NS_ERR_CAPACITY);
}

static void test_framing(void) {
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    ASSERT_EQ(zmq_bind(router, "inproc://t"), 0);
    ASSERT_EQ(zmq_connect(dealer, "inproc://t"), 0);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    ns_proto_pack_begin(&sb, &pk, 2, 99);
    ns_mp_pack_kv_int(&pk, "batch_id", 3);
    ns_proto_part parts[3] = {{"a", 1}, {"bb", 2}, {"ccc", 3}};
    ASSERT_OK(ns_proto_send(dealer, NULL, 0, false, NS_CMD_ENQUEUE, sb.data, sb.size, parts, 3, 0));
    ns_proto_rx *rx;
    ASSERT_OK(ns_proto_rx_create(&rx, 2)); /* room for 2 payload frames (+1 spare head slot) */
    ASSERT_OK(ns_proto_recv(router, 0, rx));
    ASSERT_OK(ns_proto_parse(rx, true, NULL));
    ASSERT_EQ(rx->cmd, NS_CMD_ENQUEUE);
    ASSERT_EQ(rx->n_payload, 3);
    ASSERT_EQ(ns_proto_body_rid(rx->body, rx->body_len), 99);
    size_t len;
    const uint8_t *p = ns_proto_payload(rx, 2, &len);
    ASSERT_TRUE(len == 3 && memcmp(p, "ccc", 3) == 0);
    /* Too many frames: read completely, flagged, identity kept for the reply. */
    ns_proto_part many[8];
    for (int i = 0; i < 8; i++) {
        many[i].data = "x";
        many[i].len = 1;
    }
    ASSERT_OK(ns_proto_send(dealer, NULL, 0, false, NS_CMD_ENQUEUE, sb.data, sb.size, many, 8, 0));
    ASSERT_OK(ns_proto_recv(router, 0, rx));
    ASSERT_TRUE(rx->oversized);
    ASSERT_EQ(ns_proto_parse(rx, true, NULL), NS_ERR_CAPACITY);
    ASSERT_TRUE(rx->identity != NULL);
    ASSERT_EQ(ns_proto_recv(router, ZMQ_DONTWAIT, rx), NS_ERR_TIMEOUT); /* nothing left over */
    /* Bad tag, bad command width. */
    zmq_send(dealer, "NSQ2", 4, ZMQ_SNDMORE);
    zmq_send(dealer, "\x01", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "\x80", 1, 0);
    ASSERT_OK(ns_proto_recv(router, 0, rx));
    ASSERT_EQ(ns_proto_parse(rx, true, NULL), NS_ERR_PROTOCOL);
    zmq_send(dealer, "NSQ1", 4, ZMQ_SNDMORE);
    zmq_send(dealer, "\x01\x02", 2, ZMQ_SNDMORE);
    zmq_send(dealer, "\x80", 1, 0);
    ASSERT_OK(ns_proto_recv(router, 0, rx));
    ASSERT_EQ(ns_proto_parse(rx, true, NULL), NS_ERR_PROTOCOL);
    /* Error replies carry valid UTF-8 even when the message was cut mid-character. */
    char msg[300];
    memset(msg, 'a', sizeof msg);
    memcpy(msg + 10, "\xe4\xb8", 2); /* truncated 3-byte sequence */
    msg[12] = 0;
    ns_proto_pack_error(&sb, 5, "bad_request", msg);
    ASSERT_OK(ns_mp_check((uint8_t *)sb.data, sb.size, NULL, NULL));
    ns_mp_reader r;
    uint32_t n;
    const char *k, *v;
    size_t kl, vl;
    ns_mp_reader_init(&r, sb.data, sb.size);
    ASSERT_OK(ns_mp_read_map(&r, &n));
    ASSERT_EQ(n, 3);
    for (uint32_t i = 0; i < n; i++) {
        ASSERT_OK(ns_mp_read_str(&r, &k, &kl));
        if (ns_mp_str_eq(k, kl, "message")) {
            ASSERT_OK(ns_mp_read_str(&r, &v, &vl));
            ASSERT_TRUE(ns_mp_str_eq(v, vl, "aaaaaaaaaa"));
        } else {
            ASSERT_OK(ns_mp_skip(&r));
        }
    }
    ns_proto_rx_destroy(&rx);
    msgpack_sbuffer_destroy(&sb);
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

int main(void) {
    test_validator();
    test_reader();
    test_jobs();
    test_framing();
    printf("test_mpack: ok\n");
    return 0;
}
