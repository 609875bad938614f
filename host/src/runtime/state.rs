//! The state of one plugin call (its `Store` data) and the host imports a
//! plugin may use: logging (rate-limited per call, [`super::call_log`]),
//! the clock, hashing, HMAC, base64, hex, constant-time compare and the
//! policy-restricted `https-get` and `https-send`. Plugins get nothing else: WASI is
//! linked deny-by-default (no files, sockets, environment or arguments;
//! clocks and randomness only), created lazily on first use so plugins that
//! import no WASI pay nothing for it.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::v0_2::plugboard::element::{host, types};
use super::bindings::{FetchError, Header, LogLevel};
use super::call_log::CallLog;
use super::limits::{CpuDeadline, MemoryCap};
use crate::outbound::{self, HostAllowList, OutboundClient};

impl From<&outbound::OutboundResponse> for types::HttpResponse {
    /// The plugin's view of a response the host received (header values
    /// that are not UTF-8 are replaced lossily).
    fn from(resp: &outbound::OutboundResponse) -> Self {
        Self {
            status: resp.status,
            headers: resp
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.as_str().to_string(),
                    value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
                .collect(),
            body: resp.body.to_vec(),
        }
    }
}

/// What a call's host imports may reach: the outbound client and the hosts
/// the element may fetch from for this instance.
#[derive(Clone, Default)]
pub struct FetchScope {
    /// Client that enforces the outbound policy; `None` disables fetches.
    pub client: Option<OutboundClient>,
    /// Hosts this call may fetch from.
    pub allowed: Arc<HostAllowList>,
    /// Recorded answers that replace the network (`plugboard plugins
    /// run`): when set, `https-get` is answered from them only.
    pub fixtures: Option<Arc<FetchFixtures>>,
}

/// Recorded answers to `https-get`, by exact URL, and the URLs a plugin
/// asked for: a plugin run offline sees them instead of the network.
#[derive(Debug, Default)]
pub struct FetchFixtures {
    responses: std::collections::BTreeMap<String, types::HttpResponse>,
    requested: std::sync::Mutex<Vec<String>>,
}

impl FetchFixtures {
    /// Fixtures answering each URL with its response.
    pub fn new(responses: std::collections::BTreeMap<String, types::HttpResponse>) -> Self {
        Self {
            responses,
            requested: std::sync::Mutex::default(),
        }
    }

    /// Every URL the plugin asked for, in order.
    pub fn requested(&self) -> Vec<String> {
        self.requested
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The recorded answer to `url`; a URL without one fails as the
    /// network would, naming the URL.
    fn answer(&self, url: &str) -> Result<types::HttpResponse, FetchError> {
        self.requested
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(url.to_owned());
        self.responses.get(url).cloned().ok_or_else(|| {
            FetchError::Failed(format!("no fixture answers {url} (--fetch {url}=FILE)"))
        })
    }
}

/// Who a call is for, for log lines written by the plugin.
#[derive(Clone, Debug, Default)]
pub struct CallLabel {
    /// Element key of the plugin.
    pub element: String,
    /// Instance the call is for, if any.
    pub instance: Option<i64>,
}

/// Store data of one call.
pub(crate) struct CallState {
    wasi: Option<(WasiCtx, ResourceTable)>,
    pub(crate) memory: MemoryCap,
    pub(crate) cpu: CpuDeadline,
    label: CallLabel,
    fetch: FetchScope,
    pub(crate) log: CallLog,
}

impl CallState {
    pub(crate) fn new(
        memory: MemoryCap,
        cpu: CpuDeadline,
        label: CallLabel,
        fetch: FetchScope,
    ) -> Self {
        Self {
            wasi: None,
            memory,
            cpu,
            label,
            fetch,
            log: CallLog::default(),
        }
    }

