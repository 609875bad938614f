//! The `plugboard` binary: parses the command line, runs the command, and
//! maps failure to a message and exit code 1.

use clap::FromArgMatches as _;
use plugboard::cli::{Cli, Command, PluginsCommand};
use plugboard::config::Settings;

fn main() {
    let matches = plugboard::cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Plugins { command } => match command {
            PluginsCommand::Check { file } => plugboard::tools::check_plugin(&file),
            PluginsCommand::New { lang, name, dir } => {
                plugboard::scaffold::new_plugin(lang, &name, dir.as_deref())
            }
        },
    };
    if let Err(e) = result {
        eprintln!("plugboard: {e:#}");
        std::process::exit(1);
    }
}

fn serve(args: plugboard::cli::ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(args)?;
    plugboard::telemetry::init_logging(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = plugboard::server::Server::start(settings, None).await?;
        server.run_until_signal().await
    })
}
