//! Records the compiler version for `/api/v1/status/buildinfo` (its `goVersion` field
//! names the toolchain that built Vigil). A compiler change rebuilds everything, so
//! the recorded version cannot go stale.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    if let Some(v) = version {
        println!("cargo:rustc-env=VIGIL_RUSTC_VERSION={v}");
    }
}
