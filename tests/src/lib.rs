//! Test harness: local AWS emulators, a Lambda Runtime API, the kinarch binaries, and
//! synthetic records (also used by the benchmarks).
//!
//! Everything listens on 127.0.0.1 on ports the OS picks. The emulator (moto server) is
//! installed by `bin/test` into `${KINARCH_TOOLS_DIR:-$HOME/.cache/kinarch}/venv-emu`.

pub mod cli;
pub mod dynamo;
pub mod invoke;
pub mod kinesis;
pub mod lambda;
pub mod moto;
pub mod peers;
pub mod proxy;
pub mod s3;
pub mod synthetic;
pub mod world;

use std::path::PathBuf;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Where bin/test installs tool venvs.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("KINARCH_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/kinarch")
        })
}

/// Path of a workspace binary (`bootstrap`, `kinarch`), built for this test run.
///
/// The binaries are built once per test process with the same cargo and profile as the
/// tests, so `cargo test` alone always drives the current code.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        without_cargo_test_env(&mut command);
        let status = command
            .current_dir(repo_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "kinarch-lambda",
                "-p",
                "kinarch-cli",
                "--bins",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the kinarch binaries failed");
        // target/<profile>/deps/<test binary> -> target/<profile>
        let exe = std::env::current_exe().expect("test binary path");
        exe.parent()
            .and_then(|deps| deps.parent())
            .expect("target dir")
            .to_path_buf()
    });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing after cargo build",
        path.display()
    );
    path
}

/// Removes the variables cargo sets for a running test (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_NAME`, ...) from a command that runs cargo. Build scripts (ring's, for one)
/// watch some of them, so a build started from a test would otherwise see them "changed" and
/// rebuild half the dependency tree, and the next `cargo test` would rebuild it back.
pub fn without_cargo_test_env(command: &mut std::process::Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "OUT_DIR"
            )
        {
            command.env_remove(name);
        }
    }
}
