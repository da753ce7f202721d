/*
 * tokenizer.h - text <-> token ids from a GGUF file's tokenizer metadata.
 *
 * Two vocabulary kinds, chosen by `tokenizer.ggml.model`:
 *   - "llama" (SentencePiece BPE, SPM): score-ordered merges of adjacent
 *     UTF-8 symbols, spaces escaped as U+2581, an optional leading space
 *     (`tokenizer.ggml.add_space_prefix`, default true) and byte fallback to
 *     `<0xXX>` tokens;
 *   - "gpt2" (byte-level BPE): a pre-tokenizer regex chosen by
 *     `tokenizer.ggml.pre` splits the text into words, each word's bytes are
 *     mapped through GPT-2's byte<->unicode table and merged by the ranks in
 *     `tokenizer.ggml.merges`.
 * The results match llama.cpp's tokenizer (the reference tests check this).
 *
 * Special tokens: control (type 3) and user-defined (type 4) tokens are cut
 * out of the text before tokenizing, longest first. User-defined tokens are
 * always matched; control and unknown ones only with parse_special.
 *
 * Ownership: the tokenizer copies everything it needs out of the GGUF at load
 * time; the GGUF handle may be closed afterwards.
 * Thread safety: a loaded tokenizer is immutable. Every function taking a
 * `const ns_tokenizer *` may be called concurrently from many threads.
 * ns_detok is a small per-sequence value owned by its caller (one thread).
 */
#ifndef NS_TOKENIZER_H
#define NS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "ns_status.h"

typedef struct ns_tokenizer ns_tokenizer;

/* Vocabulary kind. */
typedef enum ns_tok_kind {
    NS_TOK_SPM = 1, /* tokenizer.ggml.model = "llama" */
    NS_TOK_BPE = 2, /* tokenizer.ggml.model = "gpt2" */
} ns_tok_kind;

/* Token types, as stored in `tokenizer.ggml.token_type`. */
typedef enum ns_token_type {
    NS_TOKEN_UNDEFINED = 0,
    NS_TOKEN_NORMAL = 1,
    NS_TOKEN_UNKNOWN = 2,
    NS_TOKEN_CONTROL = 3,
    NS_TOKEN_USER_DEFINED = 4,
    NS_TOKEN_UNUSED = 5,
    NS_TOKEN_BYTE = 6,
} ns_token_type;

/* Build a tokenizer from `g`'s metadata. Fails with NS_ERR_FORMAT (missing
 * or malformed tokenizer keys), NS_ERR_UNSUPPORTED (another tokenizer model)
 * or NS_ERR_NOMEM; `err` (may be NULL) says which key. */
ns_status ns_tokenizer_load(const ns_gguf *g, ns_tokenizer **out, ns_err *err);

/* Free and set *t to NULL. NULL-safe. */
void ns_tokenizer_free(ns_tokenizer **t);

/* Encode `text[0..len)` (any bytes; need not be NUL-terminated).
 * add_special: prepend BOS / append EOS as the metadata says
 * (ns_tokenizer_add_bos/add_eos). parse_special: turn the text of control
 * tokens ("<|im_end|>") into those tokens.
 * Writes up to `cap` ids to `out` (may be NULL when cap is 0) and the total
 * count to *n_out. When the ids do not fit, nothing is guaranteed about `out`
 * and NS_ERR_CAPACITY is returned with *n_out = the number needed.
 * Other errors: NS_ERR_NOMEM, NS_ERR_FORMAT (the pre-tokenizer regex failed,
 * e.g. PCRE2's match limit). Allocates scratch memory per call. */
ns_status ns_tokenizer_encode(const ns_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                              int32_t *out, size_t cap, size_t *n_out, ns_err *err);

/* The bytes a token stands for (cached at load; never NULL; *len may be 0).
 * Byte tokens give that byte, U+2581 becomes a space (SPM), byte-level BPE
 * text is unmapped to raw bytes. Control and unknown tokens give their text
 * when `special` is true and nothing otherwise; user-defined tokens always
 * give their text. A piece may be an incomplete UTF-8 sequence. The pointer
 * lives as long as the tokenizer. Out-of-range ids give "". */
