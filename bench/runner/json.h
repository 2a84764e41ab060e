/* json.h: a small strict JSON parser (RFC 8259) and a checker of required
 * fields, used to verify the runner's own output: by the runner after it
 * writes bench.json, by json_check and by the harness tests. */
#ifndef HKB_JSON_H
#define HKB_JSON_H

#include <stddef.h>

typedef enum { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } jtype_t;

typedef struct jval {
    jtype_t type;
    double num;          /* J_NUMBER; J_BOOL: 0 or 1 */
    char *str;           /* J_STRING (UTF-8, unescaped) */
    int n;               /* J_ARRAY, J_OBJECT: number of members */
    struct jval **item;  /* members */
    char **key;          /* J_OBJECT: member names */
} jval_t;

/* Parses text[0..len); NULL on any error, with "line L col C: why" in err. */
jval_t *json_parse(const char *text, size_t len, char *err, size_t errcap);
jval_t *json_parse_file(const char *path, char *err, size_t errcap);
void json_free(jval_t *v);
/* The member `key` of an object (the last one, if repeated), or NULL. */
const jval_t *json_get(const jval_t *obj, const char *key);

/* Checks that a path is present with an allowed type, e.g.
 *     "config.scale:number"
 *     "runs[].wall_s:number"           every element of a non-empty array
 *     "instructions[]?.per_pair:number|null"   an array that may be empty
 * Types: null bool number string array object, joined by '|'; none = any.
 * Returns 1 when satisfied, else 0 with the first offending place in err. */
int json_require(const jval_t *root, const char *spec, char *err, size_t errcap);

#endif
