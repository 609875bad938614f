//! `helpers-guest`: the `helpers-host` element with its own crypto — the
//! same source built with the `guest-crypto` feature, so HMAC-SHA256,
//! SHA-256, hex and base64 run as guest code (the `hmac`, `sha2`, `hex` and
//! `base64` crates compiled into the component) instead of calling the
//! host's helpers. The host's `host_helpers` benchmark compares the two.

#[path = "../../helpers-host/src/lib.rs"]
mod element;
