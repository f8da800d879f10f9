//! A moto server (DynamoDB + Kinesis emulator) per test, on a free loopback port.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use kinarch_core::aws::{AwsOptions, load_sdk_config};

/// Region used with the emulator.
pub const REGION: &str = "us-east-1";

/// The dummy access key id the tests give kinarch (moto takes any).
pub const ACCESS_KEY_ID: &str = "AKIAKINARCHTEST00001";
/// The dummy secret key the tests give kinarch: distinctive, so that a test can check that
/// it never shows in a log.
pub const SECRET_ACCESS_KEY: &str = "kinarch-test-secret-key-5c1e9a";

/// A running moto server; stopped on drop.
///
/// It runs through `tests/moto_server.py`, which makes moto's writes atomic (moto's threaded
/// server loses DynamoDB items and Kinesis records under concurrent writes; AWS does not):
/// kinarch's requests stay concurrent, the emulator applies them one at a time.
pub struct Moto {
    child: Child,
    port: u16,
}

/// The Python of the venv where `bin/test` installs moto server.
fn server_path() -> std::path::PathBuf {
    crate::tools_dir().join("venv-emu/bin/python")
}

/// The wrapper that starts moto with its writes made atomic (see the script's docstring).
fn server_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_server.py")
}

/// A file name of this process that no other start uses.
fn port_file() -> std::path::PathBuf {
    static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("kinarch-moto-{}-{n}.port", std::process::id()))
}

impl Moto {
    /// Starts moto server and waits until it answers.
    pub fn start() -> Moto {
        let server = server_path();
        assert!(
            server.exists(),
            "{} is missing: run bin/test once (it installs the emulator), or set KINARCH_TOOLS_DIR",
            server.display()
        );
        Moto::try_start().expect("moto server did not start")
    }

    /// Starts moto server and waits until it answers; `None` when it is not installed or
    /// does not start (the benchmarks then skip their moto scenarios).
    ///
    /// moto binds port 0 and `moto_server.py` reports the port it got: probing a free port
    /// and passing it to moto lets another test's listener take it in between, and this
    /// test would then talk to that listener as if it were its own emulator (seen once: two
    /// tests sharing one moto through a fault proxy).
    pub fn try_start() -> Option<Moto> {
        let server = server_path();
        if !server.exists() {
            return None;
        }
        let port_file = port_file();
        let _ = std::fs::remove_file(&port_file);
        let child = Command::new(&server)
            .arg(server_script())
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("KINARCH_MOTO_PORT_FILE", &port_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut moto = Moto { child, port: 0 };
        let port = moto.wait_ready(&port_file);
        let _ = std::fs::remove_file(&port_file);
        moto.port = port?;
        Some(moto)
    }

    /// The port moto reported once it answers there; `None` when it exits or takes too long.
    fn wait_ready(&mut self, port_file: &std::path::Path) -> Option<u16> {
        let start = Instant::now();
        // Generous: on a fresh machine many tests start moto at once while cargo builds.
        while start.elapsed() < Duration::from_secs(120) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return None;
            }
            let reported = std::fs::read_to_string(port_file)
                .ok()
                .and_then(|port| port.trim().parse::<u16>().ok());
            if let Some(port) = reported
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Some(port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration pointing at this server, with dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_via(&self.endpoint()).await
    }

    /// SDK configuration pointing at `endpoint` (a fault proxy in front of this server).
    pub async fn sdk_config_via(&self, endpoint: &str) -> SdkConfig {
        let sdk = load_sdk_config(&AwsOptions {
            region: Some(REGION.into()),
            endpoint_url: Some(endpoint.to_owned()),
            // moto answers a Scan of a large table slowly; the test's own reads may wait.
            attempt_timeout: Some(std::time::Duration::from_secs(120)),
            ..Default::default()
        })
        .await;
        sdk.to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "kinarch-tests",
            )))
            .build()
    }

    /// Environment for a kinarch process talking to this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// [`Self::env`] with the endpoint replaced by `endpoint` (a fault proxy in front of
    /// this server).
    pub fn env_via(&self, endpoint: &str) -> Vec<(String, String)> {
        let mut env = self.env();
        for (key, value) in &mut env {
            if key == "AWS_ENDPOINT_URL" {
                *value = endpoint.to_owned();
            }
        }
        env
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
