//! The `plugboard` binary: parses the command line, runs the command, and
//! maps failure to a message and exit code 1.

use clap::FromArgMatches as _;
use plugboard::cli::{Cli, Command, PluginsCommand};
use plugboard::config::Settings;

fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    return_large_frees_to_the_os();
    let matches = plugboard::cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Plugins { command } => match command {
            PluginsCommand::Check { file } => plugboard::tools::check_plugin(&file),
            PluginsCommand::Run(args) => plugboard::tools::run_plugin(&args),
            PluginsCommand::New { lang, name, dir } => {
                plugboard::scaffold::new_plugin(lang, &name, dir.as_deref())
            }
            PluginsCommand::Compile { runtime, out } => {
                plugboard::runtime::run_compiler_child(&runtime, &out)
            }
        },
    };
    if let Err(e) = result {
        eprintln!("plugboard: {e:#}");
        std::process::exit(1);
    }
}

/// Keeps glibc's malloc from holding on to freed large buffers.
///
/// glibc raises its mmap threshold each time a large mmapped block is freed
/// (up to 32 MiB); from then on, large allocations come from the heap and
/// stay in the process after they are freed. Loading plugins reads and
/// deserializes tens of MiB once: with the moving threshold, about 12 MiB
/// of that stayed resident for good. Pinning the threshold at glibc's
/// default (128 KiB) gives such buffers back to the OS when they are freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the one FFI call of the crate; the library itself has none
fn return_large_frees_to_the_os() {
    const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;
    // SAFETY: mallopt only sets a tuning parameter of the allocator; it is
    // called first thing in `main`, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

fn serve(args: plugboard::cli::ServeArgs) -> anyhow::Result<()> {
    let mut settings = Settings::from_args(args)?;
    // Compile plugins that are not in the cache in a child process running
    // this same binary; without a known path, compile in process.
    settings.runtime.compiler_program = std::env::current_exe().ok();
    plugboard::telemetry::init_logging(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = plugboard::server::Server::start(settings, None).await?;
        server.run_until_signal().await
    })
}
