/*
 * linear.c: the Linear element, in C.
 *
 * Linear (linear.app) posts a JSON body per change, e.g.
 *   {"action": "create", "type": "Issue", "createdAt": "2026-...Z",
 *    "data": {"id": "...", ...}, "webhookTimestamp": 1764211148123, ...}
 * with `Linear-Signature: hex(HMAC-SHA256(secret, body))` and a
 * `Linear-Delivery` id. The element verifies the signature with the host's
 * hmac-sha256 and constant-time-eq, refuses a webhookTimestamp further than
 * `linear.webhook.max-age-seconds` (default 60) from the host's clock (a
 * replay), and maps the body into one normalized event: the action into
 * its type, `type` and `data.id` into the object, `createdAt` into the date
 * and `data` into its raw data. Polling is not offered.
 *
 * Memory: the bindings hand the arguments of every export to it, so each
 * export frees them before returning; everything it returns is allocated
 * and freed by the bindings after the host has read it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "plugboard.h"

#define SECRET_KEY "linear.webhook.secret"
#define MAX_AGE_KEY "linear.webhook.max-age-seconds"
#define DEFAULT_MAX_AGE_SECONDS 60
#define SIGNATURE_HEADER "linear-signature"
#define DELIVERY_HEADER "linear-delivery"
#define NO_POLLING "linear receives webhooks and does not poll"

#define BAD_REQUEST PLUGBOARD_ELEMENT_TYPES_ELEMENT_ERROR_BAD_REQUEST
#define UNAUTHORIZED PLUGBOARD_ELEMENT_TYPES_ELEMENT_ERROR_UNAUTHORIZED

/* Parses a whole number of at most 15 digits (no sign, fraction or
 * exponent) from text[0..len) into *out. */
static bool whole_number(const char *text, size_t len, int64_t *out) {
    if (len == 0 || len > 15) return false;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return false;
        n = n * 10 + (text[i] - '0');
    }
    *out = n;
    return true;
}

/* Refuses a body whose webhookTimestamp (milliseconds) is further than the
 * instance's maximum age from the host's clock. */
static bool fresh(const pb_config *cfg, json_span body, pb_error *err) {
    int64_t max_age = DEFAULT_MAX_AGE_SECONDS, sent;
    const pb_string *configured = pb_setting(cfg, MAX_AGE_KEY);
    if (configured != NULL && !whole_number((const char *)configured->ptr, configured->len, &max_age)) {
        return pb_fail(err, BAD_REQUEST,
                    "configuration `" MAX_AGE_KEY "` must be a whole number of seconds (0: no limit)", NULL);
    }
    if (max_age == 0) return true;
    json_span stamp;
    if (!json_member(body, "webhookTimestamp", &stamp) || !whole_number(stamp.text, stamp.len, &sent)) {
        return pb_fail(err, BAD_REQUEST, "webhookTimestamp is missing or not milliseconds", NULL);
    }
    int64_t skew = plugboard_element_host_now_unix_millis() - sent;
    if (skew < 0) skew = -skew;
    if (skew > max_age * 1000) {
        char seconds[21], limit[21];
        return pb_fail(err, UNAUTHORIZED, "webhookTimestamp is ", pb_decimal(skew / 1000, seconds),
                       " s from the host's clock, more than " MAX_AGE_KEY " (", pb_decimal(max_age, limit), " s)",
                       NULL);
    }
    return true;
}

static plugboard_element_types_event_type_t event_type(json_span body) {
    json_span action;
    if (json_member(body, "action", &action)) {
        if (action.len == 8 && memcmp(action.text, "\"create\"", 8) == 0) return PLUGBOARD_ELEMENT_TYPES_EVENT_TYPE_CREATED;
        if (action.len == 8 && memcmp(action.text, "\"update\"", 8) == 0) return PLUGBOARD_ELEMENT_TYPES_EVENT_TYPE_UPDATED;
        if (action.len == 8 && memcmp(action.text, "\"remove\"", 8) == 0) return PLUGBOARD_ELEMENT_TYPES_EVENT_TYPE_DELETED;
    }
    return PLUGBOARD_ELEMENT_TYPES_EVENT_TYPE_UNKNOWN;
}

