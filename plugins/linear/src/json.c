/*
 * json.c: the strict JSON reader declared in json.h.
 *
 * One recursive-descent reader serves both validation and lookup: it moves a
 * cursor over the text and stops at the first error. Lookups run it over
 * values json_validate already accepted, where it cannot fail.
 */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A cursor over JSON text. */
typedef struct {
    const char *p;
    const char *end;
    const char *error;
} reader;

static bool value(reader *r, int depth);

static bool fail(reader *r, const char *message) {
    if (r->error == NULL) {
        r->error = message;
    }
    return false;
}

static void skip_space(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) {
        r->p++;
    }
}

static bool at(const reader *r, char c) {
    return r->p < r->end && *r->p == c;
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the four hex digits at p (before end) into *out. */
static bool hex4(const char *p, const char *end, unsigned *out) {
    if (end - p < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) return false;
        v = (v << 4) | (unsigned)d;
    }
    *out = v;
    return true;
}

/* The length (1-4) of the well-formed UTF-8 sequence at p, or 0: no overlong
 * forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    unsigned cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static bool string(reader *r) {
    r->p++; /* the opening quote */
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            r->p++;
            return true;
        }
        if (c < 0x20) return fail(r, "control character in a string");
        if (c == '\\') {
            r->p++;
            if (r->p >= r->end) break;
            char e = *r->p;
            if (e == 'u') {
                unsigned ignored;
                if (!hex4(r->p + 1, r->end, &ignored)) return fail(r, "bad \\u escape in a string");
                r->p += 5;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                r->p++;
            } else {
                return fail(r, "bad escape in a string");
            }
            continue;
        }
        size_t n = utf8_sequence((const unsigned char *)r->p, (const unsigned char *)r->end);
        if (n == 0) return fail(r, "invalid UTF-8 in a string");
        r->p += n;
    }
    return fail(r, "unterminated string");
}

static bool digits(reader *r) {
    if (r->p >= r->end || !is_digit(*r->p)) return fail(r, "expected a digit");
    while (r->p < r->end && is_digit(*r->p)) r->p++;
    return true;
}

static bool number(reader *r) {
    if (at(r, '-')) r->p++;
    if (at(r, '0')) {
        r->p++;
    } else if (!digits(r)) {
        return false;
    }
    if (at(r, '.')) {
        r->p++;
        if (!digits(r)) return false;
    }
    if (at(r, 'e') || at(r, 'E')) {
        r->p++;
        if (at(r, '+') || at(r, '-')) r->p++;
        if (!digits(r)) return false;
    }
    return true;
}

static bool literal(reader *r, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return fail(r, "invalid literal");
    r->p += n;
    return true;
}

static bool array(reader *r, int depth) {
    if (depth > JSON_MAX_DEPTH) return fail(r, "nested too deeply");
    r->p++;
    skip_space(r);
    if (at(r, ']')) {
        r->p++;
        return true;
    }
    for (;;) {
        if (!value(r, depth)) return false;
        skip_space(r);
        if (at(r, ',')) {
            r->p++;
        } else if (at(r, ']')) {
            r->p++;
            return true;
        } else {
            return fail(r, "expected ',' or ']'");
        }
    }
}

static bool object(reader *r, int depth) {
    if (depth > JSON_MAX_DEPTH) return fail(r, "nested too deeply");
    r->p++;
    skip_space(r);
    if (at(r, '}')) {
        r->p++;
        return true;
    }
    for (;;) {
        skip_space(r);
        if (!at(r, '"')) return fail(r, "expected a member name");
        if (!string(r)) return false;
        skip_space(r);
        if (!at(r, ':')) return fail(r, "expected ':'");
        r->p++;
        if (!value(r, depth)) return false;
        skip_space(r);
        if (at(r, ',')) {
            r->p++;
        } else if (at(r, '}')) {
            r->p++;
            return true;
        } else {
            return fail(r, "expected ',' or '}'");
        }
    }
}

