//! A fake [`Host`] for unit tests: real hashing and base64, canned fetches,
//! and a record of what the element asked for.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::bindings::plugboard::element::types::{FetchError, Header, HttpResponse};
use crate::host::{Host, LogLevel};

/// A host whose fetches answer from a table.
#[derive(Default)]
pub struct FakeHost {
    /// What `https_get` answers for each URL; other URLs are denied.
    pub answers: HashMap<String, Result<HttpResponse, FetchError>>,
    /// Every URL the element fetched, in order.
    pub fetched: RefCell<Vec<String>>,
    /// Every line the element logged.
    pub logs: RefCell<Vec<(LogLevel, String)>>,
}

impl FakeHost {
    /// Makes `url` answer `status` with `body`.
    pub fn answer(mut self, url: &str, status: u16, body: &str) -> Self {
        let response = HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        self.answers.insert(url.to_owned(), Ok(response));
        self
    }

    /// Makes `url` fail with `error`.
    pub fn fail(mut self, url: &str, error: FetchError) -> Self {
        self.answers.insert(url.to_owned(), Err(error));
        self
    }
}

/// HMAC-SHA256 computed locally, to sign test callbacks.
pub fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length works");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

impl Host for FakeHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }

    fn sha256(&self, data: &[u8]) -> Vec<u8> {
        Sha256::digest(data).to_vec()
    }

    fn hmac_sha256(&self, key: &[u8], message: &[u8]) -> Vec<u8> {
        hmac(key, message)
    }

    fn base64_encode(&self, data: &[u8]) -> String {
        STANDARD.encode(data)
    }

    fn base64_decode(&self, text: &str) -> Result<Vec<u8>, String> {
        STANDARD.decode(text).map_err(|error| error.to_string())
    }

    fn constant_time_eq(&self, a: &[u8], b: &[u8]) -> bool {
        a == b
    }

    fn https_get(&self, url: &str, _headers: &[Header]) -> Result<HttpResponse, FetchError> {
        self.fetched.borrow_mut().push(url.to_owned());
        self.answers
            .get(url)
            .cloned()
            .unwrap_or_else(|| Err(FetchError::Denied(format!("{url} is not allowed"))))
    }
}
