/*
 * plugboard.c: the helpers declared in plugboard.h.
 */
#include "plugboard.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

pb_string pb_copy(const char *text, size_t len) {
    pb_string out;
    element_plugin_string_dup_n(&out, text, len);
    return out;
}

pb_string pb_copy_cstr(const char *text) {
    return pb_copy(text, strlen(text));
}

bool pb_equals(const pb_string *s, const char *text) {
    size_t n = strlen(text);
    return s->len == n && memcmp(s->ptr, text, n) == 0;
}

const pb_string *pb_setting(const pb_config *config, const char *name) {
    for (size_t i = 0; i < config->len; i++) {
        if (pb_equals(&config->ptr[i].f0, name) && config->ptr[i].f1.len > 0) return &config->ptr[i].f1;
    }
    return NULL;
}

const pb_string *pb_header(const pb_request *request, const char *name) {
    for (size_t i = 0; i < request->headers.len; i++) {
        if (pb_equals(&request->headers.ptr[i].name, name)) return &request->headers.ptr[i].value;
    }
    return NULL;
}

bool pb_fail(pb_error *err, uint8_t tag, const char *part, ...) {
    char message[256];
    size_t len = 0;
    va_list args;
    va_start(args, part);
    for (; part != NULL; part = va_arg(args, const char *)) {
        size_t n = strlen(part);
        if (n > sizeof message - 1 - len) n = sizeof message - 1 - len;
        memcpy(message + len, part, n);
        len += n;
    }
    va_end(args);
    message[len] = '\0';
    err->tag = tag;
    /* Every case of element-error carries one string, at the same place. */
    err->val.bad_request = pb_copy_cstr(message);
    return false;
}

const char *pb_decimal(int64_t n, char out[21]) {
    char digits[20];
    size_t count = 0, at = 0;
    bool negative = n < 0;
    /* Digit by digit from the value itself, so INT64_MIN works too. */
    do {
        int digit = (int)(n % 10);
        digits[count++] = (char)('0' + (digit < 0 ? -digit : digit));
        n /= 10;
    } while (n != 0);
    if (negative) out[at++] = '-';
    while (count > 0) out[at++] = digits[--count];
    out[at] = '\0';
    return out;
}

void pb_log(uint8_t level, const char *text) {
    pb_string message = {(uint8_t *)text, strlen(text)};
    plugboard_element_host_log(level, &message);
}

bool pb_verify_hmac_sha256(const pb_string *secret, pb_request *request, const char *name, pb_encoding encoding,
                           pb_error *err) {
    const uint8_t unauthorized = PLUGBOARD_ELEMENT_TYPES_ELEMENT_ERROR_UNAUTHORIZED;
    const pb_string *presented = pb_header(request, name);
    if (presented == NULL) return pb_fail(err, unauthorized, "missing ", name, " header", NULL);
    pb_string text = *presented, problem;
    element_plugin_list_u8_t signature, expected;
    bool decoded = encoding == PB_HEX ? plugboard_element_host_hex_decode(&text, &signature, &problem)
                                      : plugboard_element_host_base64_decode(&text, &signature, &problem);
    if (!decoded) {
        char why[128];
        size_t n = problem.len < sizeof why - 1 ? problem.len : sizeof why - 1;
        memcpy(why, problem.ptr, n);
        why[n] = '\0';
        element_plugin_string_free(&problem);
        return pb_fail(err, unauthorized, name, encoding == PB_HEX ? " is not hex: " : " is not base64: ", why, NULL);
    }
    element_plugin_list_u8_t key = {secret->ptr, secret->len};
    plugboard_element_host_hmac_sha256(&key, &request->body, &expected);
    bool same = plugboard_element_host_constant_time_eq(&expected, &signature);
    element_plugin_list_u8_free(&signature);
    element_plugin_list_u8_free(&expected);
    return same || pb_fail(err, unauthorized, name, " does not match", NULL);
}

bool pb_no_polling(pb_config *config, exports_plugboard_element_element_poll_context_t *poll, pb_request *draft,
                   exports_plugboard_element_element_http_response_t *response, const char *message, pb_error *err) {
    exports_plugboard_element_element_config_free(config);
    exports_plugboard_element_element_poll_context_free(poll);
    if (draft != NULL) exports_plugboard_element_element_http_request_free(draft);
    if (response != NULL) exports_plugboard_element_element_http_response_free(response);
    return pb_fail(err, PLUGBOARD_ELEMENT_TYPES_ELEMENT_ERROR_UNSUPPORTED, message, NULL);
}

pb_string pb_text_member(json_span object, const char *name) {
    json_span value;
    if (!json_member(object, name, &value)) return pb_copy("", 0);
    if (json_kind_of(value) == JSON_NUMBER) return pb_copy(value.text, value.len);
    size_t len = 0;
    char *decoded = json_string(value, &len);
    if (decoded == NULL || len == 0) {
        free(decoded);
        return pb_copy("", 0);
    }
    /* json_string's buffer comes from malloc: the bindings free() it. */
    return (pb_string){(uint8_t *)decoded, len};
}
