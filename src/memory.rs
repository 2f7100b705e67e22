//! Memory housekeeping between stages, and the `STRATA_TRACE` profile lines
//! (a leaf module).

/// Hand memory that has been freed back to the operating system.
///
/// glibc's malloc keeps freed blocks in its per-thread arenas; after Polars
/// builds and drops a source's frames on several threads, the process would
/// keep ingestion's peak as resident memory for the rest of the run, and the
/// clustering's allocations would stack on top of it (1M accounts: 4.0 GiB
/// peak before, 2.2 GiB with this). Called after ingestion and after the
/// feature matrix, and between ingestion's sources, where whole frames have
/// just been dropped; it costs milliseconds. A no-op off glibc. The `strata`
/// binary allocates through mimalloc, which returns freed pages to the system
/// itself (at 10M, RSS fell from 12.3 to 5.6 GiB between two sources), so
/// there this only trims what glibc still holds; library users on the system
/// allocator get the trim.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of malloc's own heaps to
    // the kernel; it does not touch live allocations.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resident and peak resident memory of this process, in KiB (Linux's
/// /proc/self/status VmRSS and VmHWM); None elsewhere. For `STRATA_TRACE`.
pub fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// With `STRATA_TRACE` set, print how long each step took and the memory
/// resident after it (for profiling).
pub fn tracing() -> bool {
    std::env::var_os("STRATA_TRACE").is_some()
}

/// CPU seconds this process has used, on all its threads: user and system
/// together, and system alone (the kernel's share: mostly zeroing the pages
/// of fresh memory); None off Unix. For `STRATA_TRACE`: between two lines,
/// CPU time over wall time is how many cores a step kept busy.
pub fn cpu_seconds() -> Option<(f64, f64)> {
    #[cfg(unix)]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes one rusage into the pointer it is given.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: the call succeeded, so the struct is written.
        let u = unsafe { u.assume_init() };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some((secs(u.ru_utime) + secs(u.ru_stime), secs(u.ru_stime)))
    }
    #[cfg(not(unix))]
    None
}

pub fn trace(what: &str, since: std::time::Instant) {
    if tracing() {
        let gib = |kib: u64| kib as f64 / (1u64 << 20) as f64;
        let rss = resident()
            .map(|(now, peak)| format!(", RSS {:.2} GiB (peak {:.2})", gib(now), gib(peak)))
            .unwrap_or_default();
        let cpu = cpu_seconds()
            .map(|(c, sys)| format!(", CPU {c:.1} s so far (system {sys:.1})"))
            .unwrap_or_default();
        eprintln!(
            "trace: {what}: {:.2} s{rss}{cpu}",
            since.elapsed().as_secs_f64()
        );
    }
}

/// `len` copies of `value` in memory the kernel may back with 2 MiB
/// transparent huge pages: `madvise(MADV_HUGEPAGE)` before the first write,
/// which is when the pages are given (the system's THP mode is usually
/// `madvise`, so nothing gets them unasked). For the large arrays read at
/// random (NN-descent's points and lists): with 4 KiB pages nearly every
/// access at millions of points also misses the TLB and walks the page
/// tables. Plain allocation where the advice is not available. The advice
/// outlives the vector (it stays with the addresses): [`end_huge_pages`]
/// withdraws it.
///
/// The first write is spread over rayon's threads. It is when the kernel
/// zeroes each page (and, on a virtual machine, when the host backs it), which
/// costs far more than the write itself: on the 2-core benchmark VMs, 2 GiB of
/// fresh huge pages took 6.3–7.0 s to touch from one thread, 2.9–3.5 s from
/// two, and 0.15 s to rewrite (C, memset, four runs each).
pub fn huge_vec<T: Clone + Send + Sync>(len: usize, value: T) -> Vec<T> {
    use rayon::prelude::*;
    let mut v = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let spare = v.spare_capacity_mut();
        let start = spare.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(spare);
        let (a, b) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if b > a {
            // SAFETY: [a, b) lies inside this vector's own, not yet written,
            // allocation; MADV_HUGEPAGE only changes how its pages are backed.
            unsafe {
                libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE);
            }
            ADVISED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((a, b - a));
        }
    }
    // Chunks of about 2 MiB: one huge page each, and few enough tasks.
    let chunk = ((2 << 20) / std::mem::size_of::<T>().max(1)).max(1);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk)
        .for_each(|c| {
            for slot in c {
                slot.write(value.clone());
            }
        });
    // SAFETY: the loop above initialised every one of the first `len` slots
    // (the capacity is at least `len`).
    unsafe { v.set_len(len) };
    v
}

/// The address ranges [`huge_vec`] advised, until [`end_huge_pages`].
#[cfg(target_os = "linux")]
static ADVISED: std::sync::Mutex<Vec<(usize, usize)>> = std::sync::Mutex::new(Vec::new());

/// Withdraw the huge-page advice from every range [`huge_vec`] gave it to.
/// The advice stays with the addresses, not the vector: once the vector is
/// freed, the allocator hands its addresses to other allocations, and each
/// of their first touches would be a fresh huge page to zero, far dearer on
/// these VMs than 4 KiB ones (see [`huge_vec`]). Pages already given stay as
/// they are, so vectors still alive keep theirs; only later first touches
/// get 4 KiB pages. The run calls it after the clustering, not after the
/// kNN: Leiden's arrays, read at random too, land on the same addresses
/// (withdrawn before Leiden, Leiden ran slower: docs/PERFORMANCE.md).
pub fn end_huge_pages() {
    #[cfg(target_os = "linux")]
    for (a, len) in ADVISED.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        // SAFETY: advice only: MADV_NOHUGEPAGE changes how pages not yet
        // touched will be backed, never their contents, and on a range no
        // longer mapped madvise fails without effect.
        unsafe {
            libc::madvise(a as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn resident_reads_this_process() {
        if cfg!(target_os = "linux") {
            let (now, peak) = super::resident().expect("/proc/self/status");
            assert!(now > 0 && peak >= now, "{now} {peak}");
        }
    }

    /// The flags Linux lists for the mapping holding `addr` (smaps' VmFlags).
    #[cfg(target_os = "linux")]
    fn vm_flags(addr: usize) -> Vec<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ').filter(|(r, _)| r.contains('-')) {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                    {
                        inside = (a..b).contains(&addr);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return flags.split_whitespace().map(str::to_string).collect();
                }
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_huge_page_advice_is_withdrawn_and_the_values_kept() {
        // 16 MiB: whole 2 MiB pages inside it, whatever the alignment.
        let v = super::huge_vec(4 << 20, 7u32);
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            // A kernel built without huge pages refuses both advices.
            assert!(v.iter().all(|&x| x == 7));
            return;
        }
        let inner = (v.as_ptr() as usize).next_multiple_of(2 << 20);
        // (Not asserted advised first: another test's run may withdraw it
        // in between; once withdrawn, by anyone, it stays so.)
        super::end_huge_pages();
        let flags = vm_flags(inner);
        assert!(
            flags.iter().any(|f| f == "nh") && !flags.iter().any(|f| f == "hg"),
            "{flags:?}"
        );
        assert!(v.iter().all(|&x| x == 7));
    }

    #[test]
    fn huge_vec_holds_the_values_asked_for() {
        for len in [0, 1, 1000, (5 << 20) + 3] {
            let v = super::huge_vec(len, 7u32);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 7));
        }
    }
}
