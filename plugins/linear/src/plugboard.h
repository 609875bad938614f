/*
 * plugboard.h: helpers for element plugins in C, over the bindings that
 * `wit-bindgen c` writes from wit/element.wit (element_plugin.h).
 *
 * They cover what every element does: copy text into the strings it
 * returns, read its configuration and the request's headers, answer an
 * element error with a message, verify an HMAC-SHA256 signature with the
 * host's helpers, and read JSON members as text (with json.h).
 *
 * Memory, as the bindings define it: a WIT string or list of length 0 is
 * never freed, a longer one is freed with free(); what an export returns is
 * freed by the bindings once the host has read it, and an export owns its
 * arguments (it frees them with the bindings' *_free functions).
 */
#ifndef PLUGBOARD_HELPERS_H
#define PLUGBOARD_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "element_plugin.h"
#include "json.h"

typedef element_plugin_string_t pb_string;
typedef exports_plugboard_element_element_config_t pb_config;
typedef exports_plugboard_element_element_http_request_t pb_request;
typedef exports_plugboard_element_element_element_error_t pb_error;

/* How a signature header encodes the HMAC's bytes. */
typedef enum { PB_HEX, PB_BASE64 } pb_encoding;

/* A copy of text[0..len) as a WIT string, for returning. */
pb_string pb_copy(const char *text, size_t len);

/* A copy of a NUL-terminated string as a WIT string, for returning. */
pb_string pb_copy_cstr(const char *text);

/* Whether WIT string `s` holds exactly `text`. */
bool pb_equals(const pb_string *s, const char *text);

/* The non-empty value of configuration key `name`, or NULL. */
const pb_string *pb_setting(const pb_config *config, const char *name);

/* The value of header `name` (the host lower-cases inbound names), or NULL. */
const pb_string *pb_header(const pb_request *request, const char *name);

/* Sets *err to the element error `tag` (PLUGBOARD_ELEMENT_TYPES_ELEMENT_ERROR_*)
 * with the message made of the strings that follow, up to a NULL (cut at
 * 255 bytes); returns false, so an export can `return pb_fail(...)`. No
 * printf: its stdio would make the module import WASI. */
__attribute__((sentinel)) bool pb_fail(pb_error *err, uint8_t tag, const char *part, ...);

/* Writes the decimal digits of n into out (NUL-terminated); returns out. */
const char *pb_decimal(int64_t n, char out[21]);

/* Writes a line to the host's log (a C element has no stdio). */
void pb_log(uint8_t level, const char *text);

/* Checks that header `name` holds HMAC-SHA256(secret, body) in `encoding`,
 * computed and compared in constant time by the host. On a mismatch, a
 * missing header or one that does not decode, sets *err to unauthorized
 * saying which, and returns false. */
bool pb_verify_hmac_sha256(const pb_string *secret, pb_request *request, const char *name, pb_encoding encoding,
                           pb_error *err);

/* The answer of an element that does not poll, for both polling exports:
 * frees their arguments (`draft` is prepare-poll's, `response` map-poll's;
 * the other is NULL) and sets *err to unsupported with `message`; returns
 * false. */
bool pb_no_polling(pb_config *config, exports_plugboard_element_element_poll_context_t *poll, pb_request *draft,
                   exports_plugboard_element_element_http_response_t *response, const char *message, pb_error *err);

/* Member `name` of a validated JSON object as text, for returning: a string
 * decoded, a number as written, anything else (or nothing) empty. */
pb_string pb_text_member(json_span object, const char *name);

#endif
