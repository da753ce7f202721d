/*
 * job.c - decode, check and pack job maps (see ns_job.h).
 */
#include "ns_job.h"

#include <math.h>
#include <string.h>

/* Field bits, to reject repeated keys. */
enum {
    F_CUSTOM_ID = 1u << 0,
    F_PROMPT = 1u << 1,
    F_MESSAGES = 1u << 2,
    F_MAX_TOKENS = 1u << 3,
    F_TEMPERATURE = 1u << 4,
    F_TOP_K = 1u << 5,
    F_TOP_P = 1u << 6,
    F_MIN_P = 1u << 7,
    F_SEED = 1u << 8,
    F_STOP = 1u << 9,
    F_JOB_ID = 1u << 10,
    F_BATCH_ID = 1u << 11,
    F_ATTEMPT = 1u << 12,
    F_MODEL = 1u << 13,
    F_LEASE = 1u << 14,
    F_RID = 1u << 15,
};

static ns_status bad(ns_err *err, ns_status st, const char *field, const char *what) {
    return ns__err_set(err, st, "job field '%s': %s", field, what);
}

static ns_status read_text(ns_mp_reader *r, const char *field, size_t max, const char **s, size_t *len, ns_err *err) {
    if (ns_mp_read_str(r, s, len) != NS_OK) {
        return bad(err, NS_ERR_FORMAT, field, "expected a string");
    }
    if (*len > max) {
        return ns__err_set(err, NS_ERR_CAPACITY, "job field '%s': %zu bytes, limit %zu", field, *len, max);
    }
    if (!ns_mp_text_ok(*s, *len)) {
        return bad(err, NS_ERR_FORMAT, field, "not valid UTF-8 or contains a NUL byte");
    }
    return NS_OK;
}

static ns_status read_float(ns_mp_reader *r, const char *field, double lo, double hi, bool lo_open, float *out,
                            ns_err *err) {
    double d;
    if (ns_mp_read_double(r, &d) != NS_OK) {
        return bad(err, NS_ERR_FORMAT, field, "expected a number");
    }
    if (!isfinite(d) || d < lo || d > hi || (lo_open && d <= lo)) {
        return ns__err_set(err, NS_ERR_RANGE, "job field '%s': %g out of range", field, d);
    }
    *out = (float)d;
    return NS_OK;
}

static ns_status read_i64(ns_mp_reader *r, const char *field, int64_t lo, int64_t hi, int64_t *out, ns_err *err) {
    if (ns_mp_read_int(r, out) != NS_OK) {
        return bad(err, NS_ERR_FORMAT, field, "expected an integer");
    }
    if (*out < lo || *out > hi) {
        return ns__err_set(err, NS_ERR_RANGE, "job field '%s': %lld out of range [%lld, %lld]", field, (long long)*out,
                           (long long)lo, (long long)hi);
    }
    return NS_OK;
}