const char *ns_tokenizer_piece(const ns_tokenizer *t, int32_t id, bool special, size_t *len);

/* Copy ns_tokenizer_piece() into buf (no NUL). NS_ERR_CAPACITY with *n_out =
 * bytes needed when it does not fit; NS_ERR_RANGE for a bad id. */
ns_status ns_tokenizer_token_to_piece(const ns_tokenizer *t, int32_t id, bool special, char *buf, size_t cap,
                                      size_t *n_out);

/* Decode a whole id sequence to bytes (pieces concatenated; may end in an
 * incomplete UTF-8 sequence). Same capacity convention as encode. */
ns_status ns_tokenizer_decode(const ns_tokenizer *t, const int32_t *ids, size_t n, bool special, char *buf, size_t cap,
                              size_t *n_out);

/* Vocabulary facts. Ids are -1 where the vocabulary has none. */
ns_tok_kind ns_tokenizer_kind(const ns_tokenizer *t);
const char *ns_tokenizer_pre(const ns_tokenizer *t); /* "spm", "llama3", "qwen2", "gpt2", ... */
int32_t ns_tokenizer_n_vocab(const ns_tokenizer *t);
int32_t ns_tokenizer_bos(const ns_tokenizer *t);
int32_t ns_tokenizer_eos(const ns_tokenizer *t);
int32_t ns_tokenizer_eot(const ns_tokenizer *t);
int32_t ns_tokenizer_unk(const ns_tokenizer *t);
bool ns_tokenizer_add_bos(const ns_tokenizer *t);
bool ns_tokenizer_add_eos(const ns_tokenizer *t);
size_t ns_tokenizer_max_piece_len(const ns_tokenizer *t); /* longest piece, special included */

/* True when `id` ends generation: EOS, EOT, EOM and tokens whose text is
 * <|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, ... */
bool ns_tokenizer_is_eog(const ns_tokenizer *t, int32_t id);

/* Type of a token (NS_TOKEN_UNDEFINED for out-of-range ids). Tokens that look
 * like end-of-turn markers are reported as CONTROL even when the file says
 * otherwise, as llama.cpp does. */
ns_token_type ns_tokenizer_token_type(const ns_tokenizer *t, int32_t id);

/* The token's text as stored in the vocabulary (NUL-terminated; "" when out
 * of range). */
const char *ns_tokenizer_token_text(const ns_tokenizer *t, int32_t id, size_t *len);

/* Exact vocabulary lookup: id of the token whose text is text[0..len), or -1. */
int32_t ns_tokenizer_find(const ns_tokenizer *t, const char *text, size_t len);

/*
 * Streaming detokenizer: turns ids into text one at a time and only ever
 * emits complete, valid UTF-8. Bytes of a character split across byte tokens
 * are held until the character is complete; invalid bytes become U+FFFD.
 * A plain value: embed it, init it, no allocation.
 */
#define NS_DETOK_MAX_PENDING 4

typedef struct ns_detok {
    const ns_tokenizer *tok;               /* borrowed */
    bool special;                          /* render control tokens' text */
    uint8_t n_pending;                     /* held bytes of an incomplete character */
    uint8_t pending[NS_DETOK_MAX_PENDING]; /* the held bytes */
} ns_detok;

void ns_detok_init(ns_detok *d, const ns_tokenizer *t, bool special);
void ns_detok_reset(ns_detok *d);

/* Bytes that one push can emit at most: max piece + held bytes, with every
 * byte possibly widened to U+FFFD (3 bytes). */
size_t ns_detok_max_out(const ns_tokenizer *t);

/* Append token `id`; write the text that became complete to out[0..cap) and
 * its length to *n_out. NS_ERR_CAPACITY (nothing consumed, state unchanged)
 * when cap is too small; ns_detok_max_out() is always enough. */
ns_status ns_detok_push(ns_detok *d, int32_t id, char *out, size_t cap, size_t *n_out);

/* End of stream: held bytes of an unfinished character become one U+FFFD.
 * cap >= 3 always suffices. */
ns_status ns_detok_flush(ns_detok *d, char *out, size_t cap, size_t *n_out);

#endif /* NS_TOKENIZER_H */
