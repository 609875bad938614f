//! Bindings of `plugboard:element@0.1.0` (`wit/v0.1.0/element.wit`), kept
//! so components built against it load and work unchanged. Its host imports
//! are the 0.2.0 ones, reached through [`super::convert`].

use super::convert::Cast;
use super::v0_2::plugboard::element::host as current;
use crate::runtime::state::CallState;

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "element-plugin",
    imports: {
        "plugboard:element/host.https-get": async,
    },
    exports: {
        default: async,
    },
});

use plugboard::element::{host, types};

impl types::Host for CallState {}

impl host::Host for CallState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        current::Host::log(self, level.cast(), message)
    }

    fn hmac_sha256(&mut self, key: Vec<u8>, message: Vec<u8>) -> Vec<u8> {
        current::Host::hmac_sha256(self, key, message)
    }

    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        current::Host::sha256(self, data)
    }

    fn base64_encode(&mut self, data: Vec<u8>) -> String {
        current::Host::base64_encode(self, data)
    }

    fn base64_decode(&mut self, text: String) -> Result<Vec<u8>, String> {
        current::Host::base64_decode(self, text)
    }

    fn constant_time_eq(&mut self, a: Vec<u8>, b: Vec<u8>) -> bool {
        current::Host::constant_time_eq(self, a, b)
    }

    async fn https_get(
        &mut self,
        url: String,
        headers: Vec<types::Header>,
    ) -> Result<types::HttpResponse, types::FetchError> {
        current::Host::https_get(self, url, headers.cast())
            .await
            .cast()
    }
}
