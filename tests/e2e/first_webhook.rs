//! The README's "A first webhook", run as written: its `sh` blocks are taken
//! from README.md and run with bash, curl, openssl and python3 against the
//! real binary, so the walkthrough cannot drift from what works.
//!
//! What is replaced, and nothing else: the `cargo run … -- serve` line of
//! step 1 becomes the test's binary with the same environment assignments
//! (on a free port, with known credentials); `127.0.0.1:8080` becomes that
//! port; the receiver's port `9000` (in `receiver.py 9000` and
//! `127.0.0.1:9000`) becomes a free one; the `AUTH=` line gets the
//! binary's credentials. The receiver block runs in the background, the
//! other blocks one after the other in one bash session, as in a terminal.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::support::process::{free_port, Binary, AUTH};
use crate::support::{plugin_bytes, repo_root, wait_until};

/// The section's `sh` blocks, in order.
fn walkthrough_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("\n## A first webhook\n")
        .expect("README.md has a section \"A first webhook\"");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in section.lines() {
        match (&mut open, line.trim_end()) {
            (None, "```sh") => open = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                open = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// `text` with `from` replaced by `to`, which must occur in it.
fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "expected {from:?} in the README block:\n{text}"
    );
    text.replace(from, to)
}

/// The environment assignments before `cargo run --release -p plugboard -- serve`.
fn serve_environment(block: &str) -> Vec<(String, String)> {
    let line = block
        .lines()
        .find(|l| l.contains("cargo run --release -p plugboard -- serve"))
        .unwrap_or_else(|| panic!("step 1 starts the sidecar with cargo run:\n{block}"));
    line.split_whitespace()
        .take_while(|word| *word != "cargo")
        .map(|word| {
            let (name, value) = word.split_once('=').expect("NAME=value before cargo");
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// A shell command started in its own process group, killed with it on drop.
struct Background {
    child: Child,
    output: PathBuf,
}

impl Background {
    fn bash(script: Option<&str>, output: &Path) -> Self {
        let file = File::create(output).unwrap();
        let mut command = Command::new("bash");
        if let Some(script) = script {
            command.args(["-c", script]).stdin(Stdio::null());
        } else {
            command.stdin(Stdio::piped());
        }
        let child = command
            .current_dir(repo_root())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap();
        Self {
            child,
            output: output.to_path_buf(),
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Runs `block` in the session and waits for it to finish; returns what it printed.
async fn run_block(session: &mut Background, n: usize, block: &str) -> String {
    let before = session.output().len();
    let marker = format!("@@ block {n} done");
    write!(session.stdin(), "{block}\necho '{marker}'\n").unwrap();
    session.stdin().flush().unwrap();
    let what = format!("README block {n} to finish");
    wait_until(&what, Duration::from_secs(60), || {
        let out = session.output();
        let exited = session.child.try_wait().unwrap();
        if let Some(status) = exited {
            panic!("the shell stopped ({status}) in README block {n}:\n{block}\n{out}");
        }
        std::future::ready(
            out.contains(&marker)
                .then(|| out[before..].replace(&marker, "")),
        )
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_walkthrough_delivers_a_signed_notification() {
    let blocks = walkthrough_blocks();
    let [serve, receiver, create, webhook, event_log] = blocks.as_slice() else {
        panic!("expected five sh blocks (serve, receiver, create, webhook, event log), got {blocks:#?}");
    };
    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("github.wasm"), plugin_bytes("github")).unwrap();

    // Step 1: the sidecar, with the environment the README gives it.
    let mut binary = Binary::serve(&plugins, &work.path().join("data"));
    for (name, value) in serve_environment(serve) {
        binary = binary.env(&name, value);
    }
    let host = binary.spawn();
    host.wait_ready().await;

    // Step 2: the receiver, in the background.
    let receiver_port = free_port();
    let receiver_script = replace(
        receiver,
        "receiver.py 9000 ",
        &format!("receiver.py {receiver_port} "),
    );
    let receiver = Background::bash(Some(&receiver_script), &work.path().join("receiver.out"));
    wait_until("the receiver to listen", Duration::from_secs(20), || {
        let up = std::net::TcpStream::connect(("127.0.0.1", receiver_port)).is_ok();
        std::future::ready(up.then_some(()))
    })
    .await;

    // Steps 3 to 5, in one shell session.
    let local = |block: &str| {
        let block = replace(block, "127.0.0.1:8080", &format!("127.0.0.1:{}", host.port));
        block.replace("127.0.0.1:9000", &format!("127.0.0.1:{receiver_port}"))
    };
    let create = replace(
        &local(create),
        "AUTH='User …, Organization …'",
        &format!("AUTH='{AUTH}'"),
    );
    assert!(
        create.contains(&format!("127.0.0.1:{receiver_port}/")),
        "{create}"
    );
    let mut session = Background::bash(None, &work.path().join("session.out"));
    writeln!(session.stdin(), "set -e").unwrap();

    let created = run_block(&mut session, 3, &create).await;
    assert!(
        created.contains("\"webhook\":{"),
        "the create answer carries the webhook: {created}"
    );
    assert!(created.contains("\"path\":\"/events/github/"), "{created}");

    let sent = run_block(&mut session, 4, &local(webhook)).await;
    assert!(
        sent.starts_with("HTTP/1.1 200 OK"),
        "the webhook is accepted: {sent}"
    );
    let answer: serde_json::Value =
        serde_json::from_str(sent.trim().lines().last().unwrap()).unwrap();
    let event_id = answer["eventIds"][0]
        .as_str()
        .expect("one event id")
        .to_string();

    let expected = readme_receiver_line().replace("{eventId}", &event_id);
    let printed = wait_until(
        "the receiver to verify the notification",
        Duration::from_secs(20),
        || {
            let out = receiver.output();
            std::future::ready(out.contains("receiver:").then_some(out))
        },
    )
    .await;
    assert_eq!(
        printed.trim(),
        expected,
        "the receiver verified both signatures"
    );

    let logged = run_block(&mut session, 5, &local(event_log)).await;
    let log: serde_json::Value = serde_json::from_str(logged.trim()).unwrap();
    let entry = &log["events"][0];
    assert_eq!(entry["eventId"], event_id.as_str(), "{log}");
    assert_eq!(entry["status"], "NOTIFIED", "{log}");
    assert_eq!(entry["totalAttempts"], 1, "{log}");
    drop(session);
    drop(receiver);
    drop(host);
}

/// The receiver's line as the README shows it, with `{eventId}` for the id.
fn readme_receiver_line() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let (_, after) = readme
        .split_once("```text\nreceiver: verified ")
        .expect("the README shows the receiver's line");
    format!("receiver: verified {}", after.lines().next().unwrap())
}
