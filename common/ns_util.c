/* ns_util.c - see ns_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "ns_util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

ns_status ns_parse_size(const char *s, uint64_t *out) {
    char *end = NULL;
    double v;
    double mult = 1.0;
    if (s == NULL || out == NULL) {
        return NS_ERR_INVALID_ARG;
    }
    while (isspace((unsigned char)*s)) {
        s++;
    }
    if (!isdigit((unsigned char)*s) && *s != '.') {
        return NS_ERR_INVALID_ARG;
    }
    v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0) {
        return NS_ERR_INVALID_ARG;
    }
    while (isspace((unsigned char)*end)) {
        end++;
    }
    if (*end != '\0') {
        static const struct {
            const char *unit;
            double mult;
        } units[] = {
            {"b", 1.0},   {"k", 1024.0},          {"kib", 1024.0},
            {"kb", 1e3},  {"m", 1048576.0},       {"mib", 1048576.0},
            {"mb", 1e6},  {"g", 1073741824.0},    {"gib", 1073741824.0},
            {"gb", 1e9},  {"t", 1099511627776.0}, {"tib", 1099511627776.0},
            {"tb", 1e12},
        };
        size_t i;
        int found = 0;
        for (i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (strcasecmp(end, units[i].unit) == 0) {
                mult = units[i].mult;
                found = 1;
                break;
            }
        }
        if (!found) {
            return NS_ERR_INVALID_ARG;
        }
    }
    v *= mult;
    if (v >= 18446744073709549568.0) {
        return NS_ERR_INVALID_ARG;
    }
    *out = (uint64_t)(v + 0.5);
    return NS_OK;
}

const char *ns_format_size(uint64_t bytes, char *buf, size_t len) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) {
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    } else {
        snprintf(buf, len, "%.2f %s", v, units[u]);
    }
    return buf;
}

uint64_t ns_time_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double ns_time_s(void) {
    return (double)ns_time_ns() * 1e-9;
}

int ns_utf8_len(unsigned char c) {
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        return 4;
    }
    return 0;
}

bool ns_utf8_valid(const char *buf, size_t len) {
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        int n = ns_utf8_len(c);
        if (n == 0 || (size_t)n > len - i) {
            return false;
        }
        if (n >= 2) {
            unsigned char c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80) {
                return false;
            }
            if (c == 0xE0 && c1 < 0xA0) {
                return false; /* overlong */
            }
            if (c == 0xED && c1 >= 0xA0) {
                return false; /* surrogate */
            }
            if (c == 0xF0 && c1 < 0x90) {
                return false; /* overlong */
            }
            if (c == 0xF4 && c1 >= 0x90) {
                return false; /* > U+10FFFF */
            }
            for (int k = 2; k < n; k++) {
                if ((s[i + k] & 0xC0) != 0x80) {
                    return false;
                }
            }
        }
        i += (size_t)n;
    }
    return true;
}
