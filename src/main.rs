//! The `pipeline-cli` binary: the allocator, and a call into the library
//! ([`pipeline_cli::app::main`]), which parses the flags, runs the pipeline
//! and returns the exit code.

/// mimalloc: records are allocated on the source thread and freed on the
/// sink threads; glibc's allocator serialises that on a lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits the arenas it reserves up front on Linux, and pages
/// freed by one thread and reused by another then stay resident: about
/// 30 MiB more peak memory for a run that reads 5,000-document pages, and
/// no faster. Committing on demand keeps resident memory to what is used.
/// Set before `main`, as the process starts, before the first allocation
/// reserves an arena.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static LAZY_COMMIT: extern "C" fn() = lazy_commit;

#[cfg(target_os = "linux")]
extern "C" fn lazy_commit() {
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    /// `mi_option_arena_eager_commit` in mimalloc's option enum.
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    // SAFETY: sets one of mimalloc's option values (an int in a static
    // table); mimalloc reads it when it next reserves an arena.
    unsafe { mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

/// Everything is in the library: [`pipeline_cli::app::main`] runs the
/// process and decides its exit code.
fn main() -> std::process::ExitCode {
    pipeline_cli::app::main(std::env::args_os().collect())
}
