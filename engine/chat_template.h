/*
 * chat_template.h - turn chat messages into a prompt string for the common
 * chat-template families.
 *
 * This is not a Jinja interpreter. As llama.cpp's llm_chat_detect_template
 * does, the family is recognised by substrings of the model's
 * `tokenizer.chat_template` (or named explicitly), and each family's format
 * is written out in C. The prompt does not start with BOS: tokenize it with
 * add_special (BOS as the metadata says) and parse_special (so "<|im_end|>"
 * becomes its control token).
 *
 * Ownership: no allocation; the caller owns every buffer.
 * Thread safety: all functions are reentrant.
 */
#ifndef NS_CHAT_TEMPLATE_H
#define NS_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "gguf.h"
#include "ns_status.h"

typedef enum ns_chat_family {
    NS_CHAT_UNKNOWN = 0,
    NS_CHAT_CHATML,            /* <|im_start|>role\n...<|im_end|>\n (Qwen, many others) */
    NS_CHAT_LLAMA2,            /* [INST] ... [/INST], system text inlined */
    NS_CHAT_LLAMA2_SYS,        /* with <<SYS>>\n...\n<</SYS>>\n\n */
    NS_CHAT_LLAMA2_SYS_BOS,    /* and <s> before every later [INST] */
    NS_CHAT_LLAMA2_SYS_STRIP,  /* and message contents trimmed */
    NS_CHAT_LLAMA3,            /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    NS_CHAT_MISTRAL_V1,        /* " [INST] ... [/INST]" */
    NS_CHAT_MISTRAL_V3,        /* "[INST] ...[/INST]" */
    NS_CHAT_MISTRAL_V3_TEKKEN, /* "[INST]...[/INST]" */
    NS_CHAT_MISTRAL_V7,        /* [SYSTEM_PROMPT] ...[/SYSTEM_PROMPT][INST] ...[/INST] */
    NS_CHAT_MISTRAL_V7_TEKKEN, /* the same without the spaces */
    NS_CHAT_ZEPHYR,            /* <|role|>\n...<|endoftext|>\n */
    NS_CHAT_PHI3,              /* <|role|>\n...<|end|>\n */
    NS_CHAT_GEMMA,             /* <start_of_turn>user\n...<end_of_turn>\n, assistant = "model" */
    NS_CHAT_FAMILY_COUNT
} ns_chat_family;

/* One message; role is "system", "user" or "assistant" (other roles are
 * passed through where the family allows). Both strings NUL-terminated. */
typedef struct ns_chat_msg {
    const char *role;
    const char *content;
} ns_chat_msg;

/* Family of a template text (Jinja source or a family name such as
 * "chatml"); NS_CHAT_UNKNOWN when none is recognised, including families
 * llama.cpp knows but nightshift does not implement. */
ns_chat_family ns_chat_detect(const char *tmpl);

/* Family by its name ("chatml", "llama2", "llama2-sys", "llama2-sys-bos",
 * "llama2-sys-strip", "llama3", "mistral-v1", "mistral-v3",
 * "mistral-v3-tekken", "mistral-v7", "mistral-v7-tekken", "zephyr", "phi3",
 * "gemma"), or NS_CHAT_UNKNOWN. */
ns_chat_family ns_chat_from_name(const char *name);

/* Name of a family ("unknown" for NS_CHAT_UNKNOWN or bad values). */
const char *ns_chat_name(ns_chat_family f);

/* Pick the family for a model: `override` (a family name, may be NULL) wins;
 * otherwise the model's tokenizer.chat_template is detected; if that is
 * absent or unrecognised, ChatML is used and *fell_back (may be NULL) is set
 * true. An unknown override name is NS_ERR_INVALID_ARG. */
ns_status ns_chat_select(const ns_gguf *g, const char *override, ns_chat_family *out, bool *fell_back, ns_err *err);

/* Write the prompt for msgs[0..n) to out (NUL-terminated) and its length
 * (without the NUL) to *n_out. add_assistant appends the opening of an
 * assistant turn for families that have one. When out is too small (cap <
 * length + 1; out may be NULL with cap 0) returns NS_ERR_CAPACITY with *n_out
 * = the length. NS_ERR_INVALID_ARG for an unknown family or NULL strings. */
ns_status ns_chat_apply(ns_chat_family f, const ns_chat_msg *msgs, size_t n, bool add_assistant, char *out, size_t cap,
                        size_t *n_out);

#endif /* NS_CHAT_TEMPLATE_H */
