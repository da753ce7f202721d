/*
 * cmd_submit.c - `nightshift submit`: stream a JSONL file of jobs into a new
 * batch (create, enqueue in chunks, seal) and print the batch id.
 *
 * Each line is either a native job ({"custom_id", "prompt" | "messages",
 * "max_tokens", "temperature", "top_k", "top_p", "min_p", "seed", "stop"})
 * or an OpenAI Batch API request line ({"custom_id", "method", "url",
 * "body": {"model", "messages" | "prompt", "max_tokens", ...}}), taken as it
 * is. docs/cli.md has the details.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "commands.h"
#include "ns_mpack.h"
#include "ns_proto.h"
#include "queue_client_util.h"

#define CHUNK_JOBS 1000
#define CHUNK_BYTES ((size_t)8 << 20)

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift submit --model NAME [options] FILE.jsonl\n"
               "\n"
               "Create a batch from a JSONL file (native jobs or OpenAI Batch API request lines),\n"
               "print its id on stdout. FILE may be - for stdin.\n"
               "\n"
               "  --model NAME          model the batch runs on (= a worker's --model-name);\n"
               "                        default: body.model of the first OpenAI line\n"
               "  --name NAME           batch name (default: the file name)\n"
               "  --priority N          higher runs first (default 0)\n"
               "  --max-attempts N      attempts per job, 1..100 (default 3)\n"
               "  --idempotency-key K   submitting twice with the same key creates one batch\n"
               "  --broker ENDPOINT     broker client socket (default $NIGHTSHIFT_BROKER or tcp://127.0.0.1:5555)\n"
               "  --data DIR            data dir of `nightshift up` (to find the broker)\n"
               "  -q, --quiet           no progress output\n");
}

/* A chunk of packed job maps. */
typedef struct chunk {
    msgpack_sbuffer sb;
    size_t off[CHUNK_JOBS + 1];
    long line[CHUNK_JOBS];
    uint32_t n;
} chunk;

static int pack_str(msgpack_packer *pk, const char *s) {
    return ns_mp_pack_strn(pk, s, strlen(s));
}

/* Pack OpenAI-style content: a string, or an array of parts whose text parts
 * are joined. Returns NULL on success or an error message. */
static const char *content_text(json_t *content, char **out) {
    *out = NULL;
    if (json_is_string(content)) {
        *out = strdup(json_string_value(content));
        return *out ? NULL : "out of memory";
    }
    if (!json_is_array(content)) {
        return "message 'content' must be a string or an array of text parts";
    }
    size_t total = 1, i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = json_string_value(json_object_get(part, "text"));
        if (type == NULL || strcmp(type, "text") != 0 || text == NULL) {
            return "only text content parts are supported";
        }
        total += strlen(text);
    }
    char *s = malloc(total);
    if (s == NULL) {
        return "out of memory";
    }
    s[0] = '\0';
    json_array_foreach(content, i, part) {
        strcat(s, json_string_value(json_object_get(part, "text")));
    }
    *out = s;
    return NULL;
}

static const char *pack_messages(msgpack_packer *pk, json_t *msgs) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        return "'messages' must be a non-empty array";
    }
    msgpack_pack_array(pk, (uint32_t)json_array_size(msgs));
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || role == NULL) {
            return "each message needs a string 'role'";
        }
        char *text = NULL;
        const char *e = content_text(json_object_get(m, "content"), &text);
        if (e != NULL) {
            return e;
        }
        msgpack_pack_map(pk, 2);
        pack_str(pk, "role");
        pack_str(pk, role);
        pack_str(pk, "content");
        pack_str(pk, text);
        free(text);
    }
    return NULL;
}

/* Convert one parsed line into a job map appended to c->sb. Returns NULL or
 * an error message. *model_seen gets body.model of OpenAI lines. */
