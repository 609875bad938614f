/*
 * {{name}}: the {{title}} element plugin, in C.
 *
 * A starting point: webhooks carry `x-signature: base64(HMAC-SHA256(secret,
 * body))` and a JSON body {"id", "type", "action", "date"}, mapped into one
 * normalized event. Replace the signature scheme and the mapping with your
 * vendor's.
 *
 * The functions named exports_plugboard_element_element_* are the element's
 * exports, declared in the bindings (build/bindings/element_plugin.h, written
 * by `wit-bindgen c` from wit/element.wit); plugboard_element_host_* are the
 * host's helpers, and src/plugboard.h wraps the common ones (pb_*). Memory:
 * every export receives its arguments to keep, so it frees them before
 * returning; what it returns must be allocated (pb_copy, malloc), and the
 * bindings free it after the host has read it. A C element has no stdio
 * (printf would make the module import WASI, which the build refuses) and
 * no clock of its own: log (pb_log) and read the time through the host.
 * abort() ends the call with a trap: log the reason at error level first,
 * and the host shows it in the call's error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "plugboard.h"

/* The configuration key of the webhook secret. */
#define SECRET_KEY "{{name}}.webhook.secret"
/* The header that carries the signature (the host lower-cases names). */
#define SIGNATURE_HEADER "x-signature"
/* The answer to the polling calls. */
#define NO_POLLING "{{name}} receives webhooks and does not poll"

#define BAD_REQUEST PLUGBOARD_ELEMENT_TYPES_ELEMENT_ERROR_BAD_REQUEST

typedef exports_plugboard_element_element_webhook_outcome_t webhook_outcome;

static plugboard_element_types_event_type_t event_type(json_span payload) {
    pb_string action = pb_text_member(payload, "action");
    plugboard_element_types_event_type_t type = PLUGBOARD_ELEMENT_TYPES_EVENT_TYPE_UNKNOWN;
    if (pb_equals(&action, "created")) type = PLUGBOARD_ELEMENT_TYPES_EVENT_TYPE_CREATED;
    if (pb_equals(&action, "updated")) type = PLUGBOARD_ELEMENT_TYPES_EVENT_TYPE_UPDATED;
    if (pb_equals(&action, "deleted")) type = PLUGBOARD_ELEMENT_TYPES_EVENT_TYPE_DELETED;
    element_plugin_string_free(&action);
    return type;
}

static bool webhook(const pb_config *cfg, pb_request *request, webhook_outcome *ret, pb_error *err) {
    const pb_string *secret = pb_setting(cfg, SECRET_KEY);
    if (secret == NULL) return pb_fail(err, BAD_REQUEST, "configuration `" SECRET_KEY "` is missing", NULL);
    if (!pb_verify_hmac_sha256(secret, request, SIGNATURE_HEADER, PB_BASE64, err)) return false;

    json_span payload;
    size_t at = 0;
    const char *problem = json_validate((const char *)request->body.ptr, request->body.len, &payload, &at);
    if (problem != NULL) {
        char offset[21];
        return pb_fail(err, BAD_REQUEST, "body is not valid JSON: ", problem, " at byte ", pb_decimal((int64_t)at, offset),
                       NULL);
    }
    if (json_kind_of(payload) != JSON_OBJECT) return pb_fail(err, BAD_REQUEST, "body is not a JSON object", NULL);
    plugboard_element_types_normalized_event_t event = {
        .event_type = event_type(payload),
        .object_type = pb_text_member(payload, "type"),
        .object_id = pb_text_member(payload, "id"),
        .date = pb_text_member(payload, "date"), /* RFC 3339, or empty for the time of receipt */
        .raw = pb_copy(payload.text, payload.len),
    };
    ret->tag = PLUGBOARD_ELEMENT_TYPES_WEBHOOK_OUTCOME_ACCEPTED;
    plugboard_element_types_webhook_events_t *accepted = &ret->val.accepted;
    accepted->events.ptr = malloc(sizeof event);
    if (accepted->events.ptr == NULL) abort();
    accepted->events.ptr[0] = event;
    accepted->events.len = 1;
    accepted->message_id.is_some = false;
    accepted->raw.is_some = false; /* the host keeps the body itself */
    return true;
}

bool exports_plugboard_element_element_webhook(pb_config *cfg, pb_request *request, webhook_outcome *ret,
                                               pb_error *err) {
    bool ok = webhook(cfg, request, ret, err);
    if (!ok && err->tag == BAD_REQUEST) pb_log(PLUGBOARD_ELEMENT_HOST_LOG_LEVEL_DEBUG, "{{name}}: refused a malformed webhook");
    exports_plugboard_element_element_config_free(cfg);
    exports_plugboard_element_element_http_request_free(request);
    return ok;
}

void exports_plugboard_element_element_describe(exports_plugboard_element_element_element_info_t *ret) {
    memset(ret, 0, sizeof *ret);
    ret->key = pb_copy_cstr("{{name}}");
    ret->name = pb_copy_cstr("{{title}}");
    ret->version = pb_copy_cstr("0.1.0");
    ret->modes = PLUGBOARD_ELEMENT_TYPES_EVENT_MODES_WEBHOOKS;
    ret->config_keys.ptr = malloc(sizeof *ret->config_keys.ptr);
    if (ret->config_keys.ptr == NULL) abort();
    ret->config_keys.ptr[0] = (plugboard_element_types_config_key_t){
        .name = pb_copy_cstr(SECRET_KEY),
        .required = true,
        .secret = true,
        .description = pb_copy_cstr("The secret the vendor signs webhooks with."),
    };
    ret->config_keys.len = 1;
    /* A polling element names the resources an instance polls when it names
     * none, as JSON text of an `event.poller.configuration` object. */
    ret->default_poll_configuration.is_some = false;
    /* True while the element keeps nothing between calls (no global that a
     * call changes): the host may then reuse a warm instance. */
    ret->stateless = true;
}

bool exports_plugboard_element_element_prepare_poll(pb_config *cfg, exports_plugboard_element_element_poll_context_t *poll,
                                                    pb_request *draft, pb_request *ret, pb_error *err) {
    (void)ret;
    return pb_no_polling(cfg, poll, draft, NULL, NO_POLLING, err);
}

bool exports_plugboard_element_element_map_poll(pb_config *cfg, exports_plugboard_element_element_poll_context_t *poll,
                                                exports_plugboard_element_element_http_response_t *response,
                                                exports_plugboard_element_element_poll_page_t *ret, pb_error *err) {
    (void)ret;
    return pb_no_polling(cfg, poll, NULL, response, NO_POLLING, err);
}
