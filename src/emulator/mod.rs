//! Emulator (being merged).
#![allow(missing_docs)]
#[derive(Default, Debug, Clone)]
pub struct Faults;
impl Faults { pub fn from_toml_file(_p: &std::path::Path) -> Result<Faults, String> { Ok(Faults) } }
pub struct EmulatorConfig { pub seed: u64, pub api_key: Option<String>, pub faults: Faults }
pub struct EmulatorHandle;
impl EmulatorHandle { pub fn base_url(&self) -> String { String::new() } pub async fn shutdown(self) {} }
pub async fn spawn(_c: EmulatorConfig, _p: u16) -> std::io::Result<EmulatorHandle> { Ok(EmulatorHandle) }
