//! What a benchmark reads about a process: peak memory and CPU time.
//!
//! A long-lived process (the Lambda `bootstrap`) is read from `/proc/<pid>` while it runs;
//! a process that ends (the `kinarch` CLI) is reaped with `wait4`, whose resource usage has
//! microsecond CPU times.
//!
//! Peak memory of a process that ends is NOT `wait4`'s `ru_maxrss`: Linux carries the
//! high-water mark of the address space a child had before `exec` (a copy of the parent's,
//! here the driver's, 75–95 MiB) into the child's `ru_maxrss`. `VmHWM` in
//! `/proc/<pid>/status` belongs to the address space made by `exec`, so it is polled every
//! millisecond while the process runs and the last reading is kept.

// sysconf and wait4 through libc, each with its SAFETY note (the workspace denies unsafe_code).
#![allow(unsafe_code)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Minor page faults a process has taken so far (`minflt`, field 10 of `/proc/<pid>/stat`).
/// Exact, unlike CPU time on a shared machine: a change that makes the allocator give back
/// and fault in pages again shows here first (BENCHMARKS.md, run I).
pub fn minor_faults(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 10 of the whole line is the 8th after the command name's ")".
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(7)?
        .parse()
        .ok()
}

/// User plus system CPU time a process (all its threads, living and ended) has used, from
/// `/proc/<pid>/stat`. Resolution: one clock tick (10 ms).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; 12 and 13 after ")".
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_micros(ticks * 1_000_000 / per_second))
}

/// How a process that ran to its end used the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finished {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Wall time from spawn to exit.
    pub wall: Duration,
    /// User CPU time.
    pub user: Duration,
    /// System CPU time.
    pub system: Duration,
    /// Peak resident set size (`VmHWM`), KiB: the last reading before the process ended.
    pub max_rss_kib: u64,
}

impl Finished {
    /// User plus system CPU time.
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// Runs `command` to its end and reads its resource usage. Blocking: call it from a thread
/// that may block (`tokio::task::spawn_blocking`).
pub fn run_to_end(command: &mut Command) -> std::io::Result<Finished> {
    let started = Instant::now();
    let child = command.spawn()?;
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            // A zombie has no VmHWM: readings stop at the exit, before the reaping.
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid as u32, "VmHWM") {
                    peak = kib;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        })
    };
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet reaped (`Child` never waited for it), and the
        // pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let max_rss_kib = poller.join().unwrap_or(0);
    // The child is reaped: dropping `Child` closes its pipes and does not wait.
    drop(child);
    Ok(Finished {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        wall,
        user: timeval(usage.ru_utime),
        system: timeval(usage.ru_stime),
        max_rss_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_a_child() {
        let me = std::process::id();
        assert!(status_kib(me, "VmHWM").unwrap() > 0);
        assert!(cpu_time(me).is_some());
        let done = run_to_end(Command::new("sleep").arg("0.05")).unwrap();
        assert!(done.success && done.max_rss_kib > 0, "{done:?}");
    }
}
