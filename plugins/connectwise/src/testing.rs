//! A fake [`Host`] for unit tests: real hashing and base64, canned fetches,
//! and a record of what the element asked for.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::bindings::plugboard::element::types::{FetchError, Header, HttpRequest, HttpResponse};
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
    /// What `https_send` answers for `"{METHOD} {url}"`, in turn (the last
    /// answer repeats); other requests are denied.
    pub send_answers: HashMap<String, Vec<Result<HttpResponse, FetchError>>>,
    /// Every request the element sent, in order.
    pub sent: RefCell<Vec<HttpRequest>>,
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

    /// Makes the next `method` request to `url` answer `status` with `body`
    /// (added in turn; the last one keeps answering).
    pub fn answer_send(mut self, method: &str, url: &str, status: u16, body: &str) -> Self {
        let response = HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        self.send_answers
            .entry(format!("{method} {url}"))
            .or_default()
            .push(Ok(response));
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

    fn https_send(&self, request: &HttpRequest) -> Result<HttpResponse, FetchError> {
        let mut sent = self.sent.borrow_mut();
        let key = format!("{} {}", request.method, request.url);
        let earlier = sent
            .iter()
            .filter(|r| format!("{} {}", r.method, r.url) == key)
            .count();
        sent.push(request.clone());
        match self.send_answers.get(&key) {
            Some(answers) => answers[earlier.min(answers.len() - 1)].clone(),
            None => Err(FetchError::Denied(format!("{key} is not allowed"))),
        }
    }
}
