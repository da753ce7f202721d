/*
 * cmd_results.c - `nightshift results BATCH [-o out.jsonl] [--errors]`:
 * export a batch's results in the OpenAI Batch API output format, one JSON
 * object per line (docs/cli.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ns_mpack.h"
#include "queue_client_util.h"

#define PAGE 1000

static void usage(FILE *f) {
    fprintf(f,
            "usage: nightshift results BATCH [-o OUT.jsonl] [--errors] [--broker ENDPOINT] [--data DIR]\n"
            "\n"
            "Write the batch's results as OpenAI Batch API output lines:\n"
            "  {\"id\", \"custom_id\", \"response\": {\"status_code\", \"request_id\", \"body\": {\"id\", \"object\",\n"
            "   \"created\", \"model\", \"choices\", \"usage\"}}, \"error\": null}\n"
            "--errors writes the failed and cancelled jobs instead, with \"response\": null and\n"
            "\"error\": {\"code\", \"message\"} (the last attempt's error).\n"
            "Results of jobs still running are not included; run it again when the batch is done.\n");
}

static json_t *ok_line(const json_t *it, const char *model) {
    int64_t job_id = qc_int(it, "job_id");
    bool chat = !json_is_false(json_object_get(it, "chat")); /* text_completion when the broker says prompt job */
    char idbuf[64], reqbuf[64], cmpl[64];
    snprintf(idbuf, sizeof idbuf, "batch_req_%" PRId64, job_id);
    snprintf(reqbuf, sizeof reqbuf, "req_%" PRId64 "_%" PRId64, job_id, qc_int(it, "attempt"));
    snprintf(cmpl, sizeof cmpl, "%s-%" PRId64, chat ? "chatcmpl" : "cmpl", job_id);
    json_t *text = json_object_get(it, "text");
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (chat) {
        json_object_set_new(choice, "message",
                            json_pack("{s:s, s:O}", "role", "assistant", "content", text ? text : json_string("")));
    } else {
        json_object_set(choice, "text", text ? text : json_string(""));
        json_object_set_new(choice, "logprobs", json_null());
    }
    json_object_set_new(choice, "finish_reason", json_string(qc_str(it, "finish_reason")));
    int64_t pt = qc_int(it, "prompt_tokens"), ct = qc_int(it, "completion_tokens");
    json_t *body =
        json_pack("{s:s, s:s, s:I, s:s, s:[o], s:{s:I, s:I, s:I}}", "id", cmpl, "object",
                  chat ? "chat.completion" : "text_completion", "created", (json_int_t)qc_num(it, "finished_at"),
                  "model", model, "choices", choice, "usage", "prompt_tokens", (json_int_t)pt, "completion_tokens",
                  (json_int_t)ct, "total_tokens", (json_int_t)(pt + ct));
    return json_pack("{s:s, s:O, s:{s:i, s:s, s:o}, s:n}", "id", idbuf, "custom_id", json_object_get(it, "custom_id"),
                     "response", "status_code", 200, "request_id", reqbuf, "body", body, "error");
}

static json_t *err_line(const json_t *it) {
    int64_t job_id = qc_int(it, "job_id");
    char idbuf[64];
    snprintf(idbuf, sizeof idbuf, "batch_req_%" PRId64, job_id);
    const char *state = qc_str(it, "state");
    json_t *errs = json_object_get(it, "errors");
    json_t *last =
        json_is_array(errs) && json_array_size(errs) > 0 ? json_array_get(errs, json_array_size(errs) - 1) : NULL;
    const char *code = last ? qc_str(last, "kind") : "";
    const char *msg = last ? qc_str(last, "message") : "";
    if (strcmp(state, "cancelled") == 0) {
        code = "cancelled";
        msg = "the job was cancelled before it finished";
    } else if (code[0] == '\0') {
        code = "failed";
        msg = "the job failed";
    }
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (json_is_array(errs)) {
        json_object_set(e, "attempts", errs); /* every attempt's error, oldest first */
    }
    return json_pack("{s:s, s:O, s:n, s:o}", "id", idbuf, "custom_id", json_object_get(it, "custom_id"), "response",
                     "error", e);
}

