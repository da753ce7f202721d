/*
 * queue_client_util.c - helpers shared by the queue subcommands (see
 * queue_client_util.h).
 */
#include "queue_client_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ns_buf.h"
#include "ns_mpack.h"

const char *qc_data_dir(const char *opt, char *buf, size_t cap) {
    if (opt != NULL && opt[0] != '\0') {
        return opt;
    }
    const char *env = getenv("NIGHTSHIFT_DATA");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    const char *home = getenv("HOME");
    snprintf(buf, cap, "%s/.nightshift", home != NULL && home[0] != '\0' ? home : ".");
    return buf;
}

const char *qc_broker_endpoint(const char *opt, const char *data_opt, char *buf, size_t cap) {
    if (opt != NULL && opt[0] != '\0') {
        return opt;
    }
    const char *env = getenv("NIGHTSHIFT_BROKER");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    char dir[1024], path[1200];
    snprintf(path, sizeof path, "%s/endpoints", qc_data_dir(data_opt, dir, sizeof dir));
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char line[1024];
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "broker=", 7) == 0) {
                line[strcspn(line, "\r\n")] = '\0';
                snprintf(buf, cap, "%s", line + 7);
                fclose(f);
                return buf;
            }
        }
        fclose(f);
    }
    return QC_DEFAULT_BROKER;
}

ns_client *qc_connect(const char *endpoint, int timeout_ms) {
    ns_client *c = NULL;
    if (ns_client_create(&c, endpoint, timeout_ms) != NS_OK) {
        fprintf(stderr, "nightshift: cannot connect to the broker at %s\n", endpoint);
        return NULL;
    }
    return c;
}

int qc_args_parse(qc_args *a, unsigned flags, int argc, char **argv, void (*usage)(FILE *), qc_extra_fn extra,
                  void *user) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if ((flags & QC_ARG_JSON) != 0 && strcmp(s, "--json") == 0) {
            a->json = true;
        } else if (i + 1 < argc && strcmp(s, "--broker") == 0) {
            a->broker = argv[++i];
        } else if (i + 1 < argc && strcmp(s, "--data") == 0) {
            a->data = argv[++i];
        } else if ((flags & QC_ARG_BATCH) != 0 && a->batch == NULL && s[0] != '-') {
            a->batch = s;
        } else {
            qc_extra e = extra != NULL ? extra(user, a, argc, argv, &i) : QC_EXTRA_NO;
            if (e == QC_EXTRA_REJECTED) {
                return 2;
            }
            if (e != QC_EXTRA_TAKEN) {
                usage(stderr);
                return 2;
            }
        }
    }
    if ((flags & QC_ARG_BATCH) != 0) {
        if (a->batch == NULL) {
            usage(stderr);
            return 2;
        }
        if (!qc_parse_batch(a->batch, &a->batch_id)) {
            return 2;
        }
    }
    return -1;
}

ns_client *qc_open(const qc_args *a, int timeout_ms) {
    char epbuf[1024];
    return qc_connect(qc_broker_endpoint(a->broker, a->data, epbuf, sizeof epbuf), timeout_ms);
}

json_t *qc_call_batch(ns_client *c, const char *what, int cmd, int64_t batch_id) {
    msgpack_packer *pk = ns_client_begin(c, 2);
    ns_mp_pack_kv_int(pk, "batch_id", batch_id);
    return qc_call(c, what, cmd, NULL, 0, NULL, 0);
}

json_t *qc_body_json(const uint8_t *body, size_t len) {
    ns_buf b;
    ns_buf_init(&b, (size_t)256 << 20);
    ns_mp_reader r;
    ns_mp_reader_init(&r, body, len);
    json_t *out = NULL;
    if (ns_mp_to_json(&r, &b, NULL) == NS_OK) {
        json_error_t e;
        out = json_loadb((const char *)b.data, b.len, JSON_DECODE_ANY, &e);
    }
    ns_buf_free(&b);
    if (out != NULL && !json_is_object(out)) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

json_t *qc_call(ns_client *c, const char *what, int cmd, const ns_proto_part *payloads, size_t n_payloads, char *code,
                size_t code_cap) {
    ns_client_reply rep;
    if (code != NULL && code_cap > 0) {
        code[0] = '\0';
    }
    ns_status st = ns_client_call(c, cmd, payloads, n_payloads, &rep);
    if (st != NS_OK) {
        if (st == NS_ERR_TIMEOUT) {
            fprintf(stderr, "nightshift: %s: no reply from the broker (is it running? see `nightshift up`)\n", what);
        } else {
            fprintf(stderr, "nightshift: %s: %s\n", what, ns_client_errmsg(c));
        }
        if (code != NULL && code_cap > 0) {
            snprintf(code, code_cap, "%s", st == NS_ERR_TIMEOUT ? "timeout" : "io");
        }
        return NULL;
    }
    if (rep.cmd == NS_CMD_ERROR) {
        fprintf(stderr, "nightshift: %s: %s: %s\n", what, rep.code, rep.message);
        if (code != NULL && code_cap > 0) {
            snprintf(code, code_cap, "%s", rep.code);
        }
        return NULL;
    }
    json_t *j = qc_body_json(rep.body, rep.body_len);
    if (j == NULL) {
        fprintf(stderr, "nightshift: %s: the broker's reply could not be read\n", what);
    }
    return j;
}

bool qc_parse_batch(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1) {
        fprintf(stderr, "nightshift: '%s' is not a batch id (a positive integer)\n", s);
        return false;
    }
    *out = v;
    return true;
}

int64_t qc_int(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    if (json_is_real(v)) {
        return (int64_t)json_real_value(v);
    }
    return 0;
}

double qc_num(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

const char *qc_str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

bool qc_tty(void) {
    return isatty(STDERR_FILENO) != 0;
}

void qc_bar(char *buf, size_t cap, int width, double frac) {
    if (cap < (size_t)width + 3) {
        buf[0] = '\0';
        return;
    }
    if (frac < 0) {
        frac = 0;
    }
    if (frac > 1) {
        frac = 1;
    }
    int fill = (int)(frac * width + 0.5);
    size_t o = 0;
    buf[o++] = '[';
    for (int i = 0; i < width; i++) {
        buf[o++] = i < fill ? '#' : '.';
    }
    buf[o++] = ']';
    buf[o] = '\0';
}

void qc_duration(char *buf, size_t cap, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, cap, "?");
    } else if (s >= 3600) {
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    } else if (s >= 60) {
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    } else {
        snprintf(buf, cap, "%ds", (int)s);
    }
}
