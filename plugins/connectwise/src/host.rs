//! The host services the element uses, behind a trait.
//!
//! The element's logic takes any [`Host`], so the same code runs inside the
//! component (with [`WasmHost`], which calls the `plugboard:element/host`
//! imports) and in unit tests on the build machine (with a fake).

use crate::bindings::plugboard::element::host as imports;
pub use crate::bindings::plugboard::element::host::LogLevel;
use crate::bindings::plugboard::element::types::{FetchError, Header, HttpRequest, HttpResponse};

/// What the element needs from the host: logging, hashing, base64, constant-time
/// comparison, and policy-checked HTTPS requests.
pub trait Host {
    /// Writes a line to the host's log.
    fn log(&self, level: LogLevel, message: &str);

    /// SHA-256 of `data`.
    fn sha256(&self, data: &[u8]) -> Vec<u8>;

    /// HMAC-SHA256 of `message` under `key`.
    fn hmac_sha256(&self, key: &[u8], message: &[u8]) -> Vec<u8>;

    /// Standard base64 with padding.
    fn base64_encode(&self, data: &[u8]) -> String;

    /// Decodes standard base64.
    fn base64_decode(&self, text: &str) -> Result<Vec<u8>, String>;

    /// Compares two byte strings in constant time.
    fn constant_time_eq(&self, a: &[u8], b: &[u8]) -> bool;

    /// GETs an https URL through the host's outbound policy.
    fn https_get(&self, url: &str, headers: &[Header]) -> Result<HttpResponse, FetchError>;

    /// Sends any HTTPS request through the host's outbound policy.
    fn https_send(&self, request: &HttpRequest) -> Result<HttpResponse, FetchError>;
}

/// The host as seen from inside the component: every call is a WIT import.
pub struct WasmHost;

impl Host for WasmHost {
    fn log(&self, level: LogLevel, message: &str) {
        imports::log(level, message);
    }

    fn sha256(&self, data: &[u8]) -> Vec<u8> {
        imports::sha256(data)
    }

    fn hmac_sha256(&self, key: &[u8], message: &[u8]) -> Vec<u8> {
        imports::hmac_sha256(key, message)
    }

    fn base64_encode(&self, data: &[u8]) -> String {
        imports::base64_encode(data)
    }

    fn base64_decode(&self, text: &str) -> Result<Vec<u8>, String> {
        imports::base64_decode(text)
    }

    fn constant_time_eq(&self, a: &[u8], b: &[u8]) -> bool {
        imports::constant_time_eq(a, b)
    }

    fn https_get(&self, url: &str, headers: &[Header]) -> Result<HttpResponse, FetchError> {
        imports::https_get(url, headers)
    }

    fn https_send(&self, request: &HttpRequest) -> Result<HttpResponse, FetchError> {
        imports::https_send(request)
    }
}