static const char *pack_job(chunk *c, json_t *line, const char **model_seen) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->sb, msgpack_sbuffer_write);
    if (!json_is_object(line)) {
        return "each line must be a JSON object";
    }
    json_t *cid = json_object_get(line, "custom_id");
    if (!json_is_string(cid) || json_string_length(cid) == 0) {
        return "'custom_id' must be a non-empty string";
    }
    if (strlen(json_string_value(cid)) != json_string_length(cid)) {
        return "'custom_id' must not contain NUL";
    }
    json_t *src = line;
    bool openai = false;
    json_t *body = json_object_get(line, "body");
    if (json_is_object(body)) {
        src = body;
        openai = true;
        const char *method = json_string_value(json_object_get(line, "method"));
        if (method != NULL && strcmp(method, "POST") != 0) {
            return "OpenAI lines must use method POST";
        }
        const char *m = json_string_value(json_object_get(body, "model"));
        if (m != NULL) {
            *model_seen = m;
        }
        json_t *n = json_object_get(body, "n");
        if (json_is_integer(n) && json_integer_value(n) != 1) {
            return "'n' other than 1 is not supported";
        }
    }
    json_t *prompt = json_object_get(src, "prompt");
    json_t *messages = json_object_get(src, "messages");
    if ((prompt != NULL) == (messages != NULL)) {
        return openai ? "'body' needs exactly one of 'messages' or 'prompt'"
                      : "each job needs exactly one of 'prompt' or 'messages'";
    }
    if (prompt != NULL && !json_is_string(prompt)) {
        if (json_is_array(prompt) && json_array_size(prompt) == 1 && json_is_string(json_array_get(prompt, 0))) {
            prompt = json_array_get(prompt, 0); /* OpenAI allows a one-element list */
        } else {
            return "'prompt' must be a string";
        }
    }
    static const char *const int_keys[] = {"max_tokens", "top_k", "seed"};
    static const char *const num_keys[] = {"temperature", "top_p", "min_p"};
    json_t *max_tokens = json_object_get(src, "max_tokens");
    if (max_tokens == NULL) {
        max_tokens = json_object_get(src, "max_completion_tokens");
    }
    json_t *ints[3] = {max_tokens, json_object_get(src, "top_k"), json_object_get(src, "seed")};
    json_t *nums[3] = {json_object_get(src, "temperature"), json_object_get(src, "top_p"),
                       json_object_get(src, "min_p")};
    json_t *stop = json_object_get(src, "stop");
    uint32_t n = 2;
    for (int i = 0; i < 3; i++) {
        if (json_is_null(ints[i])) {
            ints[i] = NULL;
        }
        if (json_is_null(nums[i])) {
            nums[i] = NULL;
        }
        if (ints[i] != NULL && !json_is_integer(ints[i])) {
            static char msg[64];
            snprintf(msg, sizeof msg, "'%s' must be an integer", int_keys[i]);
            return msg;
        }
        if (nums[i] != NULL && !json_is_number(nums[i])) {
            static char msg[64];
            snprintf(msg, sizeof msg, "'%s' must be a number", num_keys[i]);
            return msg;
        }
        n += (ints[i] != NULL) + (nums[i] != NULL);
    }
    if (json_is_null(stop)) {
        stop = NULL;
    }
    if (stop != NULL) {
        if (!json_is_string(stop) && !json_is_array(stop)) {
            return "'stop' must be a string or an array of strings";
        }
        n++;
    }
    msgpack_pack_map(&pk, n);
    pack_str(&pk, "custom_id");
    ns_mp_pack_strn(&pk, json_string_value(cid), json_string_length(cid));
    if (prompt != NULL) {
        pack_str(&pk, "prompt");
        ns_mp_pack_strn(&pk, json_string_value(prompt), json_string_length(prompt));
    } else {
        pack_str(&pk, "messages");
        const char *e = pack_messages(&pk, messages);
        if (e != NULL) {
            return e;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (ints[i] != NULL) {
            ns_mp_pack_kv_int(&pk, int_keys[i], json_integer_value(ints[i]));
        }
        if (nums[i] != NULL) {
            ns_mp_pack_kv_double(&pk, num_keys[i], json_number_value(nums[i]));
        }
    }
    if (stop != NULL) {
        pack_str(&pk, "stop");
        if (json_is_string(stop)) {
            msgpack_pack_array(&pk, 1);
            ns_mp_pack_strn(&pk, json_string_value(stop), json_string_length(stop));
        } else {
            msgpack_pack_array(&pk, (uint32_t)json_array_size(stop));
            size_t i;
            json_t *s;
            json_array_foreach(stop, i, s) {
                if (!json_is_string(s)) {
                    return "'stop' must be a string or an array of strings";
                }
                ns_mp_pack_strn(&pk, json_string_value(s), json_string_length(s));
            }
        }
    }
    return NULL;
}

typedef struct submit {
    ns_client *cli;
    const char *model;
    const char *name;
    const char *idem;
    int64_t priority, max_attempts;
    int64_t batch_id;
    int64_t n_sent;
    bool existing; /* the idempotency key matched an earlier batch */
} submit;

