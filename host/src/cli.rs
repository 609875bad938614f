//! The command line: `plugboard serve` and `plugboard plugins …`.
//!
//! Every `serve` setting has one name in three forms: a key of the config
//! file (`call_timeout_ms`), an environment variable
//! (`PLUGBOARD_CALL_TIMEOUT_MS`) and a flag (`--call-timeout-ms`). Clap reads
//! flags and the environment (a flag wins over its variable) into
//! [`ServeArgs`], which [`crate::config`] declares (it also reads config
//! files into it) and layers over the file and the defaults. The command
//! line sits above the settings: this module uses `config`, never the
//! reverse.

use std::path::PathBuf;

use clap::{CommandFactory as _, Parser, Subcommand};

pub use crate::config::ServeArgs;

/// plugboard: turns SaaS vendor activity into normalized, signed events.
#[derive(Debug, Parser)]
#[command(name = "plugboard", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar: HTTP API, webhook ingress and the plugin folder watcher.
    Serve(Box<ServeArgs>),
    /// Work with element plugins.
    Plugins {
        /// What to do with plugins.
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

/// `plugboard plugins …` commands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load a plugin file as the host would and print what it describes,
    /// or exactly why it does not fit the contract.
    Check {
        /// The component file (`.wasm`).
        file: PathBuf,
    },
    /// Run a plugin offline on a sample request (no server): print what
    /// the host would make of its answer as JSON; with `--expect`, fail on
    /// any difference from the expected JSON.
    Run(crate::tools::RunArgs),
    /// Create a ready-to-build element plugin project from a template.
    New {
        /// Language of the project.
        #[arg(long, value_enum)]
        lang: crate::scaffold::Language,
        /// The element key, also the project's name: a-z, 0-9, '-' or '_',
        /// starting with a letter.
        name: String,
        /// Folder to create (missing or empty; default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Internal: compile the component on stdin into a cache artifact. The
    /// host runs this in a child process so compiling leaves no memory behind.
    #[command(hide = true)]
    Compile {
        /// The runtime settings (JSON) the artifact must fit.
        #[arg(long)]
        runtime: String,
        /// Where to write the artifact.
        #[arg(long)]
        out: PathBuf,
    },
}

/// The command line, with each `serve` setting's default shown in its help.
pub fn command() -> clap::Command {
    let defaults = crate::config::flat_defaults();
    Cli::command().mut_subcommand("serve", |mut serve| {
        for (key, value) in &defaults {
            serve = serve.mut_arg(key, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {}]", show(value)))
            });
        }
        serve
    })
}

/// A default as one would type it on the command line.
fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches as _;

    use super::*;
    use crate::telemetry::LogFormat;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let matches = command()
            .try_get_matches_from(["plugboard", "serve"].iter().chain(args))
            .unwrap();
        match Cli::from_arg_matches(&matches).unwrap().command {
            Command::Serve(a) => *a,
            Command::Plugins { .. } => unreachable!(),
        }
    }

    #[test]
    fn flags_left_out_stay_unset() {
        let a = serve_args(&[]);
        assert!(a.listen.is_none() && a.call_timeout_ms.is_none() && a.no_pooling.is_none());
    }

    #[test]
    fn lists_and_switches_parse() {
        let a = serve_args(&[
            "--plugin-fetch-ports=8443,9443",
            "--delivery-schedule=0,0.5,5",
            "--no-pooling",
            "--log-format=json",
        ]);
        assert_eq!(a.plugin_fetch_ports, Some(vec![8443, 9443]));
        assert_eq!(a.delivery_schedule, Some(vec![0.0, 0.5, 5.0]));
        assert_eq!(a.no_pooling, Some(true));
        assert_eq!(a.log_format, Some(LogFormat::Json));
        assert_eq!(serve_args(&["--no-pooling=false"]).no_pooling, Some(false));
    }

    #[test]
    fn help_shows_defaults_and_variables() {
        let help = command()
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for needle in [
            "[default: 127.0.0.1:8080]",
            "[default: 0,5,300,1800,7200,18000,36000,36000]",
            "PLUGBOARD_CONFIG",
            "PLUGBOARD_SHUTDOWN_TIMEOUT_SECS",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }
}
