/*
 * chat_template.c - chat-template family detection and prompt formatting.
 *
 * Detection follows llama.cpp's llm_chat_detect_template check order, so a
 * template is assigned the same family llama.cpp would give it; families
 * that llama.cpp detects but we do not implement map to NS_CHAT_UNKNOWN
 * rather than to a wrong neighbour. The formats are llama.cpp's
 * llm_chat_apply_template for the same families.
 *
 * Ownership: writes only into the caller's buffer. Thread safety: reentrant.
 */
#include <ctype.h>
#include <string.h>

#include "chat_template.h"

static const char *const k_names[NS_CHAT_FAMILY_COUNT] = {
    [NS_CHAT_UNKNOWN] = "unknown",
    [NS_CHAT_CHATML] = "chatml",
    [NS_CHAT_LLAMA2] = "llama2",
    [NS_CHAT_LLAMA2_SYS] = "llama2-sys",
    [NS_CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [NS_CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [NS_CHAT_LLAMA3] = "llama3",
    [NS_CHAT_MISTRAL_V1] = "mistral-v1",
    [NS_CHAT_MISTRAL_V3] = "mistral-v3",
    [NS_CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
    [NS_CHAT_MISTRAL_V7] = "mistral-v7",
    [NS_CHAT_MISTRAL_V7_TEKKEN] = "mistral-v7-tekken",
    [NS_CHAT_ZEPHYR] = "zephyr",
    [NS_CHAT_PHI3] = "phi3",
    [NS_CHAT_GEMMA] = "gemma",
};

const char *ns_chat_name(ns_chat_family f) {
    if ((int)f < 0 || f >= NS_CHAT_FAMILY_COUNT) {
        return "unknown";
    }
    return k_names[f];
}

ns_chat_family ns_chat_from_name(const char *name) {
    if (name == NULL) {
        return NS_CHAT_UNKNOWN;
    }
    for (int f = 1; f < NS_CHAT_FAMILY_COUNT; f++) {
        if (strcmp(name, k_names[f]) == 0) {
            return (ns_chat_family)f;
        }
    }
    return NS_CHAT_UNKNOWN;
}

static bool view_has(const char *t, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m == 0 || m > n) {
        return m == 0;
    }
    for (size_t i = 0; i + m <= n; i++) {
        const char *p = memchr(t + i, needle[0], n - m - i + 1);
        if (p == NULL) {
            return false;
        }
        i = (size_t)(p - t);
        if (memcmp(p, needle, m) == 0) {
            return true;
        }
    }
    return false;
}

/* Detection over a (ptr, len) view: GGUF strings are not NUL-terminated. */
static ns_chat_family detect_view(const char *tmpl, size_t len) {
    for (int f = 1; f < NS_CHAT_FAMILY_COUNT; f++) {
        if (strlen(k_names[f]) == len && memcmp(tmpl, k_names[f], len) == 0) {
            return (ns_chat_family)f;
        }
    }
#define HAS(s) view_has(tmpl, len, (s))
    if (HAS("<|im_start|>")) {
        /* phi4 (<|im_sep|>) and SmolVLM look like ChatML but are not */
        return HAS("<|im_sep|>") || HAS("<end_of_utterance>") ? NS_CHAT_UNKNOWN : NS_CHAT_CHATML;
    }
    if ((len >= 7 && memcmp(tmpl, "mistral", 7) == 0) || HAS("[INST]")) {
        if (HAS("[SYSTEM_PROMPT]")) {
            return NS_CHAT_MISTRAL_V7;
        }
        if (HAS("' [INST] ' + system_message") || HAS("[AVAILABLE_TOOLS]")) {
            if (HAS(" [INST]")) {
                return NS_CHAT_MISTRAL_V1;
            }
            if (HAS("\"[INST]\"")) {
                return NS_CHAT_MISTRAL_V3_TEKKEN;
            }
            return NS_CHAT_MISTRAL_V3;
        }
        if (HAS("content.strip()")) {
            return NS_CHAT_LLAMA2_SYS_STRIP;
        }
        if (HAS("bos_token + '[INST]")) {
            return NS_CHAT_LLAMA2_SYS_BOS;
        }
        return HAS("<<SYS>>") ? NS_CHAT_LLAMA2_SYS : NS_CHAT_LLAMA2;
    }
    if (HAS("<|assistant|>") && HAS("<|end|>")) {
        return NS_CHAT_PHI3;
    }
    if (HAS("[gMASK]<sop>") || (HAS("<|assistant|>") && HAS("<|user|>")) ||
        (HAS("<|{{ item['role'] }}|>") && HAS("<|begin_of_image|>"))) {
        return NS_CHAT_UNKNOWN; /* chatglm4, falcon3, glmedge */
    }
    if (HAS("<|user|>") && HAS("<|endoftext|>")) {
        return NS_CHAT_ZEPHYR;
    }
    if (HAS("bos_token + message['role']")) {
        return NS_CHAT_UNKNOWN; /* monarch */
    }
    if (HAS("<start_of_turn>")) {
        return NS_CHAT_GEMMA;
    }
    if (HAS("'\\n\\nAssistant: ' + eos_token") || HAS("GPT4 Correct ") || (HAS("USER: ") && HAS("ASSISTANT: ")) ||
        (HAS("### Instruction:") && HAS("<|EOT|>")) || (HAS("<|START_OF_TURN_TOKEN|>") && HAS("<|USER_TOKEN|>"))) {
        return NS_CHAT_UNKNOWN; /* orion, openchat, vicuna, deepseek, command-r */
    }
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>")) {
        return NS_CHAT_LLAMA3;
    }
#undef HAS
    return NS_CHAT_UNKNOWN;
}

ns_chat_family ns_chat_detect(const char *tmpl) {
    if (tmpl == NULL) {
        return NS_CHAT_UNKNOWN;
    }
    return detect_view(tmpl, strlen(tmpl));
}

ns_status ns_chat_select(const ns_gguf *g, const char *override, ns_chat_family *out, bool *fell_back, ns_err *err) {
    if (fell_back) {
        *fell_back = false;
    }
    if (override != NULL) {
        ns_chat_family f = ns_chat_from_name(override);
        if (f == NS_CHAT_UNKNOWN) {
            return ns__err_set(err, NS_ERR_INVALID_ARG, "chat: unknown template name '%s'", override);
        }
        *out = f;
        return NS_OK;
    }
    ns_chat_family f = NS_CHAT_UNKNOWN;
    ns_gguf_str s;
    if (g != NULL && ns_gguf_get_str(g, "tokenizer.chat_template", &s) == NS_OK) {
        f = detect_view(s.ptr, (size_t)s.len);
    }
    if (f == NS_CHAT_UNKNOWN) {
        f = NS_CHAT_CHATML;
        if (fell_back) {
            *fell_back = true;
        }
    }
    *out = f;
    return NS_OK;
}

/* ------------------------------------------------------------------------ */

/* Output that counts past its capacity. */
typedef struct sbuf {
    char *p;
    size_t cap, n;
} sbuf;

static void put_n(sbuf *b, const char *s, size_t n) {
    if (b->n + n < b->cap) {
        memcpy(b->p + b->n, s, n);
    }
    b->n += n;
}

static void put(sbuf *b, const char *s) {
    put_n(b, s, strlen(s));
}

/* put s with leading and trailing whitespace removed (llama.cpp's trim) */
static void put_trim(sbuf *b, const char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n && isspace((unsigned char)s[i])) {
        i++;
    }
    while (n > i && isspace((unsigned char)s[n - 1])) {
        n--;
    }
    put_n(b, s + i, n - i);
}

