/*
 * sampler.h - per-sequence token sampling, logits in, token out, with the
 * bookkeeping that ends a generation: max_tokens, end-of-generation tokens
 * and stop strings that may span token boundaries.
 *
 * The chain follows llama.cpp's default order:
 *   penalties (repetition, frequency, presence over the last N tokens)
 *   -> top-k -> top-p -> min-p -> temperature -> draw with the sequence's RNG.
 * Temperature <= 0 is greedy: the argmax after penalties (lowest id on ties).
 * top-k, top-p and min-p act on the untempered distribution, as in llama.cpp.
 * Each sampler has its own xoshiro256** state seeded from params.seed, so
 * the same seed and the same logits give the same tokens.
 *
 * Text: accepted tokens are detokenized (complete UTF-8 only) into a hold
 * buffer. Text that could still be the start of a stop string is held back;
 * everything else is released in ns_sample_result.text. When a stop string
 * completes, the text before it is released and the sequence finishes; the
 * stop string itself is not part of the output. EOG tokens add no text.
 *
 * Memory: ns_sampler_create allocates everything; sampling and accepting
 * never allocate. The n_vocab-sized scratch lives in an ns_sampler_ws, which
 * many samplers may share as long as they are used from one thread at a time
 * (e.g. one workspace per scheduler thread); pass NULL to give a sampler its
 * own.
 * Thread safety: a sampler (and a workspace) is used by one thread at a time.
 */
#ifndef NS_SAMPLER_H
#define NS_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ns_status.h"
#include "tokenizer.h"

typedef struct ns_sampler ns_sampler;
typedef struct ns_sampler_ws ns_sampler_ws;

typedef struct ns_sampler_params {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off; else in (0, 1) */
    float min_p;             /* <= 0: off; else in (0, 1] */
    float repeat_penalty;    /* 1: off; > 0. Positive logits are divided by it, others multiplied */
    float frequency_penalty; /* 0: off; subtracted once per occurrence in the window */
    float presence_penalty;  /* 0: off; subtracted once if present in the window */
    int32_t penalty_last_n;  /* window of recent tokens (prompt included if fed) the penalties see; 0: off */
    uint64_t seed;           /* RNG seed of this sequence */
    int32_t max_tokens;      /* generated tokens before NS_FINISH_LENGTH; <= 0: no limit */
    const char *const *stop; /* stop strings (valid UTF-8, non-empty); copied at create */
    size_t n_stop;
    bool ignore_eos;     /* EOG tokens do not end the sequence (their text is then rendered) */
    bool render_special; /* control tokens' text appears in the output text */
} ns_sampler_params;

/* Why a sequence finished. */
typedef enum ns_finish {
    NS_FINISH_NONE = 0, /* still running */
    NS_FINISH_EOG,      /* an end-of-generation token was sampled */
    NS_FINISH_LENGTH,   /* max_tokens reached */
    NS_FINISH_STOP,     /* a stop string completed */
} ns_finish;

/* Outcome of one accepted token. */
typedef struct ns_sample_result {
    int32_t token;      /* the accepted token */
    ns_finish finish;   /* NS_FINISH_NONE while the sequence goes on */
    int32_t stop_index; /* NS_FINISH_STOP: index into params.stop; else -1 */
    const char *text;   /* text released by this step (valid UTF-8, not NUL-terminated); valid until the next call */
    size_t text_len;
} ns_sample_result;

/* llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * no penalties (window 64), seed 0, no max_tokens, no stop strings. */
void ns_sampler_params_default(ns_sampler_params *p);

/* Scratch for sampling over n_vocab logits (about 20 bytes per token). */
ns_status ns_sampler_ws_create(int32_t n_vocab, ns_sampler_ws **out, ns_err *err);
void ns_sampler_ws_destroy(ns_sampler_ws **ws); /* NULL-safe; sets *ws = NULL */

/* Create a sampler for one sequence. `tok` (borrowed, may be NULL) gives EOG
 * ids and text; without it there is no text, no EOG check and stop strings
 * are refused. `ws` (borrowed, may be NULL: then the sampler owns one) must
 * be sized for n_vocab. Bad parameters give NS_ERR_INVALID_ARG with the
 * reason in err. */
ns_status ns_sampler_create(const ns_tokenizer *tok, int32_t n_vocab, const ns_sampler_params *p, ns_sampler_ws *ws,
                            ns_sampler **out, ns_err *err);
void ns_sampler_destroy(ns_sampler **s); /* NULL-safe; sets *s = NULL */

/* Reseed and clear all history (window, counters, held text) keeping the
 * parameters, as if freshly created. */
void ns_sampler_reset(ns_sampler *s);

/* Feed prompt tokens into the penalty window (no text, not counted toward
 * max_tokens). */
void ns_sampler_accept_prompt(ns_sampler *s, const int32_t *ids, size_t n);

/* Run the chain over logits[0..n_vocab) and return the chosen token. Does
 * not change the sequence's history (only its RNG state). */
int32_t ns_sampler_sample(ns_sampler *s, const float *logits);

/* Accept a token (sampled here or forced by the caller): update the penalty
 * window, count it, detokenize it and check EOG / stop strings / max_tokens.
 * NS_ERR_STATE once the sequence has finished; NS_ERR_RANGE for a bad id. */
ns_status ns_sampler_accept(ns_sampler *s, int32_t token, ns_sample_result *res);

/* ns_sampler_sample + ns_sampler_accept. */
ns_status ns_sampler_step(ns_sampler *s, const float *logits, ns_sample_result *res);

int32_t ns_sampler_n_generated(const ns_sampler *s); /* tokens accepted (prompt excluded) */
ns_finish ns_sampler_finish(const ns_sampler *s);    /* NS_FINISH_NONE while running */

#endif /* NS_SAMPLER_H */
