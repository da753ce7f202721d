/* ns_types.c - the ggml type traits table; see ns_types.h. */
#include "ns_types.h"

#include <strings.h>

static const ns_type_traits g_traits[NS_TYPE_COUNT] = {
#define NS__TYPE_TRAITS(name, id, be, bb, sup) [id] = {#name, be, bb, sup},
    NS_TYPE_MAP(NS__TYPE_TRAITS)
#undef NS__TYPE_TRAITS
};

const ns_type_traits *ns_type_get(uint32_t t) {
    if (t >= NS_TYPE_COUNT || g_traits[t].name == NULL) {
        return NULL;
    }
    return &g_traits[t];
}

const char *ns_type_name(uint32_t t) {
    const ns_type_traits *tr = ns_type_get(t);
    return tr != NULL ? tr->name : "unknown";
}

bool ns_type_from_name(const char *name, ns_type *out) {
    for (uint32_t t = 0; t < NS_TYPE_COUNT; t++) {
        if (g_traits[t].name != NULL && strcasecmp(g_traits[t].name, name) == 0) {
            *out = (ns_type)t;
            return true;
        }
    }
    return false;
}

size_t ns_type_row_size(ns_type t, int64_t n) {
    const ns_type_traits *tr = ns_type_get((uint32_t)t);
    if (tr == NULL || n < 0 || n % tr->blck_size != 0) {
        return 0;
    }
    return (size_t)(n / tr->blck_size) * tr->type_size;
}
