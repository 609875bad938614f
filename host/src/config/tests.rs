//! Layering and validation of settings: file under flags and environment,
//! defaults under all, and errors that name the setting.

use std::io::Write as _;

use super::*;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn with_file(args: ServeArgs, text: &str) -> anyhow::Result<Settings> {
    let f = file(text);
    Settings::from_args(ServeArgs {
        config: Some(f.path().to_path_buf()),
        ..args
    })
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let s = Settings::from_args(ServeArgs::default()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.runtime.call_timeout_ms, 1000);
    assert_eq!(s.delivery.schedule.delays.len(), 8);
    assert_eq!(s.shutdown_timeout, Duration::from_secs(20));
    assert_eq!(s.log_format, LogFormat::Text);
    assert!(s.credentials.is_none() && s.metrics_listen.is_none());
}

#[test]
fn the_file_sets_what_flags_and_environment_leave_unset() {
    let args = ServeArgs {
        call_timeout_ms: Some(250),
        ..ServeArgs::default()
    };
    let s = with_file(
        args,
        r#"
        listen = "0.0.0.0:9000"
        call_timeout_ms = 900
        delivery_schedule = [0, 0.5, 2]
        outbound_allow_private = ["10.0.0.0/8"]
        log_format = "json"
        user_secret = "u"
        organization_secret = "o"
        "#,
    )
    .unwrap();
    assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(s.runtime.call_timeout_ms, 250, "the upper layer wins");
    assert_eq!(
        s.delivery.schedule.delays,
        [0.0, 0.5, 2.0].map(Duration::from_secs_f64)
    );
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.credentials.unwrap().organization, "o");
    assert_eq!(
        s.runtime.memory_limit_bytes,
        128 << 20,
        "defaults under the file"
    );
}

#[test]
fn bad_toml_names_the_file_and_line() {
    let err = with_file(ServeArgs::default(), "listen = \n").unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("config file") && msg.contains("line 1"),
        "{msg}"
    );
}

#[test]
fn file_errors_name_the_setting_and_reason() {
    let cases = [
        ("listen = \"nowhere\"", "listen", "invalid socket address"),
        (
            "call_timeout_ms = \"fast\"",
            "call_timeout_ms",
            "invalid type",
        ),
        ("lisen = \"0.0.0.0:1\"", "lisen", "unknown field"),
        ("log_format = \"xml\"", "log_format", "unknown variant"),
    ];
    for (text, key, reason) in cases {
        let msg = format!("{:#}", with_file(ServeArgs::default(), text).unwrap_err());
        assert!(msg.contains(key) && msg.contains(reason), "{text}: {msg}");
    }
}

#[test]
fn numbers_beyond_what_the_machine_can_honour_are_refused_naming_the_bound() {
    // A TOML integer stops at i64::MAX: the largest timeout comes by flag
    // or environment.
    let huge = ServeArgs {
        call_timeout_ms: Some(u64::MAX),
        ..ServeArgs::default()
    };
    let msg = format!("{:#}", Settings::from_args(huge).unwrap_err());
    assert!(
        msg.contains(
            "call_timeout_ms (PLUGBOARD_CALL_TIMEOUT_MS, --call-timeout-ms) must be at most 3600000"
        ),
        "{msg}"
    );
    let cases = [
        (
            "call_timeout_ms = 3600001",
            "call_timeout_ms (PLUGBOARD_CALL_TIMEOUT_MS, --call-timeout-ms) must be at most 3600000",
        ),
        (
            "memory_limit_mb = 99999999999",
            "memory_limit_mb (PLUGBOARD_MEMORY_LIMIT_MB, --memory-limit-mb) must be at most 4096",
        ),
        (
            "max_concurrent_calls = 4294967295",
            "max_concurrent_calls (PLUGBOARD_MAX_CONCURRENT_CALLS, --max-concurrent-calls) must \
             be at most 4096",
        ),
        (
            "plugin_fetch_ports = [443, 0]",
            "plugin_fetch_ports (PLUGBOARD_PLUGIN_FETCH_PORTS, --plugin-fetch-ports): 0 is not a port",
        ),
    ];
    for (text, needle) in cases {
        let msg = format!("{:#}", with_file(ServeArgs::default(), text).unwrap_err());
        assert!(msg.contains(needle), "{text}: {msg}");
    }
    let at_the_bounds = "call_timeout_ms = 3600000\nmemory_limit_mb = 4096\n\
                         max_concurrent_calls = 4096\nplugin_fetch_ports = [1, 65535]";
    with_file(ServeArgs::default(), at_the_bounds).unwrap();
}

