//! The real `plugboard` binary as a child process, for tests of what only a
//! process shows: configuration layers, signals, start-up and logs.
//!
//! [`Binary`] sets the folders, a free loopback port and known management
//! credentials through the environment; its standard error (the log) goes
//! to a file the test can read. The child is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::wait_until;

/// Management credentials of a spawned binary.
pub const AUTH: &str = "User proc-user-secret-7f3a, Organization proc-org-secret-91c2";

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `plugboard serve` command being set up.
pub struct Binary {
    command: Command,
    port: u16,
    log: PathBuf,
}

impl Binary {
    /// `plugboard serve` with these folders, listening on a free port, its
    /// log written to `<data>/stderr-<port>.log`.
    pub fn serve(plugins: &Path, data: &Path) -> Self {
        let port = free_port();
        std::fs::create_dir_all(data).unwrap();
        let log = data.join(format!("stderr-{port}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_plugboard"));
        command
            .arg("serve")
            .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLUGBOARD_PLUGINS", plugins)
            .env("PLUGBOARD_DATA", data)
            .env("PLUGBOARD_USER_SECRET", "proc-user-secret-7f3a")
            .env("PLUGBOARD_ORGANIZATION_SECRET", "proc-org-secret-91c2")
            .env("RUST_LOG", "info");
        if let Some(url) = super::test_database(data) {
            command.env("PLUGBOARD_DATABASE_URL", url);
        }
        Self { command, port, log }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Removes an environment variable the defaults set.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Adds command-line arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        self.command.args(args);
        self
    }

    /// Listens on this loopback port instead of a fresh one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self.command
            .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"));
        self
    }

    /// Starts the process with its standard error on a pipe, as under a
    /// process supervisor; a thread copies the pipe to the log file.
    pub fn spawn_piped(mut self) -> Process {
        let mut log = std::fs::File::create(&self.log).unwrap();
        let mut child = self
            .command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut pipe, &mut log));
        Process {
            child,
            port: self.port,
            log: self.log,
        }
    }

    /// Starts the process.
    pub fn spawn(mut self) -> Process {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = self
            .command
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Process {
            child,
            port: self.port,
            log: self.log,
        }
    }
}

/// A running `plugboard serve`.
pub struct Process {
    child: Child,
    /// The port it was told to listen on.
    pub port: u16,
    log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.base());
        wait_until(
            "the binary to be ready",
            Duration::from_secs(60),
            || async {
                let r = client.get(&url).send().await.ok()?;
                (r.status() == 200).then_some(())
            },
        )
        .await
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (`KILL`, `STOP`, `CONT`, …).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Its process id (for `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit.
    pub async fn exited(&mut self, deadline: Duration) -> ExitStatus {
        let child = &mut self.child;
        let mut status = None;
        wait_until("the binary to exit", deadline, || {
            status = child.try_wait().unwrap();
            std::future::ready(status.map(|_| ()))
        })
        .await;
        status.unwrap()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Creates a probe instance of the binary at `base` delivering to
/// `callback` (events on); returns its id.
pub async fn probe_instance(base: &str, callback: &str) -> i64 {
    create_instance(
        base,
        serde_json::json!({"element": {"key": "probe"}, "configuration": {
            "event.notification.enabled": true,
            "event.notification.callback.url": callback}}),
    )
    .await
}

/// Sends one webhook to the probe instance `id` of the binary at `base`;
/// returns its status.
pub async fn probe_webhook(base: &str, id: i64) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{base}{}", super::host::webhook_path("probe", id)))
        .json(&serde_json::json!({"hello": "world"}))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .status()
}

/// Creates an instance of the binary at `base` from `body` (the
/// `POST /instances` request); returns its id.
pub async fn create_instance(base: &str, body: serde_json::Value) -> i64 {
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/instances"))
        .header("authorization", AUTH)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("instance not created: {created}"))
}

/// An authenticated management `GET` of `url`, as JSON; `None` while the
/// binary does not answer with JSON.
pub async fn get_json(url: &str) -> Option<serde_json::Value> {
    reqwest::Client::new()
        .get(url)
        .header("authorization", AUTH)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}
