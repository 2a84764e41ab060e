/* json.c: a strict JSON parser (RFC 8259) into a small tree, and the
 * required-field checker. Strict on purpose: it is the judge of the
 * runner's output, so it rejects what lenient parsers let through
 * (trailing commas, NaN, leading zeros, raw control characters in strings,
 * bad escapes, lone surrogates, anything after the value). */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s, *end, *p;
    char *err;
    size_t errcap;
    int failed;
    int depth;
} parser_t;

enum { MAX_DEPTH = 200 };

static void fail(parser_t *ps, const char *fmt, ...) {
    if (ps->failed) return;
    ps->failed = 1;
    int line = 1, col = 1;
    for (const char *q = ps->s; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') line++, col = 1;
        else col++;
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ps->err && ps->errcap) snprintf(ps->err, ps->errcap, "line %d col %d: %s", line, col, msg);
}

static void ws(parser_t *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static jval_t *new_val(jtype_t t) {
    jval_t *v = calloc(1, sizeof *v);
    if (v) v->type = t;
    return v;
}

static int push(jval_t *v, jval_t *item, char *key) {
    jval_t **ni = realloc(v->item, (size_t)(v->n + 1) * sizeof *ni);
    if (!ni) return 0;
    v->item = ni;
    if (v->type == J_OBJECT) {
        char **nk = realloc(v->key, (size_t)(v->n + 1) * sizeof *nk);
        if (!nk) return 0;
        v->key = nk;
        v->key[v->n] = key;
    }
    v->item[v->n++] = item;
    return 1;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser_t *ps, unsigned *out) {
    if (ps->end - ps->p < 4) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0) return 0;
        v = v * 16 + (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at ps->p (which is at the opening quote). */
static char *parse_string(parser_t *ps) {
    ps->p++;
    /* The unescaped text is never longer than the escaped one. */
    const char *q = ps->p;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    char *out = malloc((size_t)(q - ps->p) + 1), *o = out;
    if (!out) {
        fail(ps, "out of memory");
        return NULL;
    }
    while (1) {
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            *o = 0;
            return out;
        }
        if (c < 0x20) {
            fail(ps, "raw control character 0x%02x in a string", c);
            break;
        }
        if (c != '\\') {
            *o++ = (char)c;
            ps->p++;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) {
            fail(ps, "unterminated escape");
            break;
        }
        char e = *ps->p++;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!read_hex4(ps, &cp)) {
                fail(ps, "bad \\u escape");
                goto bad;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    fail(ps, "lone high surrogate");
                    goto bad;
                }
                ps->p += 2;
                if (!read_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    fail(ps, "bad low surrogate");
                    goto bad;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(ps, "lone low surrogate");
                goto bad;
            }
            /* A \u escape yields at most 4 bytes from at least 6 in. */
            o += put_utf8(o, cp);
            break;
        }
        default:
            fail(ps, "bad escape \\%c", e);
            goto bad;
        }
    }
bad:
    free(out);
    return NULL;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static jval_t *parse_number(parser_t *ps) {
    const char *start = ps->p;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    if (ps->p >= ps->end || !is_digit(*ps->p)) {
        fail(ps, "bad number");
        return NULL;
    }
    if (*ps->p == '0') {
        ps->p++;
        if (ps->p < ps->end && is_digit(*ps->p)) {
            fail(ps, "leading zero in a number");
            return NULL;
        }
    } else {
        while (ps->p < ps->end && is_digit(*ps->p)) ps->p++;
    }
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p >= ps->end || !is_digit(*ps->p)) {
            fail(ps, "digits expected after the decimal point");
            return NULL;
        }
        while (ps->p < ps->end && is_digit(*ps->p)) ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || !is_digit(*ps->p)) {
            fail(ps, "digits expected in the exponent");
            return NULL;
        }
        while (ps->p < ps->end && is_digit(*ps->p)) ps->p++;
    }
    char buf[64];
    size_t n = (size_t)(ps->p - start);
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, start, n);
    buf[n] = 0;
    jval_t *v = new_val(J_NUMBER);
    if (v) v->num = strtod(buf, NULL);
    return v;
}

static int literal(parser_t *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, word, n)) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static jval_t *parse_value(parser_t *ps) {
    ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "value expected, found the end");
        return NULL;
    }
    char c = *ps->p;
    if (c == '{' || c == '[') {
        if (++ps->depth > MAX_DEPTH) {
            fail(ps, "nested too deeply");
            return NULL;
        }
        int obj = c == '{';
        char close = obj ? '}' : ']';
        jval_t *v = new_val(obj ? J_OBJECT : J_ARRAY);
        if (!v) return NULL;
        ps->p++;
        ws(ps);
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return v;
        }
        while (1) {
            char *key = NULL;
            if (obj) {
                ws(ps);
                if (ps->p >= ps->end || *ps->p != '"') {
                    fail(ps, "member name (a string) expected");
                    break;
                }
                key = parse_string(ps);
                if (!key) break;
                ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') {
                    fail(ps, "':' expected after a member name");
                    free(key);
                    break;
                }
                ps->p++;
            }
            jval_t *item = parse_value(ps);
            if (!item) {
                free(key);
                break;
            }
            if (!push(v, item, key)) {
                fail(ps, "out of memory");
                json_free(item);
                free(key);
                break;
            }
            ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                ws(ps);
                if (ps->p < ps->end && *ps->p == close) {
                    fail(ps, "trailing comma");
                    break;
                }
                continue;
            }
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                ps->depth--;
                return v;
            }
            fail(ps, "',' or '%c' expected", close);
            break;
        }
        json_free(v);
        return NULL;
    }
    if (c == '"') {
        char *s = parse_string(ps);
        if (!s) return NULL;
        jval_t *v = new_val(J_STRING);
        if (!v) {
            free(s);
            return NULL;
        }
        v->str = s;
        return v;
    }
    if (c == '-' || is_digit(c)) return parse_number(ps);
    if (literal(ps, "true") || literal(ps, "false")) {
        jval_t *v = new_val(J_BOOL);
        if (v) v->num = ps->p[-1] == 'e' && ps->p[-2] == 'u';
        return v;
    }
    if (literal(ps, "null")) return new_val(J_NULL);
    fail(ps, "unexpected character '%c'", c);
    return NULL;
}

