//! Ctrl-C (SIGINT) and SIGTERM: every command that stops gracefully listens through here,
//! so a signal means the same everywhere (say what was done, exit 130 or 143, as shells
//! report a process a signal ended).

use std::future::Future;

use crate::failure::Failure;

/// Starts listening for SIGINT and SIGTERM now (a signal that comes before the future is
/// first polled is kept, not fatal) and returns a future that completes with the exit code
/// a shell gives a process that signal ends: 130 for SIGINT, 143 for SIGTERM.
#[cfg(unix)]
pub(crate) fn listen() -> Result<impl Future<Output = u8> + Unpin, Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| Failure::Runtime(format!("cannot listen for {name}: {e}")))
    };
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    Ok(Box::pin(async move {
        tokio::select! {
            _ = interrupt.recv() => 130,
            _ = terminate.recv() => 143,
        }
    }))
}

/// Completes on Ctrl-C, with 130.
#[cfg(not(unix))]
pub(crate) fn listen() -> Result<impl Future<Output = u8> + Unpin, Failure> {
    Ok(Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
        130
    }))
}

/// After a graceful stop began: a second signal ends the process at once, with its code.
pub(crate) fn exit_on_second_signal() -> Result<(), Failure> {
    let second = listen()?;
    tokio::spawn(async move {
        let code = second.await;
        std::process::exit(i32::from(code));
    });
    Ok(())
}
