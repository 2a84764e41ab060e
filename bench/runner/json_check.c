/* json_check.c: checks that a file is well-formed JSON and, optionally,
 * that fields are present with the right types.
 *     json_check FILE [--require PATH[:TYPES]]...
 * Exit 0 when everything holds, 1 with the reason on stderr otherwise,
 * 2 on a usage error. See json.h for the path syntax. */
#include "json.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: json_check FILE [--require PATH[:TYPES]]...\n");
        return 2;
    }
    char err[512];
    jval_t *v = json_parse_file(argv[1], err, sizeof err);
    if (!v) {
        fprintf(stderr, "%s: malformed JSON: %s\n", argv[1], err);
        return 1;
    }
    int bad = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--require") || i + 1 >= argc) {
            fprintf(stderr, "json_check: unknown argument '%s'\n", argv[i]);
            json_free(v);
            return 2;
        }
        if (!json_require(v, argv[++i], err, sizeof err)) {
            fprintf(stderr, "%s: %s (for %s)\n", argv[1], err, argv[i]);
            bad = 1;
        }
    }
    json_free(v);
    if (!bad) printf("%s: ok\n", argv[1]);
    return bad;
}
