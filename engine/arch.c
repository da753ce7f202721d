/*
 * arch.c - the architecture table: what differs between llama-family models.
 * See arch.h. Immutable data only.
 */
#include "arch.h"

#include <string.h>

#define L(field) offsetof(ns_layer, field)

/* llama: Llama 2/3, Mistral, TinyLlama. Biases are optional (some
 * fine-tunes have them); llama.cpp loads them when present. */
static const ns__layer_tensor g_llama_tensors[] = {
    {"attn_norm.weight", L(attn_norm), NS__DIM_EMBD, NS__DIM_1, true, true},
    {"attn_q.weight", L(wq), NS__DIM_EMBD, NS__DIM_Q, true, false},
    {"attn_k.weight", L(wk), NS__DIM_EMBD, NS__DIM_KV, true, false},
    {"attn_v.weight", L(wv), NS__DIM_EMBD, NS__DIM_KV, true, false},
    {"attn_output.weight", L(wo), NS__DIM_Q, NS__DIM_EMBD, true, false},
    {"attn_q.bias", L(bq), NS__DIM_Q, NS__DIM_1, false, true},
    {"attn_k.bias", L(bk), NS__DIM_KV, NS__DIM_1, false, true},
    {"attn_v.bias", L(bv), NS__DIM_KV, NS__DIM_1, false, true},
    {"ffn_norm.weight", L(ffn_norm), NS__DIM_EMBD, NS__DIM_1, true, true},
    {"ffn_gate.weight", L(w_gate), NS__DIM_EMBD, NS__DIM_FF, true, false},
    {"ffn_up.weight", L(w_up), NS__DIM_EMBD, NS__DIM_FF, true, false},
    {"ffn_down.weight", L(w_down), NS__DIM_FF, NS__DIM_EMBD, true, false},
};

/* qwen2: as llama with required Q/K/V biases. */
static const ns__layer_tensor g_qwen2_tensors[] = {
    {"attn_norm.weight", L(attn_norm), NS__DIM_EMBD, NS__DIM_1, true, true},
    {"attn_q.weight", L(wq), NS__DIM_EMBD, NS__DIM_Q, true, false},
    {"attn_k.weight", L(wk), NS__DIM_EMBD, NS__DIM_KV, true, false},
    {"attn_v.weight", L(wv), NS__DIM_EMBD, NS__DIM_KV, true, false},
    {"attn_output.weight", L(wo), NS__DIM_Q, NS__DIM_EMBD, true, false},
    {"attn_q.bias", L(bq), NS__DIM_Q, NS__DIM_1, true, true},
    {"attn_k.bias", L(bk), NS__DIM_KV, NS__DIM_1, true, true},
    {"attn_v.bias", L(bv), NS__DIM_KV, NS__DIM_1, true, true},
    {"ffn_norm.weight", L(ffn_norm), NS__DIM_EMBD, NS__DIM_1, true, true},
    {"ffn_gate.weight", L(w_gate), NS__DIM_EMBD, NS__DIM_FF, true, false},
    {"ffn_up.weight", L(w_up), NS__DIM_EMBD, NS__DIM_FF, true, false},
    {"ffn_down.weight", L(w_down), NS__DIM_FF, NS__DIM_EMBD, true, false},
};

#undef L

static const ns__arch_info g_archs[NS_ARCH_COUNT] = {
    {NS_ARCH_LLAMA, "llama", NS_ROPE_NORM, g_llama_tensors, sizeof(g_llama_tensors) / sizeof(g_llama_tensors[0])},
    {NS_ARCH_QWEN2, "qwen2", NS_ROPE_NEOX, g_qwen2_tensors, sizeof(g_qwen2_tensors) / sizeof(g_qwen2_tensors[0])},
};

const ns__arch_info *ns__arch_find(const char *name) {
    for (int i = 0; i < NS_ARCH_COUNT; i++) {
        if (strcmp(g_archs[i].name, name) == 0) {
            return &g_archs[i];
        }
    }
    return NULL;
}

const ns__arch_info *ns__arch_get(ns_arch arch) {
    return &g_archs[arch];
}

const char *ns_arch_name(ns_arch a) {
    if ((int)a < 0 || a >= NS_ARCH_COUNT) {
        return "?";
    }
    return g_archs[a].name;
}
