/* tool.h: what the pieces of the heapkit command share.
 *
 * Owns: the exit statuses, the error printers, the small helpers every
 * subcommand uses (reading a /proc file whole, a growing string, PIDs,
 * JSON string output) and the entry points of the subcommands.
 * The command is an ordinary program on glibc's malloc: it never links
 * heapkit; `run` only needs the path of libheapkit.so.
 */
#ifndef HEAPKIT_TOOL_H
#define HEAPKIT_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit statuses of heapkit itself (`run` otherwise passes on the
 * program's status, see run.c). */
#define HKT_EXIT_OK    0
#define HKT_EXIT_FAIL  1   /* the command could not do its job */
#define HKT_EXIT_USAGE 2   /* bad option, bad argument, no such process */

/* "heapkit: <message>\n" on stderr. */
void hkt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "heapkit CMD: <message>" and a hint to CMD --help; returns HKT_EXIT_USAGE. */
int hkt_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a getopt_long failure (c is '?' or ':'; optind as getopt left
 * it) for `cmd`; returns HKT_EXIT_USAGE. */
int hkt_opt_error(const char *cmd, int c, char **argv);

/* The whole of a file (a /proc file has no size to ask for), NUL-terminated;
 * *len (when not NULL) gets its length. NULL with errno set. */
char *hkt_read_file(const char *path, size_t *len);

/* A growing string. */
typedef struct {
    char *s;
    size_t len, cap;
} hkt_buf_t;
void hkt_buf_add(hkt_buf_t *b, const char *s, size_t n);
void hkt_buf_printf(hkt_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hkt_buf_free(hkt_buf_t *b);

void *hkt_xmalloc(size_t n);
void *hkt_xrealloc(void *p, size_t n);
char *hkt_xstrdup(const char *s);

/* A PID as a command line gives it: digits only, > 0. */
bool hkt_parse_pid(const char *s, pid_t *out);
/* 0 when /proc/PID exists, else an errno (ESRCH for no such process). */
int hkt_proc_exists(pid_t pid);
/* The command name of a process from /proc/PID/stat ("?" when unreadable),
 * into buf. */
void hkt_proc_comm(pid_t pid, char *buf, size_t size);

/* s as a JSON string, quotes included; bytes that are not UTF-8 become
 * U+FFFD. */
void hkt_json_string(FILE *f, const char *s);

/* Bytes in a short human form ("12.3 MiB"), into buf. */
const char *hkt_human(unsigned long long bytes, char *buf, size_t size);

/* The subcommands: argv[0] is the subcommand's name. */
int hkt_cmd_run(int argc, char **argv);
int hkt_cmd_map(int argc, char **argv);
int hkt_cmd_stats(int argc, char **argv);

/* Their --help texts. */
extern const char hkt_help_run[];
extern const char hkt_help_map[];
extern const char hkt_help_stats[];

#endif
