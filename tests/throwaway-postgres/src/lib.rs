//! A throwaway PostgreSQL cluster for tests and benchmarks, started by the
//! test process itself.
//!
//! [`shared`] starts one cluster per process the first time it is asked
//! for; [`Cluster::start`] starts a private one (for tests that stop or
//! restart the server). Each cluster is made by `initdb` in a fresh folder
//! under the system's temporary folder, as the `postgres` user when the
//! process runs as root (PostgreSQL refuses to run as root), and listens
//! only on a Unix socket in that folder ([`Cluster::start_with_tls`] adds
//! TLS on 127.0.0.1 for tests of encrypted connections). Durability is left at PostgreSQL's
//! defaults (`fsync` and `synchronous_commit` on).
//!
//! Test harnesses have no global teardown, so every cluster is watched by a
//! small process of its own (in its own session, so a Ctrl-C of the test run
//! does not skip it) that waits for the test process to exit, then stops
//! the server (`pg_ctl stop -m immediate`) and removes the folder. A private
//! cluster is also stopped and removed when it is dropped.
//!
//! With `THROWAWAY_PG_STATEMENTS=1` in the environment, a cluster preloads
//! `pg_stat_statements` (shipped with Debian's `postgresql`), so a
//! benchmark can say which statements took the database's time
//! ([`Cluster::statements_reset`], [`Cluster::statements_report`]). It is
//! off by default: tracking costs the server a little on every statement.
//!
//! Without PostgreSQL installed (`/usr/lib/postgresql/*/bin`), asking for a
//! cluster panics with a message saying to install Debian's `postgresql`:
//! the PostgreSQL tests fail, they never skip silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where Debian installs PostgreSQL's server programs, one folder per major
/// version.
const INSTALL_ROOT: &str = "/usr/lib/postgresql";

/// Most client connections the cluster accepts: enough for many stores with
/// their pools, tests running side by side, and spawned hosts.
const MAX_CONNECTIONS: u32 = 400;

/// The environment variable that turns on statement statistics.
const STATEMENTS_VAR: &str = "THROWAWAY_PG_STATEMENTS";

/// The process-wide cluster, started on first use.
static SHARED: OnceLock<Cluster> = OnceLock::new();

/// Databases created so far by this process (their names must differ).
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// The cluster every test of this process shares, started the first time.
/// Each test should take a database of its own ([`Cluster::create_database`]).
///
/// # Panics
/// If PostgreSQL is not installed or the cluster does not start.
pub fn shared() -> &'static Cluster {
    SHARED.get_or_init(Cluster::start_watched)
}

/// A running PostgreSQL cluster in a temporary folder.
#[derive(Debug)]
pub struct Cluster {
    /// The temporary folder holding everything (removed at the end).
    root: PathBuf,
    /// The data folder `initdb` made.
    data: PathBuf,
    /// The folder of the Unix socket.
    socket_dir: PathBuf,
    /// The folder of PostgreSQL's programs.
    bin: PathBuf,
    /// The server's port (also in the Unix socket's name).
    port: u16,
    /// The server's certificate chain and key (PEM) when it takes TLS
    /// connections on 127.0.0.1.
    tls: Option<(String, String)>,
    /// Stop and remove it on drop (private clusters only; the shared one
    /// lives in a static and is left to its watcher).
    owned: bool,
    /// It preloads `pg_stat_statements` (`THROWAWAY_PG_STATEMENTS=1` when
    /// it was made).
    statements: bool,
}

impl Cluster {
    /// Starts a private cluster, stopped and removed when dropped (or, at
    /// the latest, when the process exits).
    ///
    /// # Panics
    /// If PostgreSQL is not installed or the cluster does not start.
    pub fn start() -> Cluster {
        let mut cluster = Self::start_watched();
        cluster.owned = true;
        cluster
    }