#[test]
fn invalid_values_from_any_layer_name_the_setting() {
    let cases = [
        (
            "replica_id = \"web 1\"",
            "replica_id (PLUGBOARD_REPLICA_ID, --replica-id): ' ' is not allowed",
        ),
        (
            "[cluster]\nreplica_id = \"\"",
            "replica_id (PLUGBOARD_REPLICA_ID",
        ),
        (
            "heartbeat_secs = 0",
            "heartbeat_secs (PLUGBOARD_HEARTBEAT_SECS, --heartbeat-secs): 0 is not",
        ),
        (
            "heartbeat_secs = 5\nlease_secs = 10",
            "lease_secs (PLUGBOARD_LEASE_SECS, --lease-secs) (10 s) must be more than twice",
        ),
        (
            "public_url = \"hooks.example.com\"",
            "public_url (PLUGBOARD_PUBLIC_URL, --public-url): \"hooks.example.com\" is not an \
             absolute URL",
        ),
        (
            "public_url = \"ftp://hooks.example.com\"",
            "has scheme ftp; expected http or https",
        ),
        (
            "call_timeout_ms = 0",
            "call_timeout_ms (PLUGBOARD_CALL_TIMEOUT_MS, --call-timeout-ms) must be greater than 0",
        ),
        (
            "delivery_schedule = []",
            "delivery_schedule (PLUGBOARD_DELIVERY_SCHEDULE, --delivery-schedule) must list",
        ),
        (
            "delivery_schedule = [1, -2]",
            "-2 is not a number of seconds",
        ),
        (
            "outbound_allow_private = [\"nope\"]",
            "outbound_allow_private (PLUGBOARD_OUTBOUND_ALLOW_PRIVATE",
        ),
        (
            "user_secret = \"only-one\"",
            "organization_secret (PLUGBOARD_ORGANIZATION_SECRET",
        ),
        (
            "outbound_ca_file = \"/nonexistent/ca.pem\"",
            "outbound_ca_file",
        ),
        (
            "retention_hours = 1\ndedup_window_secs = 7200",
            "retention_hours (PLUGBOARD_RETENTION_HOURS, --retention-hours) (1 h) is shorter than \
             dedup_window_secs",
        ),
    ];
    for (text, needle) in cases {
        let msg = format!("{:#}", with_file(ServeArgs::default(), text).unwrap_err());
        assert!(msg.contains(needle), "{text}: {msg}");
    }
    let flag = ServeArgs {
        max_body_bytes: Some(0),
        ..ServeArgs::default()
    };
    let msg = format!("{:#}", Settings::from_args(flag).unwrap_err());
    assert!(msg.contains("--max-body-bytes"), "{msg}");
}

#[test]
fn secrets_never_show_in_errors_or_debug() {
    let msg = format!(
        "{:#}",
        with_file(ServeArgs::default(), "user_secret = \"s3cr3t-user\"").unwrap_err()
    );
    assert!(!msg.contains("s3cr3t-user"), "{msg}");
    let s = with_file(
        ServeArgs::default(),
        "user_secret = \"s3cr3t-user\"\norganization_secret = \"s3cr3t-org\"",
    )
    .unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

#[test]
fn a_replica_gets_an_id_and_lease_timings() {
    let s = with_file(ServeArgs::default(), "").unwrap();
    crate::cluster::check_replica_id(&s.cluster.replica_id).unwrap();
    assert_eq!(s.cluster.heartbeat, std::time::Duration::from_secs(2));
    assert_eq!(s.cluster.lease, std::time::Duration::from_secs(10));
    let s = with_file(
        ServeArgs::default(),
        "[cluster]\nreplica_id = \"web-1\"\nheartbeat_secs = 0.2\nlease_secs = 1",
    )
    .unwrap();
    assert_eq!(s.cluster.replica_id, "web-1");
    assert_eq!(s.cluster.heartbeat, std::time::Duration::from_millis(200));
}

#[test]
fn the_sample_config_is_valid_and_documents_every_setting() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugboard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    with_file(ServeArgs::default(), &text).unwrap();
    for (key, _, _) in sections::FLAT {
        assert!(
            text.contains(&format!("\n{key} =")) || text.contains(&format!("\n# {key} =")),
            "examples/plugboard.toml does not document {key}"
        );
    }
}

#[test]
fn every_flat_name_is_a_flag_and_a_section_key() {
    let serve = crate::cli::command();
    let serve = serve.find_subcommand("serve").unwrap();
    let defaults = toml::Table::try_from(Sections::default()).unwrap();
    for (flat, section, key) in sections::FLAT {
        assert!(
            serve.get_arguments().any(|a| a.get_id() == *flat),
            "--{flat} is missing"
        );
        let section = defaults[*section].as_table().unwrap();
        let optional = [
            "metrics_listen",
            "public_url",
            "ca_file",
            "user_secret",
            "organization_secret",
            "element_max_concurrent_calls",
            "long_call_lanes",
            "database_url",
            "replica_id",
        ];
        assert!(
            section.contains_key(*key) || optional.contains(key),
            "[{flat}] has no {key}"
        );
    }
}

#[test]
fn sections_and_flat_keys_both_work_in_a_file() {
    let s = with_file(
        ServeArgs::default(),
        r#"
        poll_timeout_ms = 900
        [runtime]
        call_timeout_ms = 300
        [delivery]
        schedule = [0, 1]
        per_host = 3
        [management]
        user_secret = "u"
        organization_secret = "o"
        "#,
    )
    .unwrap();
    assert_eq!(s.runtime.call_timeout_ms, 300);
    assert_eq!(
        s.runtime.memory_limit_bytes,
        128 << 20,
        "defaults beside it"
    );
    assert_eq!(s.delivery.schedule.delays.len(), 2);
    assert_eq!(s.delivery.per_host, 3);
    assert_eq!(s.poller.request_timeout, Duration::from_millis(900));
    assert_eq!(s.credentials.unwrap().user, "u");
}