static bool create_batch(submit *s) {
    uint32_t n = 3 + (s->idem != NULL) + (s->priority != 0) + (s->max_attempts > 0);
    msgpack_packer *pk = ns_client_begin(s->cli, n);
    ns_mp_pack_kv_str(pk, "name", s->name);
    ns_mp_pack_kv_str(pk, "model", s->model);
    if (s->idem != NULL) {
        ns_mp_pack_kv_str(pk, "idempotency_key", s->idem);
    }
    if (s->priority != 0) {
        ns_mp_pack_kv_int(pk, "priority", s->priority);
    }
    if (s->max_attempts > 0) {
        ns_mp_pack_kv_int(pk, "max_attempts", s->max_attempts);
    }
    json_t *r = qc_call(s->cli, "create batch", NS_CMD_CREATE_BATCH, NULL, 0, NULL, 0);
    if (r == NULL) {
        return false;
    }
    s->batch_id = qc_int(r, "batch_id");
    s->existing = json_is_false(json_object_get(r, "created"));
    json_decref(r);
    return s->batch_id > 0;
}

static bool send_chunk(submit *s, chunk *c) {
    if (s->existing) {
        s->n_sent += c->n; /* the earlier submission already holds these jobs */
        return true;
    }
    ns_proto_part parts[CHUNK_JOBS];
    for (uint32_t i = 0; i < c->n; i++) {
        parts[i].data = c->sb.data + c->off[i];
        parts[i].len = c->off[i + 1] - c->off[i];
    }
    msgpack_packer *pk = ns_client_begin(s->cli, 2);
    ns_mp_pack_kv_int(pk, "batch_id", s->batch_id);
    ns_client_reply rep;
    ns_status st = ns_client_call(s->cli, NS_CMD_ENQUEUE, parts, c->n, &rep);
    if (st != NS_OK) {
        fprintf(stderr, "nightshift: enqueue: %s\n",
                st == NS_ERR_TIMEOUT ? "no reply from the broker" : ns_client_errmsg(s->cli));
        return false;
    }
    if (rep.cmd == NS_CMD_ERROR) {
        /* Map "job N: ..." to the file's line number. */
        unsigned idx;
        const char *msg = rep.message;
        if (sscanf(msg, "job %u:", &idx) == 1 && idx < c->n) {
            const char *colon = strchr(msg, ':');
            const char *text = colon ? colon + 2 : msg;
            const char *rep_at = strstr(text, " repeats job ");
            unsigned other;
            if (rep_at != NULL && sscanf(rep_at, " repeats job %u", &other) == 1 && other < c->n) {
                fprintf(stderr, "nightshift: line %ld: %.*s repeats line %ld (%s)\n", c->line[idx],
                        (int)(rep_at - text), text, c->line[other], rep.code);
            } else {
                fprintf(stderr, "nightshift: line %ld: %s (%s)\n", c->line[idx], text, rep.code);
            }
        } else {
            fprintf(stderr, "nightshift: enqueue: %s: %s\n", rep.code, msg);
        }
        return false;
    }
    s->n_sent += c->n;
    return true;
}

static void cancel_partial(submit *s) {
    if (s->batch_id <= 0) {
        return;
    }
    msgpack_packer *pk = ns_client_begin(s->cli, 2);
    ns_mp_pack_kv_int(pk, "batch_id", s->batch_id);
    json_t *r = qc_call(s->cli, "cancel", NS_CMD_CANCEL, NULL, 0, NULL, 0);
    if (r != NULL) {
        fprintf(stderr, "nightshift: batch %" PRId64 " cancelled (nothing from it will run)\n", s->batch_id);
        json_decref(r);
    }
}