static bool is_role(const ns_chat_msg *m, const char *r) {
    return strcmp(m->role, r) == 0;
}

static void apply_mistral_v1_v3(ns_chat_family f, const ns_chat_msg *msgs, size_t n, sbuf *b) {
    const char *lead = f == NS_CHAT_MISTRAL_V1 ? " " : "";
    const char *trail = f == NS_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
    bool trim_assistant = f == NS_CHAT_MISTRAL_V3;
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        if (!inside) {
            put(b, lead);
            put(b, "[INST]");
            put(b, trail);
            inside = true;
        }
        if (is_role(&msgs[i], "system")) {
            put(b, msgs[i].content);
            put(b, "\n\n");
        } else if (is_role(&msgs[i], "user")) {
            put(b, msgs[i].content);
            put(b, lead);
            put(b, "[/INST]");
        } else {
            put(b, trail);
            if (trim_assistant) {
                put_trim(b, msgs[i].content);
            } else {
                put(b, msgs[i].content);
            }
            put(b, "</s>");
            inside = false;
        }
    }
}

static void apply_llama2(ns_chat_family f, const ns_chat_msg *msgs, size_t n, sbuf *b) {
    bool sys = f != NS_CHAT_LLAMA2;
    bool bos_inside = f == NS_CHAT_LLAMA2_SYS_BOS;
    bool strip = f == NS_CHAT_LLAMA2_SYS_STRIP;
    bool inside = true; /* the first [INST] goes out without BOS: the tokenizer adds it */
    put(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!inside) {
            inside = true;
            put(b, bos_inside ? "<s>[INST] " : "[INST] ");
        }
        if (is_role(&msgs[i], "system")) {
            if (sys) {
                put(b, "<<SYS>>\n");
            }
            strip ? put_trim(b, msgs[i].content) : put(b, msgs[i].content);
            put(b, sys ? "\n<</SYS>>\n\n" : "\n");
        } else if (is_role(&msgs[i], "user")) {
            strip ? put_trim(b, msgs[i].content) : put(b, msgs[i].content);
            put(b, " [/INST]");
        } else {
            strip ? put_trim(b, msgs[i].content) : put(b, msgs[i].content);
            put(b, "</s>");
            inside = false;
        }
    }
}

