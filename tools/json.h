/* json.h: a small JSON reader for the heapkit command and its tests.
 *
 * Owns: parsing one JSON text (RFC 8259: objects, arrays, strings with
 * every escape, numbers, true/false/null; UTF-8 checked; nesting up to 64
 * levels) into a tree, and looking values up. `stats` reads the library's
 * statistics file with it; the tests check the command's --json output.
 * Writing JSON is done by each command with hkt_json_string (tool.h).
 */
#ifndef HEAPKIT_TOOL_JSON_H
#define HEAPKIT_TOOL_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { HKJ_NULL, HKJ_BOOL, HKJ_NUMBER, HKJ_STRING, HKJ_ARRAY, HKJ_OBJECT } hkj_type_t;

typedef struct hkj_s hkj_t;
struct hkj_s {
    hkj_type_t type;
    bool boolean;
    double number;
    /* A number written as a non-negative integer that fits, exactly. */
    bool is_uint;
    unsigned long long uint;
    char *string;      /* HKJ_STRING, decoded, NUL-terminated */
    size_t count;      /* items of an array or members of an object */
    hkj_t **items;
    char **keys;       /* HKJ_OBJECT: the member names, in order */
};

/* Parses text[0..len). NULL on error, with a message (and the byte offset)
 * in err. */
hkj_t *hkj_parse(const char *text, size_t len, char *err, size_t errsize);
void hkj_free(hkj_t *v);

/* The member `key` of an object (the first one of that name), or NULL. */
const hkj_t *hkj_get(const hkj_t *obj, const char *key);
/* The member as an exact unsigned integer; false when missing or not one. */
bool hkj_get_uint(const hkj_t *obj, const char *key, unsigned long long *out);
/* The member as a string, or NULL. */
const char *hkj_get_string(const hkj_t *obj, const char *key);

#endif
