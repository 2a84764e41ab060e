/* json.c: the JSON reader of json.h.
 *
 * Owns: a recursive-descent parser over a byte range, with its own
 * allocation helpers (it is linked into the tests too, which do not have
 * util.c). The grammar is RFC 8259's, strictly: no trailing commas, no
 * comments, no leading zeros, no bare control characters in strings,
 * nothing but white space after the value.
 */
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HKJ_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errsize;
    bool failed;
} parser_t;

static void *jalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (p == NULL) {
        fputs("json: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static void *jrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fputs("json: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static void fail(parser_t *p, const char *fmt, ...) {
    if (p->failed) return;
    p->failed = true;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->err && p->errsize) snprintf(p->err, p->errsize, "%s at byte %zu", msg, p->pos);
}

static void skip_ws(parser_t *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool literal(parser_t *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return false;
    p->pos += n;
    return true;
}

static void put_utf8(char *out, size_t *n, unsigned cp) {
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xe0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static bool hex4(parser_t *p, unsigned *out) {
    if (p->len - p->pos < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return false;
    }
    p->pos += 4;
    *out = v;
    return true;
}

/* Checks one raw UTF-8 sequence at the cursor and copies it. */
static bool copy_utf8(parser_t *p, char *out, size_t *n) {
    const unsigned char *s = (const unsigned char *)p->s + p->pos;
    size_t left = p->len - p->pos, k;
    unsigned c = s[0], min, v;
    if (c >= 0xc2 && c <= 0xdf) k = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) k = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) k = 4, min = 0x10000;
    else return false;
    if (left < k) return false;
    v = c & (0x7fu >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return false;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return false;
    memcpy(out + *n, s, k);
    *n += k;
    p->pos += k;
    return true;
}

/* A string at the cursor (on its opening quote), decoded. */
static char *parse_string(parser_t *p) {
    p->pos++; /* the quote */
    /* The decoded text is never longer than the source. */
    size_t start = p->pos, n = 0;
    char *out = NULL;
    size_t end = start;
    while (end < p->len && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    out = jalloc(end - start + 1);
    for (;;) {
        if (p->pos >= p->len) {
            fail(p, "unterminated string");
            free(out);
            return NULL;
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            fail(p, "control character in a string");
            free(out);
            return NULL;
        }
        if (c >= 0x80) {
            if (!copy_utf8(p, out, &n)) {
                fail(p, "invalid UTF-8 in a string");
                free(out);
                return NULL;
            }
            continue;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        char e = p->pos < p->len ? p->s[p->pos++] : 0;
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(p, &cp)) {
                fail(p, "bad \\u escape");
                free(out);
                return NULL;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (!literal(p, "\\u") || !hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                    fail(p, "unpaired surrogate in a \\u escape");
                    free(out);
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                fail(p, "unpaired surrogate in a \\u escape");
                free(out);
                return NULL;
            }
            /* At most 4 bytes out for the 6 (or 12) read. */
            put_utf8(out, &n, cp);
            break;
        }
        default:
            fail(p, "bad escape in a string");
            free(out);
            return NULL;
        }
    }
    out[n] = 0;
    return out;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static void parse_number(parser_t *p, hkj_t *v) {
    size_t start = p->pos;
    bool neg = false, integer = true;
    if (p->s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
        fail(p, "bad number");
        return;
    }
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit(p->s[p->pos])) {
            fail(p, "leading zero in a number");
            return;
        }
    } else {
        while (p->pos < p->len && is_digit(p->s[p->pos])) p->pos++;
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integer = false;
        p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
            fail(p, "bad fraction in a number");
            return;
        }
        while (p->pos < p->len && is_digit(p->s[p->pos])) p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integer = false;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
            fail(p, "bad exponent in a number");
            return;
        }
        while (p->pos < p->len && is_digit(p->s[p->pos])) p->pos++;
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf) n = sizeof buf - 1; /* only precision is lost */
    memcpy(buf, p->s + start, n);
    buf[n] = 0;
    v->type = HKJ_NUMBER;
    v->number = strtod(buf, NULL);
    if (integer && !neg) {
        errno = 0;
        unsigned long long u = strtoull(buf, NULL, 10);
        if (errno == 0) {
            v->is_uint = true;
            v->uint = u;
        }
    }
}