static bool value(reader *r, int depth) {
    skip_space(r);
    if (r->p >= r->end) return fail(r, "expected a value");
    switch (*r->p) {
    case '{':
        return object(r, depth + 1);
    case '[':
        return array(r, depth + 1);
    case '"':
        return string(r);
    case 't':
        return literal(r, "true");
    case 'f':
        return literal(r, "false");
    case 'n':
        return literal(r, "null");
    default:
        if (*r->p == '-' || is_digit(*r->p)) return number(r);
        return fail(r, "expected a value");
    }
}

const char *json_validate(const char *text, size_t len, json_span *out, size_t *offset) {
    reader r = {text, text + len, NULL};
    skip_space(&r);
    const char *start = r.p;
    if (value(&r, 0)) {
        const char *stop = r.p;
        skip_space(&r);
        if (r.p == r.end) {
            out->text = start;
            out->len = (size_t)(stop - start);
            return NULL;
        }
        fail(&r, "text after the value");
    }
    if (offset != NULL) *offset = (size_t)(r.p - text);
    return r.error;
}

json_kind json_kind_of(json_span v) {
    if (v.len == 0) return JSON_NONE;
    switch (v.text[0]) {
    case '{':
        return JSON_OBJECT;
    case '[':
        return JSON_ARRAY;
    case '"':
        return JSON_STRING;
    case 't':
        return JSON_TRUE;
    case 'f':
        return JSON_FALSE;
    case 'n':
        return JSON_NULL;
    default:
        return JSON_NUMBER;
    }
}

/* Whether the string value `key` decodes to `name`. */
static bool key_equals(json_span key, const char *name) {
    size_t n = strlen(name);
    if (memchr(key.text, '\\', key.len) == NULL) {
        return key.len == n + 2 && memcmp(key.text + 1, name, n) == 0;
    }
    size_t decoded_len;
    char *decoded = json_string(key, &decoded_len);
    bool same = decoded != NULL && decoded_len == n && memcmp(decoded, name, n) == 0;
    free(decoded);
    return same;
}

bool json_member(json_span object, const char *name, json_span *member) {
    if (json_kind_of(object) != JSON_OBJECT) return false;
    reader r = {object.text + 1, object.text + object.len, NULL};
    bool found = false;
    skip_space(&r);
    while (at(&r, '"')) {
        json_span key = {r.p, 0};
        if (!string(&r)) return false;
        key.len = (size_t)(r.p - key.text);
        skip_space(&r);
        r.p++; /* ':' */
        skip_space(&r);
        json_span v = {r.p, 0};
        if (!value(&r, 0)) return false;
        v.len = (size_t)(r.p - v.text);
        if (key_equals(key, name)) {
            *member = v;
            found = true;
        }
        skip_space(&r);
        if (!at(&r, ',')) break;
        r.p++;
        skip_space(&r);
    }
    return found;
}

/* Writes code point cp as UTF-8 at out; returns the bytes written. */
static size_t utf8_encode(unsigned cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

char *json_string(json_span v, size_t *len) {
    if (json_kind_of(v) != JSON_STRING || v.len < 2) return NULL;
    /* Decoding never lengthens: an escape of 6 bytes gives at most 3, a pair
     * of 12 at most 4; the two quotes leave room for the NUL. */
    char *out = malloc(v.len);
    if (out == NULL) return NULL;
    const char *p = v.text + 1, *end = v.text + v.len - 1;
    size_t n = 0;
    while (p < end) {
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        char e = p[1];
        p += 2;
        switch (e) {
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp = 0, low;
            hex4(p, end, &cp);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                hex4(p + 2, end, &low) && low >= 0xDC00 && low <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* a lone surrogate */
            n += utf8_encode(cp, out + n);
            break;
        }
        default: out[n++] = e; break; /* '"', '\\', '/' */
        }
    }
    out[n] = '\0';
    if (len != NULL) *len = n;
    return out;
}
