/*
 * queue_client_util.h - shared helpers for the queue subcommands (submit,
 * status, watch, results, cancel, retry, workers, up, down): finding the
 * broker endpoint and data directory, calling the broker, turning msgpack
 * replies into jansson JSON, parsing batch ids, and terminal progress bars.
 *
 * Endpoint resolution (first match wins): --broker, $NIGHTSHIFT_BROKER, the
 * `broker` line of DATA/endpoints written by `nightshift up` (DATA =
 * --data, $NIGHTSHIFT_DATA or ~/.nightshift), tcp://127.0.0.1:5555.
 *
 * Ownership: returned JSON values are new references (json_decref them).
 * Thread safety: none needed (CLI).
 */
#ifndef NS_CLI_QUEUE_CLIENT_UTIL_H
#define NS_CLI_QUEUE_CLIENT_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ns_client.h"

#define QC_DEFAULT_BROKER "tcp://127.0.0.1:5555"

/* The data directory: `opt` when given, else $NIGHTSHIFT_DATA, else
 * $HOME/.nightshift. Writes into buf (cap bytes). */
const char *qc_data_dir(const char *opt, char *buf, size_t cap);

/* The broker endpoint as described above. Writes into buf when it comes
 * from the endpoints file. */
const char *qc_broker_endpoint(const char *opt, const char *data_opt, char *buf, size_t cap);

/* ---- the options every queue command shares ------------------------------
 *
 * Commands parse their arguments with qc_args_parse: -h/--help, --broker
 * ENDPOINT, --data DIR, --json (QC_ARG_JSON) and the BATCH id (QC_ARG_BATCH,
 * the first argument that does not start with '-') are handled here; every
 * other argument goes to the command's `extra` callback, in order. */
#define QC_ARG_JSON 1u  /* accept --json */
#define QC_ARG_BATCH 2u /* a BATCH id is required */

typedef struct qc_args {
    const char *broker; /* --broker, or NULL */
    const char *data;   /* --data, or NULL */
    const char *batch;  /* BATCH as given, or NULL */
    int64_t batch_id;   /* parsed BATCH (QC_ARG_BATCH) */
    bool json;          /* --json */
} qc_args;

/* What an `extra` callback did with argv[*i]. */
typedef enum qc_extra {
    QC_EXTRA_NO = 0,   /* not its option: usage error */
    QC_EXTRA_TAKEN,    /* consumed (it may advance *i past a value) */
    QC_EXTRA_REJECTED, /* bad value, already reported: exit 2 without usage */
} qc_extra;

typedef qc_extra (*qc_extra_fn)(void *user, const qc_args *a, int argc, char **argv, int *i);

/* Parse argv[1..argc) into *a (zeroed first). `extra` (may be NULL) sees the
 * arguments not handled here. Returns -1 to go on, or the exit code: 0 after
 * printing usage to stdout for --help, 2 after a usage error (usage to
 * stderr, or qc_parse_batch's message for a bad BATCH). */
int qc_args_parse(qc_args *a, unsigned flags, int argc, char **argv, void (*usage)(FILE *), qc_extra_fn extra,
                  void *user);

/* Connect to the broker the arguments name (qc_broker_endpoint); prints the
 * error and returns NULL on failure. */
ns_client *qc_open(const qc_args *a, int timeout_ms);

/* Call `cmd` with the body {batch_id} and return the reply as in qc_call. */
json_t *qc_call_batch(ns_client *c, const char *what, int cmd, int64_t batch_id);

/* Connect a client; prints the error and returns NULL on failure. */
ns_client *qc_connect(const char *endpoint, int timeout_ms);

/* Call `cmd` (body built with ns_client_begin) and return the reply body as
 * a JSON object (new reference), or NULL after printing why (timeout, error
 * reply with its code and message). *code (may be NULL) gets the error code
 * of an ERROR reply ("" otherwise). */
json_t *qc_call(ns_client *c, const char *what, int cmd, const ns_proto_part *payloads, size_t n_payloads, char *code,
                size_t code_cap);

/* A msgpack body (checked) as a JSON object; NULL when it cannot be converted. */
json_t *qc_body_json(const uint8_t *body, size_t len);

/* Parse a batch id ("42"); prints an error and returns false on bad input. */
bool qc_parse_batch(const char *s, int64_t *out);

/* Numbers from a JSON object (0 when absent or not a number). */
int64_t qc_int(const json_t *o, const char *key);
double qc_num(const json_t *o, const char *key);
const char *qc_str(const json_t *o, const char *key); /* "" when absent */

/* True when stderr is a terminal (progress bars go there). */
bool qc_tty(void);

/* Render "[#####.....]" of `width` cells for done/total into buf. */
void qc_bar(char *buf, size_t cap, int width, double frac);

/* Format seconds as "1h02m", "3m04s" or "12s". */
void qc_duration(char *buf, size_t cap, double s);

#endif /* NS_CLI_QUEUE_CLIENT_UTIL_H */