/* Maps a verified, fresh body into the accepted outcome. */
static bool map(const pb_request *request, json_span body, exports_plugboard_element_element_webhook_outcome_t *ret,
                pb_error *err) {
    json_span data;
    if (!json_member(body, "data", &data) || json_kind_of(data) != JSON_OBJECT) {
        return pb_fail(err, BAD_REQUEST, "data is missing or not an object", NULL);
    }
    plugboard_element_types_normalized_event_t event = {
        .event_type = event_type(body),
        .object_type = pb_text_member(body, "type"),
        .object_id = pb_text_member(data, "id"),
        .date = pb_text_member(body, "createdAt"),
        .raw = pb_copy(data.text, data.len),
    };
    if (event.object_type.len == 0 || event.object_id.len == 0) {
        plugboard_element_types_normalized_event_free(&event);
        return pb_fail(err, BAD_REQUEST, "type or data.id is missing or not a string", NULL);
    }
    plugboard_element_types_webhook_events_t *accepted = &ret->val.accepted;
    ret->tag = PLUGBOARD_ELEMENT_TYPES_WEBHOOK_OUTCOME_ACCEPTED;
    accepted->events.ptr = malloc(sizeof event);
    if (accepted->events.ptr == NULL) abort();
    accepted->events.ptr[0] = event;
    accepted->events.len = 1;
    const pb_string *delivery = pb_header(request, DELIVERY_HEADER);
    accepted->message_id.is_some = delivery != NULL;
    if (delivery != NULL) accepted->message_id.val = pb_copy((const char *)delivery->ptr, delivery->len);
    accepted->raw.is_some = false; /* the host keeps the body itself */
    return true;
}

static bool webhook(const pb_config *cfg, pb_request *request, exports_plugboard_element_element_webhook_outcome_t *ret,
                    pb_error *err) {
    const pb_string *secret = pb_setting(cfg, SECRET_KEY);
    if (secret == NULL) {
        return pb_fail(err, BAD_REQUEST, "configuration `" SECRET_KEY "` is missing", NULL);
    }
    if (!pb_verify_hmac_sha256(secret, request, SIGNATURE_HEADER, PB_HEX, err)) return false;
    json_span body;
    size_t at = 0;
    const char *problem = json_validate((const char *)request->body.ptr, request->body.len, &body, &at);
    if (problem != NULL) {
        char offset[21];
        return pb_fail(err, BAD_REQUEST, "body is not JSON: ", problem, " at byte ", pb_decimal((int64_t)at, offset),
                       NULL);
    }
    if (json_kind_of(body) != JSON_OBJECT) {
        return pb_fail(err, BAD_REQUEST, "body is not a JSON object", NULL);
    }
    return fresh(cfg, body, err) && map(request, body, ret, err);
}

bool exports_plugboard_element_element_webhook(pb_config *cfg, pb_request *request,
                                               exports_plugboard_element_element_webhook_outcome_t *ret,
                                               pb_error *err) {
    bool ok = webhook(cfg, request, ret, err);
    exports_plugboard_element_element_config_free(cfg);
    exports_plugboard_element_element_http_request_free(request);
    return ok;
}

static plugboard_element_types_config_key_t config_key(const char *name, bool required, bool secret,
                                                       const char *description) {
    return (plugboard_element_types_config_key_t){
        .name = pb_copy_cstr(name),
        .required = required,
        .secret = secret,
        .description = pb_copy_cstr(description),
    };
}

void exports_plugboard_element_element_describe(exports_plugboard_element_element_element_info_t *ret) {
    static const size_t keys = 2;
    memset(ret, 0, sizeof *ret);
    ret->key = pb_copy_cstr("linear");
    ret->name = pb_copy_cstr("Linear");
    ret->version = pb_copy_cstr("0.1.0");
    ret->modes = PLUGBOARD_ELEMENT_TYPES_EVENT_MODES_WEBHOOKS;
    ret->config_keys.ptr = malloc(keys * sizeof *ret->config_keys.ptr);
    if (ret->config_keys.ptr == NULL) abort();
    ret->config_keys.ptr[0] = config_key(SECRET_KEY, true, true, "The signing secret of the Linear webhook (its settings page shows it).");
    ret->config_keys.ptr[1] = config_key(MAX_AGE_KEY, false, false,
                                         "How far, in seconds, a delivery's webhookTimestamp may be from the host's clock "
                                         "before it is refused as a replay (default 60; 0: no limit).");
    ret->config_keys.len = keys;
    ret->default_poll_configuration.is_some = false;
    ret->stateless = true; /* nothing is kept between calls */
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
