//! Compiling plugins in a short-lived child process.
//!
//! Compiling a component with Cranelift allocates hundreds of MiB for a
//! JavaScript or Python plugin; most of it stays in the allocator of the
//! process that compiled. The host therefore runs `plugboard plugins compile`
//! (itself, hidden from `--help`) as a child: the child compiles with an
//! engine built from the same [`RuntimeConfig`], writes the artifact into the
//! cache folder and exits; the host then maps the artifact like on any later
//! start. The host's memory stays at its idle size from the first start, and
//! a compiler blow-up on an untrusted plugin ends the child, not the host.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use wasmtime::component::Component;

use super::{artifact, build_engine, LoadError, RuntimeConfig};

/// Exit code of the child when the bytes are not a valid component.
const EXIT_INVALID: i32 = 3;
/// Longest error message read back from the child.
const MAX_MESSAGE_BYTES: u64 = 64 << 10;
/// Longest a plugin may take to compile (the bundled JavaScript and Python
/// plugins take 5-10 s on a small machine); the child is killed after it.
const COMPILE_DEADLINE: Duration = Duration::from_secs(600);
/// How often the host checks whether the child has exited.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What running the compiler child came to.
pub(super) enum ChildOutcome {
    /// The artifact is at the requested path.
    Written,
    /// The plugin is not a valid component (the child's message).
    Invalid(String),
    /// The child could not do its job for a reason unrelated to the plugin
    /// (could not start, could not write the artifact): compile in process.
    Unavailable(String),
}

/// Runs `program plugins compile` with `wasm` on its stdin, asking it to
/// write the artifact of `config`'s engine to `out`.
pub(super) fn compile_in_child(
    program: &Path,
    config: &RuntimeConfig,
    wasm: &[u8],
    out: &Path,
) -> ChildOutcome {
    let settings = match serde_json::to_string(config) {
        Ok(s) => s,
        Err(e) => return ChildOutcome::Unavailable(format!("encoding runtime settings: {e}")),
    };
    let spawned = Command::new(program)
        .args(["plugins", "compile", "--runtime"])
        .arg(&settings)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return ChildOutcome::Unavailable(format!("starting {}: {e}", program.display())),
    };
    // Feed stdin and read stderr on threads of their own, so a child that
    // fails early (and stops reading) or hangs cannot block this one.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut message = String::new();
    let status = std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = stdin.write_all(wasm);
        });
        let reader = scope.spawn(|| {
            let _ = stderr.take(MAX_MESSAGE_BYTES).read_to_string(&mut message);
        });
        let status = wait_with_deadline(&mut child, COMPILE_DEADLINE);
        let _ = reader.join();
        status
    });
    let message = message.trim().to_string();
    match status {
        Ok(None) => ChildOutcome::Invalid(format!(
            "compiling it took longer than {} s; the compiler process was stopped",
            COMPILE_DEADLINE.as_secs()
        )),
        Ok(Some(s)) => exit_outcome(s, message),
        Err(e) => ChildOutcome::Unavailable(format!("waiting for the compiler process: {e}")),
    }
}

/// Waits for `child` to exit; kills it once `deadline` has passed (then
/// `None`).
fn wait_with_deadline(
    child: &mut Child,
    deadline: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// What the child's exit status says about the plugin.
fn exit_outcome(status: ExitStatus, message: String) -> ChildOutcome {
    match status {
        s if s.success() => ChildOutcome::Written,
        s if s.code() == Some(EXIT_INVALID) => ChildOutcome::Invalid(message),
        s => match s.code() {
            Some(code) => ChildOutcome::Unavailable(format!(
                "the compiler process exited with {code}: {message}"
            )),
            // Killed by a signal: most likely the kernel's OOM killer or a
            // crash while compiling this plugin. Do not retry it in the host.
            None => ChildOutcome::Invalid(format!(
                "compiling it ended the compiler process ({s}); \
                 the plugin is too large or malformed for this host"
            )),
        },
    }
}

/// The child's side, `plugboard plugins compile`: reads a component from
/// stdin, compiles it with the engine `config` describes and writes the
/// artifact to `out` (durably, by rename). Exits with [`EXIT_INVALID`] and
/// the reason on stderr when the bytes are not a valid component.
pub fn run_child(config_json: &str, out: &Path) -> ! {
    let code = match child_main(config_json, out) {
        Ok(()) => 0,
        Err(LoadError::Invalid(message)) => {
            eprintln!("{message}");
            EXIT_INVALID
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    };
    std::process::exit(code)
}

fn child_main(config_json: &str, out: &Path) -> Result<(), LoadError> {
    let config: RuntimeConfig = serde_json::from_str(config_json)
        .map_err(|e| LoadError::Io(format!("runtime settings: {e}")))?;
    let mut wasm = Vec::new();
    std::io::stdin()
        .read_to_end(&mut wasm)
        .map_err(|e| LoadError::Io(format!("reading the component from stdin: {e}")))?;
    let (engine, _) = build_engine(&config).map_err(|e| LoadError::Io(format!("{e:#}")))?;
    let component =
        Component::new(&engine, &wasm).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
    let bytes = component
        .serialize()
        .map_err(|e| LoadError::Io(format!("serializing the compiled plugin: {e:#}")))?;
    artifact::store(&bytes, out).map_err(|e| LoadError::Io(format!("{}: {e}", out.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_its_deadline_is_stopped() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let status = wait_with_deadline(&mut child, Duration::from_millis(100)).unwrap();
        assert!(status.is_none(), "{status:?}");
        // Killed and reaped, long before `sleep 30` would have ended.
        assert!(child.try_wait().unwrap().is_some());
    }

    #[test]
    fn a_child_that_exits_in_time_reports_its_status() {
        let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let status = wait_with_deadline(&mut child, Duration::from_secs(30))
            .unwrap()
            .expect("exited");
        assert!(matches!(
            exit_outcome(status, "bad".into()),
            ChildOutcome::Invalid(m) if m == "bad"
        ));
    }
}
