/*
 * test_chat_template.c - chat template detection and the exact prompt text
 * for every family (expected strings written out from each family's
 * published format), capacity handling, and selection from GGUF metadata.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chat_template.h"
#include "gguf.h"
#include "ns_status.h"
#include "ns_test.h"

static const ns_chat_msg k_conv[] = {
    {"system", "You are terse."},
    {"user", "Hi"},
    {"assistant", " Hello. "},
    {"user", "Bye"},
};
#define N_CONV (sizeof(k_conv) / sizeof(k_conv[0]))

static void expect(ns_chat_family f, bool add_assistant, const char *want) {
    char out[2048];
    size_t n = 0;
    ns_status st = ns_chat_apply(f, k_conv, N_CONV, add_assistant, out, sizeof(out), &n);
    if (st != NS_OK) {
        NS_FAIL("%s: apply failed: %s", ns_chat_name(f), ns_status_str(st));
    }
    if (n != strlen(want) || strcmp(out, want) != 0) {
        NS_FAIL("%s:\n got: [%s]\nwant: [%s]", ns_chat_name(f), out, want);
    }
}

static void test_formats(void) {
    expect(NS_CHAT_CHATML, true,
           "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\n Hello. <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
    expect(NS_CHAT_CHATML, false,
           "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\n Hello. <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n");
    expect(NS_CHAT_LLAMA3, true,
           "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect(NS_CHAT_LLAMA2, true, "[INST] You are terse.\nHi [/INST] Hello. </s>[INST] Bye [/INST]");
    expect(NS_CHAT_LLAMA2_SYS, true,
           "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello. </s>[INST] Bye [/INST]");
    expect(NS_CHAT_LLAMA2_SYS_BOS, true,
           "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]");
    expect(NS_CHAT_LLAMA2_SYS_STRIP, true,
           "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST]Hello.</s>[INST] Bye [/INST]");
    expect(NS_CHAT_MISTRAL_V1, true, " [INST] You are terse.\n\nHi [/INST]  Hello. </s> [INST] Bye [/INST]");
    expect(NS_CHAT_MISTRAL_V3, true, "[INST] You are terse.\n\nHi[/INST] Hello.</s>[INST] Bye[/INST]");
    expect(NS_CHAT_MISTRAL_V3_TEKKEN, true, "[INST]You are terse.\n\nHi[/INST] Hello. </s>[INST]Bye[/INST]");
    expect(NS_CHAT_MISTRAL_V7, true,
           "[SYSTEM_PROMPT] You are terse.[/SYSTEM_PROMPT][INST] Hi[/INST]  Hello. </s>[INST] Bye[/INST]");
    expect(NS_CHAT_MISTRAL_V7_TEKKEN, true,
           "[SYSTEM_PROMPT]You are terse.[/SYSTEM_PROMPT][INST]Hi[/INST] Hello. </s>[INST]Bye[/INST]");
    expect(NS_CHAT_ZEPHYR, true,
           "<|system|>\nYou are terse.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n<|assistant|>\n Hello. "
           "<|endoftext|>\n<|user|>\nBye<|endoftext|>\n<|assistant|>\n");
    expect(NS_CHAT_PHI3, true,
           "<|system|>\nYou are terse.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n Hello. <|end|>\n"
           "<|user|>\nBye<|end|>\n<|assistant|>\n");
    expect(NS_CHAT_GEMMA, true,
           "<start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
           "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
}

static void test_apply_edges(void) {
    char out[64];
    size_t n = 0;
    /* capacity: the needed length comes back, NUL included in the check */
    const ns_chat_msg one[] = {{"user", "Hi"}};
    const char *want = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    ASSERT_EQ(ns_chat_apply(NS_CHAT_CHATML, one, 1, true, NULL, 0, &n), NS_ERR_CAPACITY);
    ASSERT_EQ(n, strlen(want));
    ASSERT_EQ(ns_chat_apply(NS_CHAT_CHATML, one, 1, true, out, strlen(want), &n), NS_ERR_CAPACITY);
    ASSERT_OK(ns_chat_apply(NS_CHAT_CHATML, one, 1, true, out, strlen(want) + 1, &n));
    ASSERT_STREQ(out, want);
    /* no messages */
    ASSERT_OK(ns_chat_apply(NS_CHAT_CHATML, NULL, 0, false, out, sizeof(out), &n));
    ASSERT_EQ(n, 0);
    ASSERT_STREQ(out, "");
    /* bad input */
    const ns_chat_msg bad[] = {{"user", NULL}};
    ASSERT_EQ(ns_chat_apply(NS_CHAT_CHATML, bad, 1, true, out, sizeof(out), &n), NS_ERR_INVALID_ARG);
    ASSERT_EQ(ns_chat_apply(NS_CHAT_UNKNOWN, one, 1, true, out, sizeof(out), &n), NS_ERR_INVALID_ARG);
    ASSERT_EQ(ns_chat_apply((ns_chat_family)99, one, 1, true, out, sizeof(out), &n), NS_ERR_INVALID_ARG);
}