/* messages: array of maps with string role and content. */
static ns_status read_messages(ns_mp_reader *r, const ns_proto_limits *lim, ns_job_spec *spec, ns_err *err) {
    const uint8_t *start = r->p;
    uint32_t n;
    size_t total = 0;
    if (ns_mp_read_array(r, &n) != NS_OK) {
        return bad(err, NS_ERR_FORMAT, "messages", "expected an array");
    }
    if (n == 0) {
        return bad(err, NS_ERR_FORMAT, "messages", "empty");
    }
    if (n > lim->max_messages) {
        return ns__err_set(err, NS_ERR_CAPACITY, "job field 'messages': %u messages, limit %u", n, lim->max_messages);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t m;
        bool have_role = false, have_content = false;
        if (ns_mp_read_map(r, &m) != NS_OK) {
            return bad(err, NS_ERR_FORMAT, "messages", "each message must be a map");
        }
        for (uint32_t k = 0; k < m; k++) {
            const char *key, *s;
            size_t kl, sl;
            if (ns_mp_read_str(r, &key, &kl) != NS_OK) {
                return bad(err, NS_ERR_FORMAT, "messages", "message keys must be strings");
            }
            if (ns_mp_str_eq(key, kl, "role")) {
                NS_TRY(read_text(r, "messages.role", lim->max_name_bytes, &s, &sl, err));
                if (have_role || sl == 0) {
                    return bad(err, NS_ERR_FORMAT, "messages.role", "empty or repeated");
                }
                have_role = true;
            } else if (ns_mp_str_eq(key, kl, "content")) {
                NS_TRY(read_text(r, "messages.content", lim->max_prompt_bytes, &s, &sl, err));
                if (have_content) {
                    return bad(err, NS_ERR_FORMAT, "messages.content", "repeated");
                }
                have_content = true;
                total += sl;
                if (total > lim->max_prompt_bytes) {
                    return ns__err_set(err, NS_ERR_CAPACITY, "job field 'messages': contents exceed %zu bytes",
                                       lim->max_prompt_bytes);
                }
            } else if (ns_mp_skip(r) != NS_OK) {
                return bad(err, NS_ERR_FORMAT, "messages", "truncated");
            }
        }
        if (!have_role || !have_content) {
            return bad(err, NS_ERR_FORMAT, "messages", "each message needs a string 'role' and 'content'");
        }
    }
    spec->messages = start;
    spec->messages_len = (size_t)(r->p - start);
    spec->n_messages = n;
    return NS_OK;
}

static ns_status read_stop(ns_mp_reader *r, const ns_proto_limits *lim, ns_job_spec *spec, ns_err *err) {
    const uint8_t *start = r->p;
    uint32_t n;
    if (ns_mp_peek(r) == NS_MP_NIL) {
        ns_mp_read_nil(r);
        return NS_OK;
    }
    if (ns_mp_read_array(r, &n) != NS_OK) {
        return bad(err, NS_ERR_FORMAT, "stop", "expected an array of strings");
    }
    if (n > lim->max_stop) {
        return ns__err_set(err, NS_ERR_CAPACITY, "job field 'stop': %u strings, limit %u", n, lim->max_stop);
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *s;
        size_t sl;
        NS_TRY(read_text(r, "stop", lim->max_stop_bytes, &s, &sl, err));
        if (sl == 0) {
            return bad(err, NS_ERR_FORMAT, "stop", "empty stop string");
        }
    }
    if (n > 0) {
        spec->stop = start;
        spec->stop_len = (size_t)(r->p - start);
        spec->n_stop = n;
    }
    return NS_OK;
}

static void spec_defaults(ns_job_spec *s) {
    memset(s, 0, sizeof *s);
    s->max_tokens = NS_JOB_DEFAULT_MAX_TOKENS;
    s->temperature = NS_JOB_DEFAULT_TEMPERATURE;
    s->top_k = NS_JOB_DEFAULT_TOP_K;
    s->top_p = NS_JOB_DEFAULT_TOP_P;
    s->min_p = NS_JOB_DEFAULT_MIN_P;
}