jval_t *json_parse(const char *text, size_t len, char *err, size_t errcap) {
    parser_t ps = { text, text + len, text, err, errcap, 0, 0 };
    if (err && errcap) err[0] = 0;
    jval_t *v = parse_value(&ps);
    if (v) {
        ws(&ps);
        if (ps.p != ps.end) {
            fail(&ps, "text after the value");
            json_free(v);
            return NULL;
        }
    }
    if (!v && !ps.failed) fail(&ps, "out of memory");
    return v;
}

jval_t *json_parse_file(const char *path, char *err, size_t errcap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "cannot open %s", path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        snprintf(err, errcap, "out of memory reading %s", path);
        return NULL;
    }
    jval_t *v = json_parse(buf, len, err, errcap);
    free(buf);
    return v;
}

void json_free(jval_t *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) {
        json_free(v->item[i]);
        if (v->key) free(v->key[i]);
    }
    free(v->item);
    free(v->key);
    free(v->str);
    free(v);
}

const jval_t *json_get(const jval_t *obj, const char *key) {
    if (!obj || obj->type != J_OBJECT) return NULL;
    for (int i = obj->n - 1; i >= 0; i--)
        if (!strcmp(obj->key[i], key)) return obj->item[i];
    return NULL;
}

/* ---- Required fields -------------------------------------------------------- */

static const char *type_name(jtype_t t) {
    static const char *names[] = { "null", "bool", "number", "string", "array", "object" };
    return names[t];
}

static int type_ok(const jval_t *v, const char *types) {
    if (!types || !*types) return 1;
    const char *p = types;
    while (*p) {
        size_t l = strcspn(p, "|");
        if (strlen(type_name(v->type)) == l && !strncmp(p, type_name(v->type), l)) return 1;
        p += l + (p[l] == '|');
    }
    return 0;
}

/* Walks `path` (segments separated by '.') from v; `where` is what has been
 * walked so far, for the error message. */
static int walk(const jval_t *v, const char *path, const char *types, char *where, size_t wcap, char *err,
                size_t errcap) {
    if (!*path) {
        if (type_ok(v, types)) return 1;
        snprintf(err, errcap, "%s is %s, expected %s", *where ? where : "the document", type_name(v->type), types);
        return 0;
    }
    size_t l = strcspn(path, ".");
    char seg[128];
    if (l >= sizeof seg) l = sizeof seg - 1;
    memcpy(seg, path, l);
    seg[l] = 0;
    const char *next = path[l] == '.' ? path + l + 1 : path + l;
    int each = 0, may_be_empty = 0;
    char *br = strstr(seg, "[]");
    if (br) {
        each = 1;
        may_be_empty = br[2] == '?';
        *br = 0;
    }
    const jval_t *m = v;
    size_t wl = strlen(where);
    if (*seg) {
        if (v->type != J_OBJECT) {
            snprintf(err, errcap, "%s is %s, not an object with '%s'", *where ? where : "the document",
                     type_name(v->type), seg);
            return 0;
        }
        m = json_get(v, seg);
        snprintf(where + wl, wcap - wl, "%s%s", wl ? "." : "", seg);
        if (!m) {
            snprintf(err, errcap, "missing field %s", where);
            return 0;
        }
    }
    if (!each) return walk(m, next, types, where, wcap, err, errcap);
    if (m->type != J_ARRAY) {
        snprintf(err, errcap, "%s is %s, expected an array", where, type_name(m->type));
        return 0;
    }
    if (m->n == 0 && !may_be_empty) {
        snprintf(err, errcap, "%s is an empty array", where);
        return 0;
    }
    size_t wl2 = strlen(where);
    for (int i = 0; i < m->n; i++) {
        snprintf(where + wl2, wcap - wl2, "[%d]", i);
        if (!walk(m->item[i], next, types, where, wcap, err, errcap)) return 0;
    }
    return 1;
}

int json_require(const jval_t *root, const char *spec, char *err, size_t errcap) {
    char path[256], where[512] = "";
    const char *colon = strchr(spec, ':');
    size_t l = colon ? (size_t)(colon - spec) : strlen(spec);
    if (l >= sizeof path) l = sizeof path - 1;
    memcpy(path, spec, l);
    path[l] = 0;
    if (!root) {
        snprintf(err, errcap, "no document");
        return 0;
    }
    return walk(root, path, colon ? colon + 1 : NULL, where, sizeof where, err, errcap);
}