int ns_cmd_submit(int argc, char **argv) {
    submit s = {0};
    const char *broker = NULL, *data = NULL, *path = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_v = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (has_v && strcmp(a, "--model") == 0) {
            s.model = argv[++i];
        } else if (has_v && strcmp(a, "--name") == 0) {
            s.name = argv[++i];
        } else if (has_v && strcmp(a, "--idempotency-key") == 0) {
            s.idem = argv[++i];
        } else if (has_v && strcmp(a, "--priority") == 0) {
            s.priority = strtoll(argv[++i], NULL, 10);
        } else if (has_v && strcmp(a, "--max-attempts") == 0) {
            s.max_attempts = strtoll(argv[++i], NULL, 10);
            if (s.max_attempts < 1 || s.max_attempts > 100) {
                fprintf(stderr, "nightshift submit: --max-attempts must be 1..100\n");
                return 2;
            }
        } else if (has_v && strcmp(a, "--broker") == 0) {
            broker = argv[++i];
        } else if (has_v && strcmp(a, "--data") == 0) {
            data = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "nightshift submit: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        } else if (path == NULL) {
            path = a;
        } else {
            fprintf(stderr, "nightshift submit: one file at a time\n");
            return 2;
        }
    }
    if (path == NULL) {
        usage(stderr);
        return 2;
    }
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "nightshift submit: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct stat stt;
    long long file_size = (f != stdin && fstat(fileno(f), &stt) == 0) ? (long long)stt.st_size : 0;
    if (s.name == NULL) {
        const char *base = strrchr(path, '/');
        s.name = base != NULL ? base + 1 : path;
    }
    char epbuf[1024];
    const char *endpoint = qc_broker_endpoint(broker, data, epbuf, sizeof epbuf);
    s.cli = qc_connect(endpoint, 60000);
    if (s.cli == NULL) {
        if (f != stdin) {
            fclose(f);
        }
        return 1;
    }
    chunk *c = calloc(1, sizeof(*c));
    msgpack_sbuffer_init(&c->sb);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    long long bytes = 0;
    int rc = 0;
    const char *model_seen = NULL;
    char model_buf[300] = "";
    bool tty = !quiet && qc_tty();
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        bytes += len;
        size_t l = (size_t)len;
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) {
            l--;
        }
        if (l == 0) {
            continue; /* blank lines are allowed */
        }
        json_error_t je;
        json_t *j = json_loadb(line, l, 0, &je);
        if (j == NULL) {
            fprintf(stderr, "nightshift submit: line %ld: invalid JSON: %s (column %d)\n", lineno, je.text, je.column);
            rc = 1;
            break;
        }
        c->off[c->n] = c->sb.size;
        const char *e = pack_job(c, j, &model_seen);
        if (model_seen != NULL && model_buf[0] == '\0') {
            snprintf(model_buf, sizeof model_buf, "%s", model_seen);
        }
        json_decref(j);
        model_seen = NULL;
        if (e != NULL) {
            fprintf(stderr, "nightshift submit: line %ld: %s\n", lineno, e);
            rc = 1;
            break;
        }
        c->line[c->n++] = lineno;
        c->off[c->n] = c->sb.size;
        if (c->n == CHUNK_JOBS || c->sb.size >= CHUNK_BYTES) {
            if (s.batch_id == 0) {
                if (s.model == NULL) {
                    s.model = model_buf[0] ? model_buf : NULL;
                }
                if (s.model == NULL) {
                    fprintf(stderr, "nightshift submit: --model NAME is required\n");
                    rc = 2;
                    break;
                }
                if (!create_batch(&s)) {
                    rc = 1;
                    break;
                }
            }
            if (!send_chunk(&s, c)) {
                rc = 1;
                break;
            }
            msgpack_sbuffer_clear(&c->sb);
            c->n = 0;
            if (tty) {
                char bar[64];
                double frac = file_size > 0 ? (double)bytes / (double)file_size : 0;
                qc_bar(bar, sizeof bar, 30, frac);
                fprintf(stderr, "\r%s %3.0f%% %" PRId64 " jobs", bar, frac * 100, s.n_sent);
                fflush(stderr);
            }
        }
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "nightshift submit: %s: read error\n", path);
        rc = 1;
    }
    if (rc == 0 && c->n > 0) {
        if (s.batch_id == 0) {
            if (s.model == NULL) {
                s.model = model_buf[0] ? model_buf : NULL;
            }
            if (s.model == NULL) {
                fprintf(stderr, "nightshift submit: --model NAME is required\n");
                rc = 2;
            } else if (!create_batch(&s)) {
                rc = 1;
            }
        }
        if (rc == 0 && !send_chunk(&s, c)) {
            rc = 1;
        }
    }
    if (rc == 0 && s.n_sent == 0) {
        fprintf(stderr, "nightshift submit: %s has no jobs\n", path);
        rc = 1;
    }
    if (rc == 0 && s.existing) {
        fprintf(stderr, "nightshift submit: idempotency key matched batch %" PRId64 "; nothing new enqueued\n",
                s.batch_id);
    }
    if (rc == 0) {
        msgpack_packer *pk = ns_client_begin(s.cli, 2);
        ns_mp_pack_kv_int(pk, "batch_id", s.batch_id);
        json_t *r = qc_call(s.cli, "seal", NS_CMD_SEAL, NULL, 0, NULL, 0);
        if (r == NULL) {
            rc = 1;
        }
        json_decref(r);
    }
    if (tty) {
        fprintf(stderr, "\r\033[K");
    }
    if (rc == 0) {
        if (!quiet) {
            fprintf(stderr, "submitted %" PRId64 " jobs as batch %" PRId64 " (model %s)\n", s.n_sent, s.batch_id,
                    s.model);
        }
        printf("%" PRId64 "\n", s.batch_id);
    } else if (!s.existing) {
        cancel_partial(&s);
    }
    free(line);
    msgpack_sbuffer_destroy(&c->sb);
    free(c);
    ns_client_destroy(&s.cli);
    if (f != stdin) {
        fclose(f);
    }
    return rc;
}