#[test]
fn flags_and_environment_beat_a_section_of_the_file() {
    let args = ServeArgs {
        call_timeout_ms: Some(42),
        ..ServeArgs::default()
    };
    let s = with_file(
        args,
        "[runtime]\ncall_timeout_ms = 300\nmax_concurrent_calls = 7",
    )
    .unwrap();
    assert_eq!(s.runtime.call_timeout_ms, 42);
    assert_eq!(s.runtime.max_concurrent_calls, 7);
}

#[test]
fn section_errors_name_the_key_and_the_file() {
    let cases = [
        ("[runtime]\ncall_timeout_ms = \"fast\"", "call_timeout_ms"),
        ("[runtime]\ncall_timout_ms = 5", "call_timout_ms"),
        ("[nowhere]\nx = 1", "nowhere"),
        (
            "call_timeout_ms = 5\n[runtime]\ncall_timeout_ms = 6",
            "set twice",
        ),
        ("[runtime]\ncall_timeout_ms = 0", "must be greater than 0"),
        ("[runtime]\nlong_call_lanes = 0", "long_call_lanes"),
        (
            "[runtime]\nmax_concurrent_calls = 4\nlong_call_lanes = 5",
            "must not be more than max_concurrent_calls",
        ),
    ];
    for (text, needle) in cases {
        let msg = format!("{:#}", with_file(ServeArgs::default(), text).unwrap_err());
        assert!(msg.contains(needle), "{text}: {msg}");
        assert!(
            msg.contains("config file") || msg.contains("PLUGBOARD_"),
            "{text}: {msg}"
        );
    }
}

#[test]
fn secrets_in_a_section_stay_out_of_debug() {
    let s = with_file(
        ServeArgs::default(),
        "[management]\nuser_secret = \"s3cr3t-u\"\norganization_secret = \"s3cr3t-o\"",
    )
    .unwrap();
    assert!(!format!("{s:?}").contains("s3cr3t"));
    let merged = layers::merge(&ServeArgs {
        user_secret: Some("s3cr3t-flag".parse().unwrap()),
        ..ServeArgs::default()
    })
    .unwrap();
    assert!(!format!("{merged:?}").contains("s3cr3t"));
    assert_eq!(
        merged.management.user_secret.unwrap().expose(),
        "s3cr3t-flag"
    );
}

#[test]
fn database_url_chooses_the_store_and_never_shows_its_password() {
    let s = Settings::from_args(ServeArgs::default()).unwrap();
    assert_eq!(
        s.store,
        StoreConfig::Sqlite {
            path: PathBuf::from("data/plugboard.db")
        }
    );
    let url = "postgres://plugboard:s3cr3t-pw@db.internal:5432/plugboard?sslmode=require";
    let args = ServeArgs {
        database_url: Some(url.parse().unwrap()),
        user_secret: Some("u".parse().unwrap()),
        organization_secret: Some("o".parse().unwrap()),
        ..ServeArgs::default()
    };
    let s = Settings::from_args(args).unwrap();
    assert_eq!(s.store, StoreConfig::Postgres { url: url.into() });
    let shown = format!("{s:?} {}", s.store.describe());
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");
    assert!(shown.contains("db.internal"), "{shown}");

    let s = with_file(
        ServeArgs::default(),
        "[store]\ndatabase_url = \"postgresql:///plugboard?host=/run/postgresql\"\n\
         [management]\nuser_secret = \"u\"\norganization_secret = \"o\"",
    )
    .unwrap();
    assert!(matches!(s.store, StoreConfig::Postgres { .. }));
}

#[test]
fn postgres_without_management_secrets_is_refused_naming_both() {
    let args = ServeArgs {
        database_url: Some("postgres://db/plugboard".parse().unwrap()),
        ..ServeArgs::default()
    };
    let msg = format!("{:#}", Settings::from_args(args).unwrap_err());
    for setting in [
        "user_secret (PLUGBOARD_USER_SECRET, --user-secret)",
        "organization_secret (PLUGBOARD_ORGANIZATION_SECRET, --organization-secret)",
    ] {
        assert!(msg.contains(setting), "{msg}");
    }
}

#[test]
fn a_database_url_that_is_not_postgres_is_refused_by_name() {
    for given in ["mysql://u:s3cr3t@db/x", "/var/lib/plugboard.db", ""] {
        let args = ServeArgs {
            database_url: Some(given.parse().unwrap()),
            ..ServeArgs::default()
        };
        let msg = format!("{:#}", Settings::from_args(args).unwrap_err());
        assert!(
            msg.contains("database_url (PLUGBOARD_DATABASE_URL, --database-url)"),
            "{msg}"
        );
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }
}