/* Decode a job map; `msg` non-NULL also accepts the JOB message keys. */
static ns_status decode(const uint8_t *buf, size_t len, const ns_proto_limits *lim, ns_job_spec *spec, ns_job_msg *msg,
                        ns_err *err) {
    ns_mp_reader r;
    uint32_t n, seen = 0;
    if (lim == NULL) {
        lim = &ns_proto_default_limits;
    }
    spec_defaults(spec);
    ns_mp_reader_init(&r, buf, len);
    if (ns_mp_read_map(&r, &n) != NS_OK) {
        return ns__err_set(err, NS_ERR_FORMAT, "job: expected a map");
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        int64_t v;
        uint32_t bit = 0;
        if (ns_mp_read_str(&r, &k, &kl) != NS_OK) {
            return ns__err_set(err, NS_ERR_FORMAT, "job: map keys must be strings");
        }
#define KEY(name, b) (ns_mp_str_eq(k, kl, name) && (bit = (b)) != 0)
        if (KEY("custom_id", F_CUSTOM_ID)) {
            NS_TRY(read_text(&r, "custom_id", lim->max_custom_id_bytes, &spec->custom_id, &spec->custom_id_len, err));
        } else if (KEY("prompt", F_PROMPT)) {
            NS_TRY(read_text(&r, "prompt", lim->max_prompt_bytes, &spec->prompt, &spec->prompt_len, err));
        } else if (KEY("messages", F_MESSAGES)) {
            NS_TRY(read_messages(&r, lim, spec, err));
        } else if (KEY("max_tokens", F_MAX_TOKENS)) {
            NS_TRY(read_i64(&r, "max_tokens", 1, lim->max_max_tokens, &v, err));
            spec->max_tokens = (int32_t)v;
        } else if (KEY("temperature", F_TEMPERATURE)) {
            NS_TRY(read_float(&r, "temperature", 0.0, 100.0, false, &spec->temperature, err));
        } else if (KEY("top_k", F_TOP_K)) {
            NS_TRY(read_i64(&r, "top_k", 0, 1000000, &v, err));
            spec->top_k = (int32_t)v;
        } else if (KEY("top_p", F_TOP_P)) {
            NS_TRY(read_float(&r, "top_p", 0.0, 1.0, true, &spec->top_p, err));
        } else if (KEY("min_p", F_MIN_P)) {
            NS_TRY(read_float(&r, "min_p", 0.0, 1.0, false, &spec->min_p, err));
        } else if (KEY("seed", F_SEED)) {
            if (ns_mp_peek(&r) == NS_MP_NIL) {
                ns_mp_read_nil(&r);
            } else {
                NS_TRY(read_i64(&r, "seed", INT64_MIN, INT64_MAX, &spec->seed, err));
                spec->has_seed = true;
            }
        } else if (KEY("stop", F_STOP)) {
            NS_TRY(read_stop(&r, lim, spec, err));
        } else if (msg != NULL && KEY("job_id", F_JOB_ID)) {
            NS_TRY(read_i64(&r, "job_id", 1, INT64_MAX, &msg->job_id, err));
        } else if (msg != NULL && KEY("batch_id", F_BATCH_ID)) {
            NS_TRY(read_i64(&r, "batch_id", 1, INT64_MAX, &msg->batch_id, err));
        } else if (msg != NULL && KEY("attempt", F_ATTEMPT)) {
            NS_TRY(read_i64(&r, "attempt", 1, INT32_MAX, &v, err));
            msg->attempt = (int32_t)v;
        } else if (msg != NULL && KEY("lease_ms", F_LEASE)) {
            NS_TRY(read_i64(&r, "lease_ms", 0, INT64_MAX, &msg->lease_ms, err));
        } else if (msg != NULL && KEY("model", F_MODEL)) {
            NS_TRY(read_text(&r, "model", lim->max_name_bytes, &msg->model, &msg->model_len, err));
        } else if (ns_mp_skip(&r) != NS_OK) {
            return ns__err_set(err, NS_ERR_FORMAT, "job: truncated value");
        }
#undef KEY
        if (bit != 0) {
            if (seen & bit) {
                return ns__err_set(err, NS_ERR_FORMAT, "job: key '%.*s' repeated", (int)(kl > 64 ? 64 : kl), k);
            }
            seen |= bit;
        }
    }
    if (r.p != r.end) {
        return ns__err_set(err, NS_ERR_FORMAT, "job: trailing bytes after the map");
    }
    if (!(seen & F_CUSTOM_ID) || spec->custom_id_len == 0) {
        return ns__err_set(err, NS_ERR_FORMAT, "job: missing or empty 'custom_id'");
    }
    if (!!(seen & F_PROMPT) == !!(seen & F_MESSAGES)) {
        return ns__err_set(err, NS_ERR_FORMAT, "job '%.*s': exactly one of 'prompt' or 'messages' is required",
                           (int)(spec->custom_id_len > 64 ? 64 : spec->custom_id_len), spec->custom_id);
    }
    if (msg != NULL && (seen & (F_JOB_ID | F_BATCH_ID | F_ATTEMPT)) != (F_JOB_ID | F_BATCH_ID | F_ATTEMPT)) {
        return ns__err_set(err, NS_ERR_FORMAT, "job message: missing job_id, batch_id or attempt");
    }
    return NS_OK;
}

