//! Other readers of the Parquet archive: pyarrow and DuckDB (the emulator venv's python
//! running `tests/parquet_peers.py`), over a directory laid out as the archive's S3 prefix,
//! made by hand ([`TempDir`]) or downloaded from the emulator's bucket ([`download`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty directory under the system's temporary directory, named after `name`
    /// and this process.
    pub fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("kinarch-parquet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies every object of `bucket` whose key ends in `.parquet` into `dir`, at its key;
/// returns the keys.
pub async fn download(s3: &aws_sdk_s3::Client, bucket: &str, dir: &Path) -> Vec<String> {
    let mut keys = crate::s3::keys(s3, bucket).await;
    keys.retain(|k| k.ends_with(".parquet"));
    for key in &keys {
        let bytes = crate::s3::get(s3, bucket, key)
            .await
            .expect("listed object");
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    keys
}

/// What pyarrow and DuckDB see in `dir` (see `tests/parquet_peers.py`), probing the
/// `partitionKey` bloom filter of each (file, key) of `probe`.
pub fn read(dir: &Path, probe: &[(&str, &str)]) -> Value {
    let python = crate::tools_dir().join("venv-emu/bin/python");
    let script = crate::repo_root().join("tests/parquet_peers.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test venv's python (bin/test installs it)");
    let request = json!({ "probe": probe.iter().map(|(f, k)| json!([f, k])).collect::<Vec<_>>() });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "parquet_peers.py failed (are pyarrow and duckdb in the venv? bin/test installs them)"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
