//! Memory housekeeping between stages (a leaf module).

/// Hand memory that has been freed back to the operating system.
///
/// glibc's malloc keeps freed blocks in its per-thread arenas; after Polars
/// builds and drops a source's frames on several threads, the process would
/// keep ingestion's peak as resident memory for the rest of the run, and the
/// clustering's allocations would stack on top of it (1M accounts: 4.0 GiB
/// peak before, 2.2 GiB with this). Called after ingestion and after the
/// feature matrix, and between ingestion's sources, where whole frames have
/// just been dropped; it costs milliseconds. A no-op off glibc.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of malloc's own heaps to
    // the kernel; it does not touch live allocations.
    unsafe {
        libc::malloc_trim(0);
    }
}
