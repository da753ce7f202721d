/*
 * wk_job.c - building a job from a JOB message, and freeing it (wk_job.h).
 */
#include "wk_job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ns_util.h"

/* Generated text kept per job at most (a runaway max_tokens cannot exhaust
 * memory; the job then ends with finish_reason "length"). */
#define WK_TEXT_MAX ((size_t)64 << 20)

void wk_job_free(wk_job *j) {
    if (j == NULL) {
        return;
    }
    free(j->custom_id);
    free(j->prompt);
    for (size_t i = 0; j->stop_copies != NULL && i < j->sampling.n_stop; i++) {
        free(j->stop_copies[i]);
    }
    free(j->stop_copies);
    ns_buf_free(&j->text);
    free(j);
}

void wk_job_set_error(wk_job *j, const char *kind, bool retryable, const char *fmt, ...) {
    j->outcome = WK_OUT_FAILED;
    j->retryable = retryable;
    snprintf(j->err_kind, sizeof(j->err_kind), "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err_msg, sizeof(j->err_msg), fmt, ap);
    va_end(ap);
}

/* Render chat messages into a prompt (malloc'd, NUL-terminated). */
static ns_status render_chat(const ns_job_spec *spec, ns_chat_family fam, char **out, size_t *out_len, wk_job *j) {
    *out = NULL;
    ns_status st = NS_OK;
    ns_chat_msg *msgs = calloc(spec->n_messages ? spec->n_messages : 1, sizeof(*msgs));
    char *strings = malloc(spec->messages_len + 2 * (size_t)spec->n_messages + 1); /* all roles/contents + NULs */
    char *prompt = NULL;
    if (msgs == NULL || strings == NULL) {
        st = NS_ERR_NOMEM;
        goto done;
    }
    ns_chat_iter it;
    ns_chat_iter_init(&it, spec);
    size_t n = 0, off = 0;
    const char *role, *content;
    size_t rl, cl;
    while (n < spec->n_messages && ns_chat_iter_next(&it, &role, &rl, &content, &cl)) {
        msgs[n].role = strings + off;
        memcpy(strings + off, role, rl);
        off += rl;
        strings[off++] = '\0';
        msgs[n].content = strings + off;
        memcpy(strings + off, content, cl);
        off += cl;
        strings[off++] = '\0';
        n++;
    }
    size_t len = 0;
    st = ns_chat_apply(fam, msgs, n, true, NULL, 0, &len);
    if (st != NS_OK && st != NS_ERR_CAPACITY) {
        wk_job_set_error(j, "invalid_job", false, "chat template %s: %s", ns_chat_name(fam), ns_status_str(st));
        st = NS_OK;
        goto done;
    }
    prompt = malloc(len + 1);
    if (prompt == NULL) {
        st = NS_ERR_NOMEM;
        goto done;
    }
    st = ns_chat_apply(fam, msgs, n, true, prompt, len + 1, &len);
    if (st != NS_OK) {
        wk_job_set_error(j, "invalid_job", false, "chat template %s: %s", ns_chat_name(fam), ns_status_str(st));
        free(prompt);
        prompt = NULL;
        st = NS_OK;
        goto done;
    }
    *out = prompt;
    *out_len = len;
done:
    free(msgs);
    free(strings);
    return st;
}

static ns_status tokenize(const ns_tokenizer *tok, const char *text, size_t len, bool parse_special, wk_job *j) {
    size_t cap = len + 8, n = 0;
    for (int tries = 0; tries < 2; tries++) {
        int32_t *ids = malloc(cap * sizeof(*ids));
        if (ids == NULL) {
            return NS_ERR_NOMEM;
        }
        ns_err err = {0};
        ns_status st = ns_tokenizer_encode(tok, text, len, true, parse_special, ids, cap, &n, &err);
        if (st == NS_OK) {
            j->prompt = ids;
            j->n_prompt = n > INT32_MAX ? INT32_MAX : (int32_t)n;
            return NS_OK;
        }
        free(ids);
        if (st == NS_ERR_NOMEM) {
            return st;
        }
        if (st != NS_ERR_CAPACITY) {
            wk_job_set_error(j, "invalid_job", false, "tokenizer: %s", ns_err_msg(&err));
            return NS_OK;
        }
        cap = n;
    }
    wk_job_set_error(j, "invalid_job", false, "tokenizer: token count changed between calls");
    return NS_OK;
}

ns_status wk_job_prepare(const ns_job_msg *m, const wk_prep_ctx *pc, wk_job **out, ns_err *err) {
    *out = NULL;
    wk_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "out of memory");
    }
    const ns_job_spec *spec = &m->spec;
    j->job_id = m->job_id;
    j->batch_id = m->batch_id;
    j->attempt = m->attempt;
    j->t_recv = ns_time_s();
    j->finish_reason = NULL;
    j->custom_id = malloc(spec->custom_id_len + 1);
    if (j->custom_id == NULL) {
        goto nomem;
    }
    memcpy(j->custom_id, spec->custom_id, spec->custom_id_len);
    j->custom_id[spec->custom_id_len] = '\0';

    /* prompt text: raw, or chat messages through the template */
    char *rendered = NULL;
    const char *text = spec->prompt;
    size_t text_len = spec->prompt_len;
    bool chat = spec->messages != NULL;
    if (chat) {
        size_t rl = 0;
        if (render_chat(spec, pc->chat, &rendered, &rl, j) != NS_OK) {
            goto nomem;
        }
        if (j->outcome == WK_OUT_FAILED) {
            *out = j;
            return NS_OK;
        }
        text = rendered;
        text_len = rl;
    }
    /* Chat prompts contain the template's control tokens as text; raw prompts
     * are taken literally (as `nightshift generate -p` does). */
    ns_status st = tokenize(pc->tok, text != NULL ? text : "", text_len, chat, j);
    free(rendered);
    if (st != NS_OK) {
        goto nomem;
    }
    if (j->outcome == WK_OUT_FAILED) {
        *out = j;
        return NS_OK;
    }
    if (j->n_prompt < 1) {
        wk_job_set_error(j, "invalid_job", false, "the prompt is empty after tokenization");
        *out = j;
        return NS_OK;
    }
    if (j->n_prompt >= pc->ctx) {
        wk_job_set_error(j, "too_long", false,
                         "the prompt is %d tokens; this worker's context is %d tokens (prompt + at least 1 generated)",
                         j->n_prompt, pc->ctx);
        *out = j;
        return NS_OK;
    }
    int32_t max_tokens = spec->max_tokens;
    if (max_tokens > pc->ctx - j->n_prompt) {
        max_tokens = pc->ctx - j->n_prompt;
    }
    size_t max_piece = ns_tokenizer_max_piece_len(pc->tok) + 4;
    size_t text_max = ((size_t)max_tokens + 1) * max_piece;
    ns_buf_init(&j->text, text_max < WK_TEXT_MAX ? text_max : WK_TEXT_MAX);

    ns_sampler_params *sp = &j->sampling;
    ns_sampler_params_default(sp);
    sp->temperature = spec->temperature;
    sp->top_k = spec->top_k;
    sp->top_p = spec->top_p;
    sp->min_p = spec->min_p;
    sp->repeat_penalty = 1.0f;
    sp->frequency_penalty = 0.0f;
    sp->presence_penalty = 0.0f;
    sp->penalty_last_n = 0;
    /* A job without a seed gets one of its own (recorded nowhere: such jobs
     * are not meant to be reproducible). */
    sp->seed = spec->has_seed ? (uint64_t)spec->seed : ((uint64_t)m->job_id * 0x9E3779B97F4A7C15ull) ^ ns_time_ns();
    sp->max_tokens = max_tokens;
    sp->ignore_eos = false;
    sp->render_special = false;
    if (spec->n_stop > 0) {
        j->stop_copies = calloc(spec->n_stop, sizeof(*j->stop_copies));
        if (j->stop_copies == NULL) {
            goto nomem;
        }
        ns_chat_iter it;
        ns_stop_iter_init(&it, spec);
        const char *str;
        size_t len;
        while (sp->n_stop < spec->n_stop && ns_stop_iter_next(&it, &str, &len)) {
            char *c = malloc(len + 1);
            if (c == NULL) {
                goto nomem;
            }
            memcpy(c, str, len);
            c[len] = '\0';
            j->stop_copies[sp->n_stop++] = c;
        }
        sp->stop = (const char *const *)j->stop_copies;
    }
    *out = j;
    return NS_OK;
nomem:
    wk_job_free(j);
    return ns__err_set(err, NS_ERR_NOMEM, "out of memory preparing a job");
}
