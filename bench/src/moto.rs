//! A moto server (DynamoDB + Kinesis emulator) on a free loopback port, for the end-to-end
//! figures. A lean copy of `tests/src/moto.rs`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server; stopped on drop.
pub struct Moto {
    child: Child,
    port: u16,
}

/// Where `bin/test` installs moto: `${KINARCH_TOOLS_DIR:-$HOME/.cache/kinarch}/venv-emu`.
pub fn moto_server_path() -> PathBuf {
    std::env::var_os("KINARCH_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/kinarch")
        })
        .join("venv-emu/bin/moto_server")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Moto {
    /// Starts moto server and waits until it answers; `None` when it is not installed or
    /// does not start.
    pub fn start() -> Option<Moto> {
        let server = moto_server_path();
        if !server.exists() {
            return None;
        }
        for _attempt in 0..5 {
            let port = free_port();
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut moto = Moto { child, port };
            if moto.wait_ready() {
                return Some(moto);
            }
        }
        None
    }

    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