ns_status ns_job_spec_decode(const uint8_t *buf, size_t len, const ns_proto_limits *lim, ns_job_spec *out,
                             ns_err *err) {
    return decode(buf, len, lim, out, NULL, err);
}

ns_status ns_job_msg_decode(const uint8_t *buf, size_t len, const ns_proto_limits *lim, ns_job_msg *out, ns_err *err) {
    memset(out, 0, sizeof *out);
    return decode(buf, len, lim, &out->spec, out, err);
}

int ns_job_spec_pack(msgpack_packer *pk, const ns_job_spec *s, uint32_t extra) {
    uint32_t n = 7 + extra + (s->has_seed ? 1 : 0) + (s->stop ? 1 : 0);
    int rc = msgpack_pack_map(pk, n);
    rc |= ns_mp_pack_cstr(pk, "custom_id") | ns_mp_pack_strn(pk, s->custom_id, s->custom_id_len);
    if (s->prompt != NULL) {
        rc |= ns_mp_pack_cstr(pk, "prompt") | ns_mp_pack_strn(pk, s->prompt, s->prompt_len);
    } else {
        rc |= ns_mp_pack_cstr(pk, "messages");
        rc |= msgpack_pack_str_body(pk, s->messages, s->messages_len) != 0; /* raw, already msgpack */
    }
    rc |= ns_mp_pack_kv_int(pk, "max_tokens", s->max_tokens);
    rc |= ns_mp_pack_kv_double(pk, "temperature", s->temperature);
    rc |= ns_mp_pack_kv_int(pk, "top_k", s->top_k);
    rc |= ns_mp_pack_kv_double(pk, "top_p", s->top_p);
    rc |= ns_mp_pack_kv_double(pk, "min_p", s->min_p);
    if (s->has_seed) {
        rc |= ns_mp_pack_kv_int(pk, "seed", s->seed);
    }
    if (s->stop != NULL) {
        rc |= ns_mp_pack_cstr(pk, "stop");
        rc |= msgpack_pack_str_body(pk, s->stop, s->stop_len) != 0;
    }
    return rc;
}

void ns_chat_iter_init(ns_chat_iter *it, const ns_job_spec *spec) {
    it->left = 0;
    ns_mp_reader_init(&it->r, spec->messages, spec->messages ? spec->messages_len : 0);
    if (spec->messages != NULL && ns_mp_read_array(&it->r, &it->left) != NS_OK) {
        it->left = 0;
    }
}

bool ns_chat_iter_next(ns_chat_iter *it, const char **role, size_t *role_len, const char **content,
                       size_t *content_len) {
    uint32_t m;
    if (it->left == 0 || ns_mp_read_map(&it->r, &m) != NS_OK) {
        return false;
    }
    it->left--;
    *role = *content = NULL;
    *role_len = *content_len = 0;
    for (uint32_t k = 0; k < m; k++) {
        const char *key;
        size_t kl;
        if (ns_mp_read_str(&it->r, &key, &kl) != NS_OK) {
            return false;
        }
        if (ns_mp_str_eq(key, kl, "role")) {
            if (ns_mp_read_str(&it->r, role, role_len) != NS_OK) {
                return false;
            }
        } else if (ns_mp_str_eq(key, kl, "content")) {
            if (ns_mp_read_str(&it->r, content, content_len) != NS_OK) {
                return false;
            }
        } else if (ns_mp_skip(&it->r) != NS_OK) {
            return false;
        }
    }
    return *role != NULL && *content != NULL;
}

void ns_stop_iter_init(ns_chat_iter *it, const ns_job_spec *spec) {
    it->left = 0;
    ns_mp_reader_init(&it->r, spec->stop, spec->stop ? spec->stop_len : 0);
    if (spec->stop != NULL && ns_mp_read_array(&it->r, &it->left) != NS_OK) {
        it->left = 0;
    }
}

bool ns_stop_iter_next(ns_chat_iter *it, const char **s, size_t *len) {
    if (it->left == 0 || ns_mp_read_str(&it->r, s, len) != NS_OK) {
        return false;
    }
    it->left--;
    return true;
}