typedef struct results_opts {
    const char *out_path; /* -o, or NULL */
    bool errors;          /* --errors */
} results_opts;

/* --errors, -o/--output FILE. */
static qc_extra take_opt(void *user, const qc_args *a, int argc, char **argv, int *i) {
    results_opts *o = user;
    (void)a;
    if (strcmp(argv[*i], "--errors") == 0) {
        o->errors = true;
        return QC_EXTRA_TAKEN;
    }
    if (*i + 1 < argc && (strcmp(argv[*i], "-o") == 0 || strcmp(argv[*i], "--output") == 0)) {
        o->out_path = argv[++*i];
        return QC_EXTRA_TAKEN;
    }
    return QC_EXTRA_NO;
}

int ns_cmd_results(int argc, char **argv) {
    qc_args a;
    results_opts o = {.out_path = NULL, .errors = false};
    int rc = qc_args_parse(&a, QC_ARG_BATCH, argc, argv, usage, take_opt, &o);
    if (rc >= 0) {
        return rc;
    }
    int64_t id = a.batch_id;
    const char *out_path = o.out_path;
    bool errors = o.errors;
    ns_client *c = qc_open(&a, 30000);
    if (c == NULL) {
        return 1;
    }
    json_t *st = qc_call_batch(c, "status", NS_CMD_STATUS, id);
    if (st == NULL) {
        ns_client_destroy(&c);
        return 1;
    }
    char model[300];
    snprintf(model, sizeof model, "%s", qc_str(st, "model"));
    bool done = json_is_true(json_object_get(st, "done"));
    int64_t running = qc_int(st, "queued") + qc_int(st, "running");
    json_decref(st);

    FILE *out = stdout;
    if (out_path != NULL && strcmp(out_path, "-") != 0) {
        out = fopen(out_path, "w");
        if (out == NULL) {
            fprintf(stderr, "nightshift results: %s: %s\n", out_path, strerror(errno));
            ns_client_destroy(&c);
            return 1;
        }
    }
    rc = 0;
    int64_t after = 0, n = 0;
    for (;;) {
        msgpack_packer *pk = ns_client_begin(c, 5);
        ns_mp_pack_kv_int(pk, "batch_id", id);
        ns_mp_pack_kv_int(pk, "after", after);
        ns_mp_pack_kv_int(pk, "limit", PAGE);
        ns_mp_pack_kv_bool(pk, "errors", errors);
        json_t *r = qc_call(c, "results", NS_CMD_RESULTS, NULL, 0, NULL, 0);
        if (r == NULL) {
            rc = 1;
            break;
        }
        json_t *items = json_object_get(r, "items");
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            json_t *line = errors ? err_line(it) : ok_line(it, model);
            if (line == NULL || json_dumpf(line, out, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
                fputc('\n', out) == EOF) {
                rc = 1;
            }
            json_decref(line);
            n++;
        }
        bool more = json_is_true(json_object_get(r, "more"));
        int64_t next = qc_int(r, "next");
        json_decref(r);
        if (rc != 0 || !more || next <= after) {
            break;
        }
        after = next;
    }
    if (out != stdout) {
        if (fclose(out) != 0) {
            rc = 1;
        }
    } else {
        fflush(out);
    }
    if (rc != 0) {
        fprintf(stderr, "nightshift results: export failed\n");
    } else {
        fprintf(stderr, "%" PRId64 " %s written%s\n", n, errors ? "errors" : "results",
                done          ? ""
                : running > 0 ? " (the batch is still running: more to come)"
                              : "");
    }
    ns_client_destroy(&c);
    return rc;
}