    /// Ends the call's log budget (reporting dropped lines) and returns
    /// the last error-level lines the plugin wrote during it.
    pub(crate) fn finish_log(&mut self) -> Option<String> {
        let errors = self.log.last_errors();
        self.log.finish((&self.label.element, self.label.instance));
        errors
    }
}

impl CallState {
    /// Readies the state of a warm instance for its next call: that call's
    /// label, fetch scope and CPU deadline; the memory cap keeps counting
    /// the memory the instance already has.
    pub(crate) fn renew(&mut self, cpu: CpuDeadline, label: CallLabel, fetch: FetchScope) {
        self.cpu = cpu;
        self.memory.exceeded = false;
        self.label = label;
        self.fetch = fetch;
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Default builder: no preopened dirs, env, args or sockets; stdio
        // goes nowhere; clocks and random are available.
        let (ctx, table) = self
            .wasi
            .get_or_insert_with(|| (WasiCtx::builder().build(), ResourceTable::new()));
        WasiCtxView { ctx, table }
    }
}

impl types::Host for CallState {}

impl host::Host for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.log
            .write((&self.label.element, self.label.instance), level, message);
    }

    fn now_unix_millis(&mut self) -> i64 {
        let now = time::OffsetDateTime::now_utc();
        i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    fn now_rfc3339(&mut self) -> String {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        time::OffsetDateTime::now_utc()
            .format(format)
            .expect("a UTC time formats")
    }

    fn hex_encode(&mut self, data: Vec<u8>) -> String {
        hex::encode(data)
    }

    fn hex_decode(&mut self, text: String) -> Result<Vec<u8>, String> {
        hex::decode(text.trim()).map_err(|e| format!("invalid hex: {e}"))
    }

    fn hmac_sha256(&mut self, key: Vec<u8>, message: Vec<u8>) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
        mac.update(&message);
        mac.finalize().into_bytes().to_vec()
    }

    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        Sha256::digest(&data).to_vec()
    }

    fn base64_encode(&mut self, data: Vec<u8>) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    fn base64_decode(&mut self, text: String) -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|e| format!("invalid base64: {e}"))
    }

    fn constant_time_eq(&mut self, a: Vec<u8>, b: Vec<u8>) -> bool {
        a.ct_eq(&b).into()
    }

    async fn https_get(
        &mut self,
        url: String,
        headers: Vec<Header>,
    ) -> Result<types::HttpResponse, FetchError> {
        if let Some(fixtures) = &self.fetch.fixtures {
            return fixtures.answer(&url);
        }
        let Some(client) = self.fetch.client.clone() else {
            return Err(FetchError::Denied(
                "outbound fetches are not available to this call".into(),
            ));
        };
        let headers = pairs(headers);
        let allowed = self.fetch.allowed.clone();
        let started = Instant::now();
        let result = client.plugin_get(&url, &headers, &allowed).await;
        self.cpu.credit_host_time(started.elapsed());
        self.answer(result)
    }

    async fn https_send(
        &mut self,
        request: types::HttpRequest,
    ) -> Result<types::HttpResponse, FetchError> {
        if self.fetch.fixtures.is_some() {
            return Err(FetchError::Denied(
                "https-send is not available offline (only recorded GETs are)".into(),
            ));
        }
        let Some(client) = self.fetch.client.clone() else {
            return Err(FetchError::Denied(
                "outbound requests are not available to this call".into(),
            ));
        };
        let headers = pairs(request.headers);
        let allowed = self.fetch.allowed.clone();
        let started = Instant::now();
        let result = client
            .plugin_send(
                &request.method,
                &request.url,
                &headers,
                request.body,
                &allowed,
            )
            .await;
        self.cpu.credit_host_time(started.elapsed());
        self.answer(result)
    }
}

impl CallState {
    /// The plugin's view of an outbound answer or failure.
    fn answer(
        &self,
        result: Result<outbound::OutboundResponse, outbound::FetchError>,
    ) -> Result<types::HttpResponse, FetchError> {
        match result {
            Ok(resp) => Ok(types::HttpResponse::from(&resp)),
            Err(err) => {
                tracing::debug!(element = %self.label.element, error = %err, "plugin fetch failed");
                Err(match err {
                    outbound::FetchError::Denied(why) => FetchError::Denied(why),
                    outbound::FetchError::InvalidRequest(why) => FetchError::Denied(why),
                    outbound::FetchError::Timeout => FetchError::Timeout,
                    outbound::FetchError::TooLarge { .. } => FetchError::TooLarge,
                    outbound::FetchError::Failed(why) => FetchError::Failed(why),
                })
            }
        }
    }
}

/// Headers as name/value pairs.
fn pairs(headers: Vec<Header>) -> Vec<(String, String)> {
    headers.into_iter().map(|h| (h.name, h.value)).collect()
}