static void test_detect(void) {
    /* names */
    for (int f = 1; f < NS_CHAT_FAMILY_COUNT; f++) {
        ASSERT_EQ(ns_chat_from_name(ns_chat_name((ns_chat_family)f)), f);
        ASSERT_EQ(ns_chat_detect(ns_chat_name((ns_chat_family)f)), f);
    }
    ASSERT_EQ(ns_chat_from_name("nope"), NS_CHAT_UNKNOWN);
    ASSERT_STREQ(ns_chat_name((ns_chat_family)-1), "unknown");
    /* template snippets, as found in the models' tokenizer_config.json */
    ASSERT_EQ(ns_chat_detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                             "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"),
              NS_CHAT_CHATML);
    ASSERT_EQ(ns_chat_detect("{{ '<|im_start|>' + role + '<|im_sep|>' }}"), NS_CHAT_UNKNOWN); /* phi4 */
    ASSERT_EQ(ns_chat_detect("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + "
                             "message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
                             "'<|eot_id|>' }}{% endfor %}"),
              NS_CHAT_LLAMA3);
    ASSERT_EQ(ns_chat_detect("{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + "
                             "'\\n<</SYS>>\\n\\n' }}{% endif %}{{ bos_token + '[INST] ' + content.strip() + "
                             "' [/INST]' }}"),
              NS_CHAT_LLAMA2_SYS_STRIP);
    ASSERT_EQ(ns_chat_detect("{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"), NS_CHAT_LLAMA2_SYS_BOS);
    ASSERT_EQ(ns_chat_detect("<<SYS>> [INST] x [/INST]"), NS_CHAT_LLAMA2_SYS);
    ASSERT_EQ(ns_chat_detect("{{ '[INST] ' + message['content'] + ' [/INST]' }}"), NS_CHAT_LLAMA2);
    ASSERT_EQ(ns_chat_detect("{{ '[SYSTEM_PROMPT]' }}{{ '[INST]' }}"), NS_CHAT_MISTRAL_V7);
    ASSERT_EQ(ns_chat_detect("{{ ' [INST] ' + system_message }}"), NS_CHAT_MISTRAL_V1);
    ASSERT_EQ(ns_chat_detect("{{ \"[INST]\" }}{{ \"[AVAILABLE_TOOLS]\" }}"), NS_CHAT_MISTRAL_V3_TEKKEN);
    ASSERT_EQ(ns_chat_detect("{{ '[INST]' }}{{ '[AVAILABLE_TOOLS]' }}"), NS_CHAT_MISTRAL_V3);
    ASSERT_EQ(ns_chat_detect("{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + "
                             "'<|assistant|>' + '\\n'}}"),
              NS_CHAT_PHI3);
    ASSERT_EQ(ns_chat_detect("{{ '<|user|>\\n' + message['content'] + eos_token }}{{ '<|endoftext|>' }}"),
              NS_CHAT_ZEPHYR);
    ASSERT_EQ(ns_chat_detect("{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
                             "'<end_of_turn>\\n' }}"),
              NS_CHAT_GEMMA);
    ASSERT_EQ(ns_chat_detect("{{ 'USER: ' + x }}{{ 'ASSISTANT: ' }}"), NS_CHAT_UNKNOWN); /* vicuna */
    ASSERT_EQ(ns_chat_detect("{{ message['content'] }}"), NS_CHAT_UNKNOWN);
    ASSERT_EQ(ns_chat_detect(NULL), NS_CHAT_UNKNOWN);
}

static void test_select(void) {
    ns_chat_family f = NS_CHAT_UNKNOWN;
    bool fb = false;
    ns_err err = {0};
    /* explicit override, with and without a model */
    ASSERT_OK(ns_chat_select(NULL, "llama3", &f, &fb, &err));
    ASSERT_EQ(f, NS_CHAT_LLAMA3);
    ASSERT_TRUE(!fb);
    ASSERT_EQ(ns_chat_select(NULL, "bogus", &f, &fb, &err), NS_ERR_INVALID_ARG);
    ASSERT_TRUE(strstr(err.msg, "bogus") != NULL);
    /* no template at all: ChatML, reported as a fallback */
    ASSERT_OK(ns_chat_select(NULL, NULL, &f, &fb, &err));
    ASSERT_EQ(f, NS_CHAT_CHATML);
    ASSERT_TRUE(fb);

    /* from real GGUF metadata, when the reference files are present */
    const char *ref = NS_REFERENCE_DIR "/vocab/";
    static const struct {
        const char *file;
        ns_chat_family want;
        bool fallback;
    } cases[] = {
        {"ggml-vocab-qwen2.gguf", NS_CHAT_CHATML, false},
        {"ggml-vocab-phi-3.gguf", NS_CHAT_PHI3, false},
        {"ggml-vocab-llama-spm.gguf", NS_CHAT_CHATML, true}, /* no template in the file */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s%s", ref, cases[i].file);
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "note: %s absent, metadata selection not checked\n", path);
            continue;
        }
        ns_gguf *g = NULL;
        ASSERT_OK(ns_gguf_open(path, &g, &err));
        ASSERT_OK(ns_chat_select(g, NULL, &f, &fb, &err));
        ASSERT_EQ(f, cases[i].want);
        ASSERT_EQ(fb, cases[i].fallback);
        ASSERT_OK(ns_chat_select(g, "gemma", &f, &fb, &err));
        ASSERT_EQ(f, NS_CHAT_GEMMA);
        ns_gguf_close(&g);
    }
}

int main(void) {
    test_formats();
    test_apply_edges();
    test_detect();
    test_select();
    return 0;
}
