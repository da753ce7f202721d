/* main.c - `nightshift` entry point: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct ns_cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} ns_cli_command;

static const ns_cli_command g_commands[] = {
#define NS__CLI_ENTRY(name, fn, help) {#name, fn, help},
    NS_CLI_COMMANDS(NS__CLI_ENTRY)
#ifdef NS_CLI_HAVE_QUEUE
        NS_CLI_QUEUE_COMMANDS(NS__CLI_ENTRY)
#endif
#undef NS__CLI_ENTRY
            {NULL, NULL, NULL},
};

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift <command> [options]\n\ncommands:\n");
    for (size_t i = 0; g_commands[i].name != NULL; i++) {
        fprintf(f, "  %-12s %s\n", g_commands[i].name, g_commands[i].help);
    }
    fprintf(f, "\nRun `nightshift <command> --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("nightshift %s\n", NS_VERSION);
        return 0;
    }
    for (size_t i = 0; g_commands[i].name != NULL; i++) {
        if (strcmp(argv[1], g_commands[i].name) == 0) {
            return g_commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "nightshift: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
