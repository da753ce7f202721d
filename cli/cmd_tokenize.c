/*
 * cmd_tokenize.c - `nightshift tokenize -m MODEL [--no-bos] [--parse-special] [--pieces]`
 *
 * Reads all of stdin as one text, tokenizes it with the model's tokenizer
 * and prints the ids on one line, separated by spaces. By default BOS/EOS are
 * added as the model's metadata says; --no-bos adds neither. --parse-special
 * turns control-token text ("<|im_end|>") into those tokens. --pieces prints
 * one "id<TAB>piece" line per token instead (piece escaped as a C string).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gguf.h"
#include "tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift tokenize -m MODEL.gguf [--no-bos] [--parse-special] [--pieces] < TEXT\n"
               "  reads all of stdin as one text and prints its token ids on one line\n"
               "  --no-bos          do not add BOS/EOS (default: as the model's metadata says)\n"
               "  --parse-special   match control tokens such as <|im_end|> in the text\n"
               "  --pieces          print 'id<TAB>piece' per line instead\n");
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            break;
        }
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            fputs("\\\\", stdout);
        } else if (c == '\n') {
            fputs("\\n", stdout);
        } else if (c == '\t') {
            fputs("\\t", stdout);
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\x%02x", c);
        } else {
            putchar(c);
        }
    }
}

int ns_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    bool add_special = true, parse_special = false, pieces = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if ((strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--model") == 0) && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(argv[i], "--no-bos") == 0) {
            add_special = false;
        } else if (strcmp(argv[i], "--parse-special") == 0) {
            parse_special = true;
        } else if (strcmp(argv[i], "--pieces") == 0) {
            pieces = true;
        } else {
            fprintf(stderr, "nightshift tokenize: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (model == NULL) {
        fprintf(stderr, "nightshift tokenize: -m MODEL is required\n");
        usage(stderr);
        return 2;
    }

    int rc = 1;
    ns_gguf *g = NULL;
    ns_tokenizer *t = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    ns_err err = {0};
    if (ns_gguf_open(model, &g, &err) != NS_OK) {
        fprintf(stderr, "nightshift tokenize: %s\n", ns_err_msg(&err));
        goto done;
    }
    if (ns_tokenizer_load(g, &t, &err) != NS_OK) {
        fprintf(stderr, "nightshift tokenize: %s: %s\n", model, ns_err_msg(&err));
        goto done;
    }
    ns_gguf_close(&g);
    size_t len = 0;
    text = read_all(stdin, &len);
    if (text == NULL) {
        fprintf(stderr, "nightshift tokenize: cannot read stdin\n");
        goto done;
    }
    size_t n = 0;
    ns_status st = ns_tokenizer_encode(t, text, len, add_special, parse_special, NULL, 0, &n, &err);
    if (st != NS_OK && st != NS_ERR_CAPACITY) {
        fprintf(stderr, "nightshift tokenize: %s\n", ns_err_msg(&err));
        goto done;
    }
    ids = malloc((n ? n : 1) * sizeof(int32_t));
    if (ids == NULL) {
        fprintf(stderr, "nightshift tokenize: out of memory\n");
        goto done;
    }
    if (ns_tokenizer_encode(t, text, len, add_special, parse_special, ids, n, &n, &err) != NS_OK) {
        fprintf(stderr, "nightshift tokenize: %s\n", ns_err_msg(&err));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (pieces) {
            size_t pl;
            const char *p = ns_tokenizer_piece(t, ids[i], true, &pl);
            printf("%d\t", ids[i]);
            print_escaped(p, pl);
            putchar('\n');
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    if (!pieces) {
        putchar('\n');
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(ids);
    free(text);
    ns_tokenizer_free(&t);
    ns_gguf_close(&g);
    return rc;
}
