//! A full data folder, for real: the host's data folder lives on a small
//! tmpfs mounted here (the tests run as root; a mount that fails fails the
//! test, naming why), which a filler file then fills. While the store
//! cannot write, webhooks are answered 503 with `Retry-After` (vendors
//! retry) and `/readyz` says the store cannot write and why; once the
//! filler is gone the host is ready again by itself, with no webhook to
//! nudge it, and every webhook acknowledged before is delivered.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::host::{webhook_path, HostOptions, TestHost};
use crate::support::receiver::Receiver;
use crate::support::wait_until;

/// A tmpfs mounted on a temporary folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "the full-disk test needs a tmpfs (run as root): mount answered {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system holding `dir` with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![0x5a_u8; chunk];
        while file.write_all(&block).is_ok() {}
    }
    let _ = file.sync_all();
    path
}

async fn readyz(host: &TestHost) -> (StatusCode, Value) {
    let r = reqwest::get(format!("{}/readyz", host.base)).await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// Posts a webhook of about 16 KiB: status, `Retry-After`, answer.
async fn post(host: &TestHost, path: &str, n: usize) -> (StatusCode, Option<String>, Value) {
    let body = json!({"n": n, "pad": "x".repeat(16 * 1024)}).to_string();
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", host.base))
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        retry_after,
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_data_folder_is_not_ready_answers_503_and_recovers() {
    let disk = Tmpfs::mount("16m");
    let receiver = Receiver::start().await;
    let mut host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        data_parent: Some(disk.path().to_path_buf()),
        ..HostOptions::default()
    })
    .await;
    let id = host
        .create_instance(json!({"element": {"key": "probe"}, "configuration": {
            "event.notification.enabled": true,
            "event.notification.callback.url": receiver.url()}}))
        .await["id"]
        .as_i64()
        .unwrap();
    let path = webhook_path("probe", id);
    let mut acknowledged = Vec::new();
    for n in 0..3 {
        let (status, _, answer) = post(&host, &path, n).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        acknowledged.push(answer["eventIds"][0].as_str().unwrap().to_owned());
    }
    assert_eq!(readyz(&host).await.0, StatusCode::OK);

    // Full: webhooks are acknowledged while the database still has room
    // in its files, then refused as retryable.
    let filler = fill(disk.path());
    let mut refused = None;
    for n in 3..400 {
        let (status, retry_after, answer) = post(&host, &path, n).await;
        if status == StatusCode::OK {
            acknowledged.push(answer["eventIds"][0].as_str().unwrap().to_owned());
            continue;
        }
        refused = Some((status, retry_after, answer));
        break;
    }
    let (status, retry_after, answer) = refused.expect("the full data folder refused nothing");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["code"], "unavailable", "{answer}");
    let seconds: u64 = retry_after
        .expect("a 503 names when to retry")
        .parse()
        .unwrap();
    assert!(seconds > 0);
    let (status, retry_after, _) = post(&host, &path, 1000).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "still full");
    assert!(retry_after.is_some());
    let (status, report) = readyz(&host).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["ready"], false);
    let why = report["checks"]["store"].as_str().unwrap();
    assert!(
        why.contains("cannot write") && why.contains("full"),
        "the store check names why: {why}"
    );

    // Space is back: ready again without a webhook to nudge it.
    std::fs::remove_file(&filler).unwrap();
    wait_until("/readyz to recover", Duration::from_secs(30), || async {
        (readyz(&host).await.0 == StatusCode::OK).then_some(())
    })
    .await;
    let (status, _, answer) = post(&host, &path, 2000).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    acknowledged.push(answer["eventIds"][0].as_str().unwrap().to_owned());

    // Nothing acknowledged was lost.
    wait_until(
        "every acknowledged webhook to be delivered",
        Duration::from_secs(60),
        || async {
            let got: Vec<Value> = receiver.received().iter().map(|r| r.json()).collect();
            acknowledged
                .iter()
                .all(|id| got.iter().any(|b| b["message"]["eventId"] == id.as_str()))
                .then_some(())
        },
    )
    .await;
    host.server.take().unwrap().shutdown().await.unwrap();
    drop(host);
    drop(disk);
}
