/*
 * json.h: a small, strict JSON reader for element plugins in C.
 *
 * It reads JSON text in place, without building a tree: json_validate checks
 * that a buffer is exactly one JSON value (RFC 8259: strict grammar, nesting
 * at most JSON_MAX_DEPTH levels, strings of valid escapes), and the other
 * functions then look into the spans of a validated value. Nothing here
 * reads past the end of a span, and nothing allocates except json_string,
 * which returns a copy the caller frees.
 */
#ifndef PLUGBOARD_JSON_H
#define PLUGBOARD_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* The deepest nesting of arrays and objects json_validate accepts. */
#define JSON_MAX_DEPTH 64

/* A JSON value: its text in a buffer json_validate accepted, without the
 * whitespace around it. */
typedef struct {
    const char *text;
    size_t len;
} json_span;

/* The kind of a JSON value, from its first character. */
typedef enum {
    JSON_NONE,
    JSON_OBJECT,
    JSON_ARRAY,
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL,
} json_kind;

/* Checks that text[0..len) is one JSON value with optional whitespace around
 * it. Returns NULL and sets *value to the value's span when it is; otherwise
 * a static message saying what is wrong, and *at (when not NULL) to the
 * offset where it was found. */
const char *json_validate(const char *text, size_t len, json_span *value, size_t *at);

/* The kind of a validated value (JSON_NONE for an empty span). */
json_kind json_kind_of(json_span value);

/* Finds member `name` of a validated object. Returns true and sets *member
 * when the object has it (the last one, if the name repeats); false when it
 * has not, when `object` is not an object, or when memory ran out. */
bool json_member(json_span object, const char *name, json_span *member);

/* Decodes a validated string value into UTF-8, NUL-terminated; *len (when
 * not NULL) gets its length without the NUL (the text may hold "\u0000").
 * Returns NULL when the value is not a string or memory ran out. The caller
 * frees the result. */
char *json_string(json_span value, size_t *len);

#endif
