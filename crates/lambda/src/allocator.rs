//! The function's memory allocator: mimalloc, told to give freed memory back at once.
//!
//! Why not glibc's malloc: its dynamic mmap threshold rises to the size of the first 6 MB
//! event buffer once that is freed, so later events are allocated on the heap, which
//! fragments and keeps what it had: peak RSS grew from 19 to 28 MiB over six 10,000-record
//! invocations, and the allocator was a large part of the CPU per record. mimalloc halves
//! the CPU per record (BENCHMARKS.md, run F).
//!
//! Why the two options: with its defaults mimalloc keeps freed pages for a while (purge
//! delay) and commits its arenas eagerly, and the warm peak RSS was 73 MiB. Purging at once
//! and committing on demand bring it to ~23 MiB at no measurable CPU cost. The environment
//! variables of the same names (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`) still
//! win when set, so an operator can change them without a new build.

use std::os::raw::{c_int, c_long};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Positions in `enum mi_option_e` of the mimalloc 3 header that libmimalloc-sys builds
// (c_src/mimalloc/v3/include/mimalloc.h); the crate names only some of them. The unit test
// below checks them against the options' documented defaults, so an upgrade that moves
// them fails the tests instead of setting another option.
const ARENA_EAGER_COMMIT: c_int = 4;
const PURGE_DELAY: c_int = 15;

const OPTIONS: [(c_int, &str, c_long); 2] = [
    (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0),
    (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
];

/// Sets the options before the first allocation of the process: mimalloc reads
/// `arena_eager_commit` when it reserves its first arena, which the first allocation does,
/// and that happens before `main` (a call from `main` came too late: 31 MiB instead of 19).
/// So this runs as an ELF initializer (`.init_array`, as the `ctor` crate does), before
/// the standard library's own start-up code allocates anything.
extern "C" fn configure() {
    for (option, variable, value) in OPTIONS {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mi_option_set only stores an integer in mimalloc's option table; it
            // is called on the main thread before any other thread exists, with option
            // numbers checked by the test below.
            #[allow(unsafe_code)]
            unsafe {
                libmimalloc_sys::mi_option_set(option, value)
            };
        }
    }
}

// SAFETY: an `.init_array` entry is called once by the dynamic loader (or the static start
// code) before `main`, on the only thread, with no arguments; `configure` only reads the
// environment and stores integers, and does not unwind (it cannot panic).
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_BEFORE_MAIN: extern "C" fn() = configure;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn the_options_are_set_before_main_at_the_positions_mimalloc_names() {
        // The crate names the neighbours of both options, so their positions follow from
        // the crate's own (version-matched) constants.
        assert_eq!(libmimalloc_sys::mi_option_use_numa_nodes, PURGE_DELAY + 1);
        assert_eq!(
            libmimalloc_sys::mi_option_large_os_pages,
            ARENA_EAGER_COMMIT + 2
        );
        // The test binary has the same initializer: it ran before the tests.
        for (option, variable, value) in OPTIONS {
            if std::env::var_os(variable).is_none() {
                assert_eq!(unsafe { libmimalloc_sys::mi_option_get(option) }, value);
            }
        }
    }
}
