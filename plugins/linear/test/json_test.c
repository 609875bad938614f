/*
 * Unit tests of src/json.c, built for the build machine (not wasm) and run
 * by plugins/test.sh: each check prints what failed, and the exit status is
 * the number of failures.
 */
#include "../src/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                            \
        }                                                                          \
    } while (0)

static const char *validate(const char *text) {
    json_span v;
    return json_validate(text, strlen(text), &v, NULL);
}

static void accepts_json_and_rejects_the_rest(void) {
    const char *good[] = {
        "{}", " [ ] ", "0", "-0.5e+3", "\"a\\u00e9\\n\"", "true", "null",
        "{\"a\":[1,{\"b\":false}],\"c\":\"\xc3\xa9\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) CHECK(validate(good[i]) == NULL);
    const char *bad[] = {
        "", "{", "{\"a\"}", "{\"a\":1,}", "[1,]", "01", "1.", "-", "+1", "tru", "\"\\x\"",
        "\"a\nb\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "{} {}", "'a'", "{a:1}", "\"\\u12\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (validate(bad[i]) == NULL) fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK(validate(bad[i]) != NULL);
    }
}

static void bounds_nesting(void) {
    char deep[2 * (JSON_MAX_DEPTH + 1) + 1];
    size_t levels = JSON_MAX_DEPTH + 1;
    memset(deep, '[', levels);
    memset(deep + levels, ']', levels);
    deep[2 * levels] = '\0';
    CHECK(validate(deep) != NULL);
    CHECK(strcmp(validate(deep), "nested too deeply") == 0);
    deep[levels - 1] = ' ';
    deep[levels] = ' ';
    CHECK(validate(deep) == NULL);
}

static void reports_where_it_stopped(void) {
    json_span v;
    size_t at = 0;
    const char *text = "{\"a\": tru}";
    CHECK(json_validate(text, strlen(text), &v, &at) != NULL);
    CHECK(at == 6);
    /* Only len bytes are read: the value ends before the buffer does. */
    CHECK(json_validate("[1] trailing", 3, &v, NULL) == NULL);
    CHECK(v.len == 3);
}

static void finds_members_and_decodes_strings(void) {
    const char *text = " {\"id\": \"x\\\"y\", \"n\": 12, \"d\\u0061ta\": {\"id\": \"in\"}, \"n\": [1]} ";
    json_span root, m;
    CHECK(json_validate(text, strlen(text), &root, NULL) == NULL);
    CHECK(json_kind_of(root) == JSON_OBJECT);
    CHECK(json_member(root, "id", &m) && json_kind_of(m) == JSON_STRING);
    size_t len = 0;
    char *id = json_string(m, &len);
    CHECK(id != NULL && strcmp(id, "x\"y") == 0 && len == 3);
    free(id);
    CHECK(json_member(root, "n", &m) && json_kind_of(m) == JSON_ARRAY); /* the last one wins */
    CHECK(json_member(root, "data", &m) && m.len == 12 && memcmp(m.text, "{\"id\": \"in\"}", 12) == 0);
    CHECK(!json_member(root, "missing", &m));
    CHECK(!json_member(m, "missing", &m));
    json_span number = {"12", 2};
    CHECK(json_string(number, NULL) == NULL);
}

static void decodes_unicode_escapes(void) {
    const char *text = "\"\\u00e9\\ud83d\\ude00\\ud800x\\u0000\"";
    json_span v;
    CHECK(json_validate(text, strlen(text), &v, NULL) == NULL);
    size_t len = 0;
    char *s = json_string(v, &len);
    /* é, 😀, U+FFFD for the lone surrogate, x, and the NUL of \u0000 (the literal's own). */
    const char expected[] = "\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx";
    CHECK(s != NULL && len == sizeof expected && memcmp(s, expected, sizeof expected) == 0);
    free(s);
}

int main(void) {
    accepts_json_and_rejects_the_rest();
    bounds_nesting();
    reports_where_it_stopped();
    finds_members_and_decodes_strings();
    decodes_unicode_escapes();
    if (failures == 0) printf("json_test: ok\n");
    return failures;
}