    /// Starts a private cluster that also listens on 127.0.0.1 (a free
    /// port, [`Cluster::tcp_url`]) with TLS on (`ssl = on`, the server
    /// certificate chain `cert_pem` and its key `key_pem`), and admits TCP
    /// clients only over TLS (`hostssl` in `pg_hba.conf`). The Unix socket
    /// stays open, without TLS, for the test's own connections.
    ///
    /// # Panics
    /// If PostgreSQL is not installed or the cluster does not start.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Cluster {
        let mut cluster = Self::start_with(Some((cert_pem.to_string(), key_pem.to_string())));
        cluster.owned = true;
        cluster
    }

    fn start_watched() -> Cluster {
        Self::start_with(None)
    }

    fn start_with(tls: Option<(String, String)>) -> Cluster {
        let bin = find_bin();
        let root = fresh_root();
        let data = root.join("data");
        let socket_dir = root.join("socket");
        std::fs::create_dir_all(&socket_dir).expect("creating the cluster's socket folder");
        let cluster = Cluster {
            root,
            data,
            socket_dir,
            bin,
            port: if tls.is_some() { free_port() } else { 5432 },
            tls,
            owned: false,
            statements: std::env::var(STATEMENTS_VAR).is_ok_and(|v| v == "1"),
        };
        cluster.hand_to_server_user();
        cluster.watch();
        cluster.initdb();
        cluster.start_server();
        cluster
    }

    /// The folder of the cluster's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The URL of database `name` on this cluster, as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres:///{name}?user=postgres&host={}&port={}",
            self.socket_dir.display(),
            self.port
        )
    }

    /// The URL of database `name` over TCP on 127.0.0.1, as the superuser
    /// (no TLS parameters: the caller adds them).
    ///
    /// # Panics
    /// If the cluster was not started with [`Cluster::start_with_tls`].
    pub fn tcp_url(&self, name: &str) -> String {
        assert!(
            self.tls.is_some(),
            "the cluster listens on TCP only with TLS"
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn create_database(&self) -> String {
        let name = self.create_database_named();
        self.url(&name)
    }

    /// Creates a fresh, empty database and returns its name.
    pub fn create_database_named(&self) -> String {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("plugboard_{}_{n}", std::process::id());
        self.client("createdb", &[&name]);
        name
    }

    /// Runs SQL on database `name` with `psql` and returns what it printed
    /// (unaligned, tuples only).
    pub fn psql(&self, name: &str, sql: &str) -> String {
        let out = self.client(
            "psql",
            &["-XAtq", "-v", "ON_ERROR_STOP=1", "-d", name, "-c", sql],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Crashes and restarts the server (`pg_ctl restart -m immediate`):
    /// every connection is cut, and only what was committed survives.
    pub fn restart_immediate(&self) {
        self.pg_ctl(&["restart", "-m", "immediate", "-w", "-l", &self.log()]);
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`).
    pub fn stop_immediate(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    /// Starts the server again after [`Cluster::stop_immediate`].
    pub fn start_server(&self) {
        self.pg_ctl(&["start", "-w", "-t", "60", "-l", &self.log()]);
    }

    /// CPU seconds (user + system) the server has used so far: the
    /// postmaster, its live processes (one per connection, plus background
    /// workers) and those that already exited. Linux only (`/proc`).
    pub fn cpu_seconds(&self) -> f64 {
        let pid_file =
            std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        let Some(postmaster) = pid_file.lines().next().map(str::trim).map(str::to_string) else {
            return 0.0;
        };
        let mut total = 0.0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let pid = entry.file_name().to_string_lossy().to_string();
            if pid == postmaster {
                // Its own time and that of its exited children.
                total += ticks(11) + ticks(12) + ticks(13) + ticks(14);
            } else if fields.get(1) == Some(&postmaster.as_str()) {
                total += ticks(11) + ticks(12);
            }
        }
        total / 100.0 // at 100 ticks per second
    }

    /// Whether this cluster tracks statement statistics
    /// (`THROWAWAY_PG_STATEMENTS=1` when it was made).
    pub fn tracks_statements(&self) -> bool {
        self.statements
    }

    /// Forgets the statement statistics gathered so far, cluster-wide, so
    /// a following [`Cluster::statements_report`] covers one phase. Does
    /// nothing unless the cluster [tracks statements](Cluster::tracks_statements).
    ///
    /// # Panics
    /// If database `name` does not exist.
    pub fn statements_reset(&self, name: &str) {
        if self.tracks_statements() {
            self.psql(
                name,
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; \
                 SELECT pg_stat_statements_reset()",
            );
        }
    }

    /// The `top` statements run on database `name` since the last
    /// [`Cluster::statements_reset`], by total execution time: calls,
    /// total and mean milliseconds, rows, shared buffers touched and WAL
    /// bytes written, with the statement's start. `None` unless the cluster
    /// [tracks statements](Cluster::tracks_statements).
    ///
    /// # Panics
    /// If database `name` does not exist.
    pub fn statements_report(&self, name: &str, top: u32) -> Option<String> {
        if !self.tracks_statements() {
            return None;
        }
        let rows = self.psql(
            name,
            &format!(
                "SELECT format('%s %8s calls %10s ms/call %9s rows %10s buffers %12s WAL bytes  %s', \
                 rpad(round(s.total_exec_time) || ' ms', 10), s.calls, \
                 round((s.total_exec_time / s.calls)::numeric, 3), s.rows, \
                 s.shared_blks_hit + s.shared_blks_read + s.shared_blks_dirtied, s.wal_bytes, \
                 left(regexp_replace(s.query, '\\s+', ' ', 'g'), 100)) \
                 FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
                 WHERE d.datname = '{name}' ORDER BY s.total_exec_time DESC LIMIT {top}"
            ),
        );
        Some(rows.lines().map(|l| format!("    {l}\n")).collect())
    }

    fn log(&self) -> String {
        self.root.join("server.log").display().to_string()
    }

    fn initdb(&self) {
        let data = self.data.display().to_string();
        self.as_server_user(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
        );
        let mut settings = format!(
            "\nlisten_addresses = ''\nunix_socket_directories = '{}'\nmax_connections = {MAX_CONNECTIONS}\nport = {}\n",
            self.socket_dir.display(),
            self.port
        );
        if self.statements {
            settings.push_str(
                "shared_preload_libraries = 'pg_stat_statements'\n\
                 pg_stat_statements.track = all\n",
            );
        }
        if let Some((cert, key)) = &self.tls {
            self.write_tls_files(cert, key);
            settings.push_str(
                "listen_addresses = '127.0.0.1'\nssl = on\n\
                 ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            );
        }
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("reading postgresql.conf");
        text.push_str(&settings);
        std::fs::write(&conf, text).expect("writing postgresql.conf");
    }

    /// Writes the server's certificate and key (readable by the server
    /// user alone, as PostgreSQL demands) and a `pg_hba.conf` admitting the
    /// Unix socket and TLS connections from 127.0.0.1, nothing else.
    fn write_tls_files(&self, cert: &str, key: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let write = |name: &str, text: &str| {
            let path = self.data.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {name}: {e}"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("making {name} private: {e}"));
        };
        write("server.crt", cert);
        write("server.key", key);
        write(
            "pg_hba.conf",
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        );
        self.hand_to_server_user();
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data.display().to_string();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        self.as_server_user("pg_ctl", &all);
    }

    /// Runs a client program against the cluster's socket as `postgres`.
    fn client(&self, program: &str, args: &[&str]) -> Output {
        let socket = self.socket_dir.display().to_string();
        let port = self.port.to_string();
        let mut all = vec!["-h", socket.as_str(), "-p", port.as_str(), "-U", "postgres"];
        all.extend_from_slice(args);
        run(Command::new(self.bin.join(program)).args(&all))
    }

    /// Runs one of PostgreSQL's server programs as the user owning the
    /// cluster (`postgres` when this process is root).
    fn as_server_user(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(&self.root);
        run(&mut command)
    }

    /// Gives the folder to `postgres` when running as root.
    fn hand_to_server_user(&self) {
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.root));
        }
    }

    /// Starts the watcher that stops the server and removes the folder once
    /// this process has exited.
    fn watch(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if is_root() {
            format!("runuser -u postgres -- '{}'", pg_ctl.display())
        } else {
            format!("'{}'", pg_ctl.display())
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             if [ -f '{data}/postmaster.pid' ]; then {stop} -D '{data}' stop -m immediate -w; fi; \
             rm -rf '{root}'",
            pid = std::process::id(),
            data = self.data.display(),
            root = self.root.display(),
        );
        Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("starting the cluster's watcher (setsid)");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if self.data.join("postmaster.pid").exists() {
            let data = self.data.display().to_string();
            let program = self.bin.join("pg_ctl");
            let mut command = if is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            };
            let _ = command
                .args(["-D", &data, "stop", "-m", "immediate", "-w"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The newest installed PostgreSQL's program folder.
fn find_bin() -> PathBuf {
    let newest = std::fs::read_dir(INSTALL_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .max_by_key(|bin| major_version(bin));
    newest.unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no {INSTALL_ROOT}/*/bin/initdb): install Debian's \
             `postgresql` package (`apt-get install postgresql`) to run the PostgreSQL tests; \
             tests/run.sh installs it"
        )
    })
}

/// The major version a `/usr/lib/postgresql/<major>/bin` folder is for.
fn major_version(bin: &Path) -> u32 {
    bin.parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A new, empty folder for one cluster.
fn fresh_root() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    let root =
        std::env::temp_dir().join(format!("plugboard-pg-{}-{nanos:x}-{n}", std::process::id()));
    std::fs::create_dir_all(&root).expect("creating the cluster's folder");
    root
}

/// A free port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free port")
}

/// Whether this process runs as root (effective user id 0).
fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// Runs a command to completion; panics with its output if it fails.
fn run(command: &mut Command) -> Output {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{command:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}
