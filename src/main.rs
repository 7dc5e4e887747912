//! The `adloc` binary: parse arguments, run the library, exit with its code.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = adloc::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(adloc::main_with(cli));
    // Leave in-flight background tasks behind; the state is already consistent.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code.code());
}
