/* heapkit.c: the heapkit command's entry point.
 *
 * Owns: the table of subcommands, the overview help, `help CMD`,
 * `--version`, and the dispatch to run.c, map.c and stats.c (each owns its
 * options, its --help text and its output). The manual page is heapkit.1
 * beside this file; keep the two in step (a test compares their options).
 */
#include <string.h>

#include "tool.h"

#ifndef HKT_VERSION
#define HKT_VERSION "unknown"
#endif

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"run", hkt_cmd_run, hkt_help_run, "run a program on heapkit (statistics, leaks, checks)"},
    {"map", hkt_cmd_map, hkt_help_map, "a process's memory map, by kind, with RSS, PSS, swap"},
    {"stats", hkt_cmd_stats, hkt_help_stats, "live heapkit statistics of a running process"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void overview(FILE *f) {
    fputs("Usage: heapkit COMMAND [OPTIONS] [ARGS]\n"
          "\n"
          "Memory diagnostics with the heapkit allocator.\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].summary);
    fputs("  help    help on a command: heapkit help COMMAND\n"
          "\n"
          "Options:\n"
          "  -h, --help     this text\n"
          "  -V, --version  the version\n"
          "\n"
          "Every command takes --help. Exit status: 0 on success, 1 when the\n"
          "command fails, 2 on a usage error; 'heapkit run' exits with the\n"
          "program's status. See heapkit(1).\n",
          f);
}

static const command_t *find(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        overview(stderr);
        return HKT_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        overview(stdout);
        return HKT_EXIT_OK;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("heapkit %s\n", HKT_VERSION);
        return HKT_EXIT_OK;
    }
    if (!strcmp(cmd, "help")) {
        if (argc == 2) {
            overview(stdout);
            return HKT_EXIT_OK;
        }
        const command_t *c = find(argv[2]);
        if (c == NULL || argc > 3) {
            if (c == NULL) hkt_err("no command '%s' (commands: run, map, stats)", argv[2]);
            else hkt_err("help takes one command");
            return HKT_EXIT_USAGE;
        }
        fputs(c->help, stdout);
        return HKT_EXIT_OK;
    }
    const command_t *c = find(cmd);
    if (c == NULL) {
        if (cmd[0] == '-') hkt_err("unknown option '%s'", cmd);
        else hkt_err("unknown command '%s'", cmd);
        fputs("Try 'heapkit --help'.\n", stderr);
        return HKT_EXIT_USAGE;
    }
    return c->fn(argc - 1, argv + 1);
}