static bool trim_nonempty(const char *s) {
    for (; *s; s++) {
        if (!isspace((unsigned char)*s)) {
            return true;
        }
    }
    return false;
}

static void apply_gemma(const ns_chat_msg *msgs, size_t n, bool add_assistant, sbuf *b) {
    /* No system role: the (trimmed, concatenated) system texts go at the top
     * of the next user turn. sys_from..i holds the pending ones. */
    size_t sys_from = 0;
    bool pending = false;
    for (size_t i = 0; i < n; i++) {
        if (is_role(&msgs[i], "system")) {
            if (!pending && trim_nonempty(msgs[i].content)) {
                pending = true;
                sys_from = i;
            }
            continue;
        }
        const char *role = is_role(&msgs[i], "assistant") ? "model" : msgs[i].role;
        put(b, "<start_of_turn>");
        put(b, role);
        put(b, "\n");
        if (pending && strcmp(role, "model") != 0) {
            for (size_t k = sys_from; k < i; k++) {
                if (is_role(&msgs[k], "system")) {
                    put_trim(b, msgs[k].content);
                }
            }
            put(b, "\n\n");
            pending = false;
        }
        put_trim(b, msgs[i].content);
        put(b, "<end_of_turn>\n");
    }
    if (add_assistant) {
        put(b, "<start_of_turn>model\n");
    }
}

ns_status ns_chat_apply(ns_chat_family f, const ns_chat_msg *msgs, size_t n, bool add_assistant, char *out, size_t cap,
                        size_t *n_out) {
    if (n_out == NULL || (msgs == NULL && n > 0) || (out == NULL && cap > 0)) {
        return NS_ERR_INVALID_ARG;
    }
    *n_out = 0;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].role == NULL || msgs[i].content == NULL) {
            return NS_ERR_INVALID_ARG;
        }
    }
    sbuf b = {out, cap, 0};
    switch (f) {
    case NS_CHAT_CHATML:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|im_start|>");
            put(&b, msgs[i].role);
            put(&b, "\n");
            put(&b, msgs[i].content);
            put(&b, "<|im_end|>\n");
        }
        if (add_assistant) {
            put(&b, "<|im_start|>assistant\n");
        }
        break;
    case NS_CHAT_LLAMA2:
    case NS_CHAT_LLAMA2_SYS:
    case NS_CHAT_LLAMA2_SYS_BOS:
    case NS_CHAT_LLAMA2_SYS_STRIP:
        apply_llama2(f, msgs, n, &b);
        break;
    case NS_CHAT_LLAMA3:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|start_header_id|>");
            put(&b, msgs[i].role);
            put(&b, "<|end_header_id|>\n\n");
            put_trim(&b, msgs[i].content);
            put(&b, "<|eot_id|>");
        }
        if (add_assistant) {
            put(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        }
        break;
    case NS_CHAT_MISTRAL_V1:
    case NS_CHAT_MISTRAL_V3:
    case NS_CHAT_MISTRAL_V3_TEKKEN:
        apply_mistral_v1_v3(f, msgs, n, &b);
        break;
    case NS_CHAT_MISTRAL_V7:
    case NS_CHAT_MISTRAL_V7_TEKKEN: {
        const char *sp = f == NS_CHAT_MISTRAL_V7 ? " " : "";
        for (size_t i = 0; i < n; i++) {
            if (is_role(&msgs[i], "system")) {
                put(&b, "[SYSTEM_PROMPT]");
                put(&b, sp);
                put(&b, msgs[i].content);
                put(&b, "[/SYSTEM_PROMPT]");
            } else if (is_role(&msgs[i], "user")) {
                put(&b, "[INST]");
                put(&b, sp);
                put(&b, msgs[i].content);
                put(&b, "[/INST]");
            } else {
                put(&b, sp);
                put(&b, msgs[i].content);
                put(&b, "</s>");
            }
        }
        break;
    }
    case NS_CHAT_ZEPHYR:
    case NS_CHAT_PHI3:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|");
            put(&b, msgs[i].role);
            put(&b, "|>\n");
            put(&b, msgs[i].content);
            put(&b, f == NS_CHAT_ZEPHYR ? "<|endoftext|>\n" : "<|end|>\n");
        }
        if (add_assistant) {
            put(&b, "<|assistant|>\n");
        }
        break;
    case NS_CHAT_GEMMA:
        apply_gemma(msgs, n, add_assistant, &b);
        break;
    default:
        return NS_ERR_INVALID_ARG;
    }
    *n_out = b.n;
    if (b.n + 1 > cap) {
        return NS_ERR_CAPACITY;
    }
    out[b.n] = '\0';
    return NS_OK;
}
