//! Ctrl-C and SIGTERM: the binary stops what it is doing, closes its
//! sessions (so that no server keeps one for minutes) and exits with 128 +
//! the signal's number, as a shell reports a process the signal killed.

use std::{future::Future, process::ExitCode};

/// The signal that asked the binary to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM: exit 143.
    Terminate,
}

impl Stop {
    pub(crate) fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        }
    }

    /// Says on stderr why the binary stops.
    pub(crate) fn report(self) {
        eprintln!("{}: stopped; sessions closed", self.name());
    }
}

/// Installs the handlers now (a signal that comes the moment after is
/// caught) and returns a future that resolves when one arrives. Must be
/// called inside a runtime.
#[cfg(unix)]
pub(crate) fn stop_signal() -> std::io::Result<impl Future<Output = Stop> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => Stop::Interrupt,
            _ = terminate.recv() => Stop::Terminate,
        }
    })
}

/// Installs the Ctrl-C handler now and returns a future that resolves when
/// Ctrl-C is pressed.
#[cfg(not(unix))]
pub(crate) fn stop_signal() -> std::io::Result<impl Future<Output = Stop> + Send + 'static> {
    Ok(async move {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Stop::Interrupt,
            Err(_) => std::future::pending().await,
        }
    })
}

/// The error of a command a signal stopped (the binary exits with the
/// signal's code, not 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stopped(pub(crate) Stop);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped by {}", self.0.name())
    }
}

impl std::error::Error for Stopped {}
