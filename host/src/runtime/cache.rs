//! On-disk cache of compiled plugins, so a restart does not recompile.
//!
//! Artifacts are keyed by the SHA-256 of the plugin bytes and by the engine's
//! compatibility hash (wasmtime version, target and compiler settings), so a
//! different engine never loads an artifact it did not produce. Writes are
//! atomic (temp file + rename); a corrupt or stale artifact is recompiled.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::artifact::store;
use super::compiler::{compile_in_child, ChildOutcome};
use super::{LoadError, RuntimeConfig};

/// Hex SHA-256 of a plugin's bytes: its identity in caches and status.
pub(crate) fn content_hash(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

fn engine_key(engine: &Engine) -> String {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Loads the compiled artifact for `hash` from `dir`, or compiles `wasm`
/// and stores the artifact there: in a child process running `compiler`
/// when one is given (see [`super::compiler`]), else in this process.
pub(crate) fn load_or_compile(
    engine: &Engine,
    config: &RuntimeConfig,
    dir: &Path,
    hash: &str,
    wasm: &[u8],
) -> Result<Component, LoadError> {
    let path = dir.join(format!("{hash}-{}.cwasm", engine_key(engine)));
    if path.exists() {
        match deserialize(engine, &path) {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %format!("{e:#}"),
                "ignoring unusable compiled plugin artifact"
            ),
        }
    }
    if let Some(program) = &config.compiler_program {
        let started = std::time::Instant::now();
        match compile_in_child(program, config, wasm, &path) {
            ChildOutcome::Written => match deserialize(engine, &path) {
                Ok(mapped) => {
                    tracing::info!(
                        hash,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "plugin compiled in a child process"
                    );
                    return Ok(mapped);
                }
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %format!("{e:#}"),
                    "the compiler process wrote an unusable artifact; compiling in process"
                ),
            },
            ChildOutcome::Invalid(message) => return Err(LoadError::Invalid(message)),
            ChildOutcome::Unavailable(reason) => {
                tracing::warn!(%reason, "cannot compile in a child process; compiling in process")
            }
        }
    }
    let component =
        Component::new(engine, wasm).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
    match component.serialize() {
        Ok(bytes) => {
            let written = store(&bytes, &path);
            drop(bytes);
            match written {
                // Serve from the file like any later start does: its code is
                // then file-backed and only the pages in use stay resident,
                // instead of the whole compiled image in anonymous memory.
                Ok(()) => {
                    if let Ok(mapped) = deserialize(engine, &path) {
                        return Ok(mapped);
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not cache compiled plugin")
                }
            }
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "could not serialize compiled plugin"),
    }
    Ok(component)
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the artifact was produced by `Component::serialize` of an engine
    // with the same compatibility hash (it is in the file name) and lives in
    // the host's own data folder, which only the host writes. wasmtime also
    // checks the artifact's header against the engine before using it.
    unsafe { Component::deserialize_file(engine, path) }.map_err(anyhow::Error::from)
}
