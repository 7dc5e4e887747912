//! `adloc emulate`: the loopback Gemini and OpenAI emulator, for offline rehearsals.

use crate::domain::{Error, ExitCode};

use super::EmulateArgs;

pub(super) async fn emulate(a: EmulateArgs) -> Result<ExitCode, Error> {
    let faults = match &a.faults {
        Some(p) => adloc_emulator::Faults::from_toml_file(p).map_err(Error::Usage)?,
        None => adloc_emulator::Faults::default(),
    };
    let config = adloc_emulator::EmulatorConfig {
        seed: a.seed,
        api_key: a.api_key,
        faults,
    };
    let handle = adloc_emulator::spawn(config, a.port)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on 127.0.0.1:{}: {e}", a.port)))?;
    println!(
        "Gemini and OpenAI emulator listening on {}",
        handle.base_url()
    );
    println!("  export GOOGLE_GEMINI_BASE_URL={}", handle.base_url());
    println!("  export OPENAI_BASE_URL={}", handle.openai_base_url());
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    Ok(ExitCode::Success)
}
