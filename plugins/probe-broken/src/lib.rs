//! A broken release of the probe element, for the host's tests of failed
//! webhooks and their reprocessing: the probe's own source built with its
//! `broken` feature, so it describes the same element (key `probe`) but
//! traps on every webhook. Dropping it into the plugin folder as
//! `probe.wasm` breaks the probe's instances; dropping the probe back in
//! fixes them.

#[path = "../../probe/src/lib.rs"]
mod probe;