static hkj_t *parse_value(parser_t *p, int depth);

static void add_item(hkj_t *v, hkj_t *item, char *key, size_t *cap) {
    if (v->count == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        v->items = jrealloc(v->items, *cap * sizeof *v->items);
        if (v->type == HKJ_OBJECT) v->keys = jrealloc(v->keys, *cap * sizeof *v->keys);
    }
    v->items[v->count] = item;
    if (v->type == HKJ_OBJECT) v->keys[v->count] = key;
    v->count++;
}

static void parse_container(parser_t *p, hkj_t *v, int depth) {
    bool object = p->s[p->pos] == '{';
    char close = object ? '}' : ']';
    v->type = object ? HKJ_OBJECT : HKJ_ARRAY;
    size_t cap = 0;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return;
    }
    for (;;) {
        char *key = NULL;
        if (object) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                fail(p, "expected a member name");
                return;
            }
            key = parse_string(p);
            if (key == NULL) return;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                fail(p, "expected ':'");
                return;
            }
            p->pos++;
        }
        hkj_t *item = parse_value(p, depth + 1);
        if (item == NULL) {
            free(key);
            return;
        }
        add_item(v, item, key, &cap);
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return;
        }
        fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        return;
    }
}

static hkj_t *parse_value(parser_t *p, int depth) {
    if (depth > HKJ_MAX_DEPTH) {
        fail(p, "nested too deeply");
        return NULL;
    }
    skip_ws(p);
    if (p->pos >= p->len) {
        fail(p, "unexpected end of text");
        return NULL;
    }
    hkj_t *v = jalloc(sizeof *v);
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        parse_container(p, v, depth);
    } else if (c == '"') {
        v->type = HKJ_STRING;
        v->string = parse_string(p);
    } else if (c == '-' || is_digit(c)) {
        parse_number(p, v);
    } else if (literal(p, "true")) {
        v->type = HKJ_BOOL;
        v->boolean = true;
    } else if (literal(p, "false")) {
        v->type = HKJ_BOOL;
    } else if (literal(p, "null")) {
        v->type = HKJ_NULL;
    } else {
        fail(p, "unexpected character '%c'", c);
    }
    if (p->failed) {
        hkj_free(v);
        return NULL;
    }
    return v;
}

hkj_t *hkj_parse(const char *text, size_t len, char *err, size_t errsize) {
    parser_t p = {.s = text, .len = len, .err = err, .errsize = errsize};
    if (err && errsize) err[0] = 0;
    hkj_t *v = parse_value(&p, 0);
    if (v == NULL) return NULL;
    skip_ws(&p);
    if (p.pos != p.len) {
        fail(&p, "text after the value");
        hkj_free(v);
        return NULL;
    }
    return v;
}

void hkj_free(hkj_t *v) {
    if (v == NULL) return;
    for (size_t i = 0; i < v->count; i++) {
        hkj_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    free(v);
}

const hkj_t *hkj_get(const hkj_t *obj, const char *key) {
    if (obj == NULL || obj->type != HKJ_OBJECT) return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
    return NULL;
}

bool hkj_get_uint(const hkj_t *obj, const char *key, unsigned long long *out) {
    const hkj_t *v = hkj_get(obj, key);
    if (v == NULL || v->type != HKJ_NUMBER || !v->is_uint) return false;
    *out = v->uint;
    return true;
}

const char *hkj_get_string(const hkj_t *obj, const char *key) {
    const hkj_t *v = hkj_get(obj, key);
    return v && v->type == HKJ_STRING ? v->string : NULL;
}
