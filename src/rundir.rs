//! Run directories that either fully exist or do not exist at all.
//!
//! A monthly run writes `<out>/<as-of>/`. Readers (analysts, the next month's
//! run, `strata history`) must never see half a run, and a run killed at any
//! instant must leave the previously committed months untouched. The protocol:
//!
//! 1. **Lock.** [`OutputLock::acquire`] takes an exclusive advisory lock
//!    (`flock`) on `<out>/.strata.lock`. A second run on the same output folder
//!    fails at once with a message naming the holder. The kernel drops the lock
//!    when the holder dies, even by `SIGKILL`, so a killed run never leaves a
//!    stale lock behind.
//! 2. **Clean up.** Holding the lock, anything named `.staging-*` is debris of
//!    a run that died (no live run can own it) and is removed.
//! 3. **Stage.** Every output is written into `<out>/.staging-<as-of>-<pid>/`
//!    and `fsync`ed ([`write_file`]); `_SUCCESS` is written last.
//! 4. **Commit.** [`commit`] fsyncs the staging folder and renames it onto
//!    `<out>/<as-of>`. When that month already exists, Linux's
//!    `renameat2(RENAME_EXCHANGE)` swaps old and new in one atomic step, so the
//!    month is never missing; the old copy, now under the staging name, is then
//!    deleted (or, if the run dies first, cleaned up by step 2 next time). The
//!    parent folder is fsynced so the rename itself survives a power cut.
//!
//! A month folder without `_SUCCESS` is not a committed run; [`committed_runs`]
//! ignores it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::month::Month;

/// The marker written last into a complete run directory.
pub const SUCCESS: &str = "_SUCCESS";
const LOCK: &str = ".strata.lock";
const STAGING: &str = ".staging-";

/// An exclusive lock on an output folder, held until dropped.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    root: PathBuf,
}

/// Who holds a lock, from its file: the first whole line, read again for a
/// moment when the holder has only just taken the lock and not written it.
fn holder(file: &mut File) -> String {
    for _ in 0..20 {
        let mut text = String::new();
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.read_to_string(&mut text);
        if let Some((line, _)) = text.split_once('\n') {
            if !line.trim().is_empty() {
                return line.trim().to_string();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    String::new()
}

impl OutputLock {
    /// Lock `root` (creating it if needed). Fails with a usage error (exit 1)
    /// when another live process holds the lock, naming it and the folder as
    /// `root` was given; `elsewhere` says how the command can write elsewhere
    /// ("" when it cannot). A `root` that is a file is a usage error too.
    pub fn acquire(root: &Path, what: &str, elsewhere: &str) -> Result<OutputLock> {
        if root.is_file() {
            return Err(Error::Usage(format!(
                "{} is a file, not a folder: the output goes in a folder of run directories (<output>/<as-of>/); give another path{elsewhere}",
                root.display()
            )));
        }
        std::fs::create_dir_all(root).map_err(|e| Error::io("creating", root, e))?;
        let path = root.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("opening lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = holder(&mut file);
                return Err(Error::Usage(format!(
                    "another strata run is writing to {} ({}); wait for it to finish{elsewhere}",
                    root.display(),
                    if holder.is_empty() {
                        "holder unknown"
                    } else {
                        &holder
                    }
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io("locking", &path, e));
            }
        }
        // Record who holds it, for the message another run prints: one
        // write of the whole line over the old one, then the rest cut, so a
        // reader sees a whole line (see `holder`).
        let line = format!("pid {}, {what}\n", std::process::id());
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.write_all(line.as_bytes());
        let _ = file.set_len(line.len() as u64);
        let _ = file.flush();
        Ok(OutputLock {
            _file: file,
            root: root.to_path_buf(),
        })
    }

    /// Remove what killed runs left behind: staging folders and the old copies
    /// of replaced months. Only safe while holding the lock.
    pub fn clean_debris(&self) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let entries =
            std::fs::read_dir(&self.root).map_err(|e| Error::io("listing", &self.root, e))?;
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING))
            .map(|e| e.path())
            .collect();
        names.sort();
        for p in names {
            remove_any(&p).map_err(|e| Error::io("removing leftover", &p, e))?;
            removed.push(p);
        }
        Ok(removed)
    }

    /// A fresh staging folder for `as_of`, removed again unless committed.
    /// The output folder it locks, as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn staging(&self, as_of: Month) -> Result<Staging> {
        let dir = self
            .root
            .join(format!("{STAGING}{as_of}-{}", std::process::id()));
        if std::fs::symlink_metadata(&dir).is_ok() {
            remove_any(&dir).map_err(|e| Error::io("removing", &dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        Ok(Staging { dir })
    }
}

/// A staging folder being written. Dropping it without [`commit`] (a run
/// that failed) removes it, so a failed run leaves nothing behind; a killed
/// run's folder is removed by the next run's [`OutputLock::clean_debris`].
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl std::ops::Deref for Staging {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.dir).is_ok() {
            let _ = remove_any(&self.dir);
        }
    }
}

/// Remove a folder with its contents, or a file or link.
fn remove_any(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// A month's folder must be a folder (or not exist yet): a file in its place
/// is something the user put there, and strata will not replace it.
pub fn check_target(final_dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(final_dir) {
        Ok(m) if !m.is_dir() => Err(Error::Usage(format!(
            "{} is a file, not a run directory, so this month cannot be written there; move or delete it",
            final_dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Write `bytes` to `path` and fsync it.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io("creating", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("writing", path, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", path, e))
}

/// Create `path`, let `fill` write it (through a buffer), and fsync it. A
/// write that fails inside `fill` is reported as an I/O error naming
/// `path`, whatever `fill` made of it.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::io("creating", path, e))?;
    let mut sink = Recording {
        inner: std::io::BufWriter::with_capacity(1 << 20, f),
        error: None,
    };
    let filled = fill(&mut sink);
    if let Some(e) = sink.error.take() {
        return Err(Error::io("writing", path, e));
    }
    filled?;
    let f = sink
        .inner
        .into_inner()
        .map_err(|e| Error::io("writing", path, e.into_error()))?;
    f.sync_all().map_err(|e| Error::io("syncing", path, e))
}

/// A writer that keeps the first error of the one it wraps.
struct Recording<W: Write> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W: Write> Recording<W> {
    fn keep<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        r.map_err(|e| {
            let again = std::io::Error::new(e.kind(), e.to_string());
            self.error.get_or_insert(e);
            again
        })
    }
}

impl<W: Write> Write for Recording<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.keep(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.keep(r)
    }
}

/// fsync a file or folder that is already written.
pub fn sync_path(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("syncing", path, e))
}

/// Commit a complete staging folder as `final_dir` (see the module docs).
pub fn commit(staging: Staging, final_dir: &Path) -> Result<()> {
    check_target(final_dir)?;
    write_file(&staging.join(SUCCESS), b"")?;
    sync_path(&staging)?;
    let parent = final_dir.parent().unwrap_or(Path::new("."));
    if final_dir.exists() {
        exchange(&staging, final_dir)?;
        sync_path(parent)?;
        // `staging` now holds the replaced run; dropping it removes it.
        remove_any(&staging).map_err(|e| Error::io("removing replaced run", &*staging, e))?;
    } else {
        std::fs::rename(&*staging, final_dir).map_err(|e| Error::io("committing", final_dir, e))?;
        sync_path(parent)?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them
    // relative to the working directory like `rename`.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    // Filesystems without RENAME_EXCHANGE (EINVAL) fall back to two renames.
    if err.raw_os_error() == Some(libc::EINVAL) || err.raw_os_error() == Some(libc::ENOSYS) {
        return two_renames(a, b);
    }
    Err(Error::io("committing", b, err))
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> Result<()> {
    two_renames(a, b)
}

/// Fallback: move the old run aside under a staging name, move the new one in.
/// A crash between the two leaves the month missing until the next run.
fn two_renames(new: &Path, target: &Path) -> Result<()> {
    let aside = new.with_file_name(format!(
        "{}{}",
        new.file_name().unwrap_or_default().to_string_lossy(),
        "-old"
    ));
    std::fs::rename(target, &aside).map_err(|e| Error::io("moving aside", target, e))?;
    std::fs::rename(new, target).map_err(|e| Error::io("committing", target, e))?;
    std::fs::rename(&aside, new).map_err(|e| Error::io("moving", &aside, e))
}

/// A run directory's manifest, typed (see [`crate::schema::Manifest`]): a
/// reader picks the types of its parameter blocks, JSON values by default.
pub fn read_manifest<C, F>(dir: &Path) -> Result<crate::schema::Manifest<C, F>>
where
    C: serde::de::DeserializeOwned,
    F: serde::de::DeserializeOwned,
{
    read_json(&dir.join(crate::schema::file::MANIFEST))
}

/// Read a JSON output of a run directory into the type that wrote it.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{} is not what this strata writes there ({e}); was the run directory written by another version of strata? Re-run that month",
            path.display()
        ))
    })
}

/// Read a Parquet output of a run directory (all columns, or `cols`).
pub fn read_parquet(path: &Path, cols: Option<Vec<String>>) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::{ParquetReader, SerReader};
    let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    ParquetReader::new(f)
        .with_columns(cols)
        .finish()
        .map_err(|e| {
            Error::Usage(format!(
                "{} cannot be read ({e}); re-run that month (or delete it)",
                path.display()
            ))
        })
}

/// Committed runs under `root` (folders named YYYY-MM holding `_SUCCESS`),
/// oldest first.
pub fn committed_runs(root: &Path) -> Result<Vec<(Month, PathBuf)>> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(Vec::new());
    };
    let mut runs: Vec<(Month, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let m = Month::parse(&name)?;
            let p = e.path();
            p.join(SUCCESS).is_file().then_some((m, p))
        })
        .collect();
    runs.sort();
    Ok(runs)
}

/// The latest committed run strictly before `as_of` that has segments to
/// match against (runs made with `--until features` have none and are skipped).
pub fn previous_run(root: &Path, as_of: Month) -> Result<Option<(Month, PathBuf)>> {
    Ok(committed_runs(root)?
        .into_iter()
        .filter(|(m, p)| *m < as_of && p.join(crate::schema::file::ASSIGNMENTS).is_file())
        .next_back())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_same_folder_fails_with_holder() {
        let dir = tempfile::tempdir().unwrap();
        let a =
            OutputLock::acquire(dir.path(), "test one", ", or write elsewhere with --out").unwrap();
        let e = OutputLock::acquire(dir.path(), "test two", ", or write elsewhere with --out")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("another strata run"), "{msg}");
        assert!(msg.contains("test one"), "{msg}");
        assert_eq!(e.exit_code(), 1);
        drop(a);
        OutputLock::acquire(dir.path(), "test three", ", or write elsewhere with --out").unwrap();
    }

    #[test]
    fn commit_replaces_atomically_and_debris_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let lock = OutputLock::acquire(dir.path(), "t", ", or write elsewhere with --out").unwrap();
        let m = Month::parse("2026-10").unwrap();
        let target = dir.path().join("2026-10");
        let s = lock.staging(m).unwrap();
        write_file(&s.join("a.txt"), b"old").unwrap();
        write_file(&s.join("assignments.parquet"), b"").unwrap();
        commit(s, &target).unwrap();
        assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"old");
        let s = lock.staging(m).unwrap();
        let staged = s.to_path_buf();
        write_file(&s.join("a.txt"), b"new").unwrap();
        write_file(&s.join("assignments.parquet"), b"").unwrap();
        commit(s, &target).unwrap();
        assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"new");
        assert!(!staged.exists(), "the replaced copy is removed");
        // A staging folder dropped without a commit (a failed run) is removed.
        let s = lock.staging(m).unwrap();
        let staged = s.to_path_buf();
        write_file(&s.join("a.txt"), b"half").unwrap();
        drop(s);
        assert!(!staged.exists(), "a failed run's staging folder is removed");
        // Debris from a killed run is removed, a folder or a stray file;
        // committed months are not.
        std::fs::create_dir_all(dir.path().join(".staging-2026-11-99")).unwrap();
        std::fs::write(dir.path().join(".staging-x"), b"").unwrap();
        let removed = lock.clean_debris().unwrap();
        assert_eq!(removed.len(), 2);
        assert!(target.join(SUCCESS).is_file());
        // An uncommitted month folder is not a run.
        std::fs::create_dir_all(dir.path().join("2026-09")).unwrap();
        let runs = committed_runs(dir.path()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            previous_run(dir.path(), Month::parse("2026-11").unwrap())
                .unwrap()
                .unwrap()
                .0,
            m
        );
        assert!(previous_run(dir.path(), m).unwrap().is_none());
    }

    #[test]
    fn a_file_where_the_month_goes_is_refused_before_commit() {
        let dir = tempfile::tempdir().unwrap();
        let lock = OutputLock::acquire(dir.path(), "t", ", or write elsewhere with --out").unwrap();
        let m = Month::parse("2026-10").unwrap();
        let target = dir.path().join("2026-10");
        std::fs::write(&target, b"notes").unwrap();
        let s = lock.staging(m).unwrap();
        let staged = s.to_path_buf();
        let e = commit(s, &target).unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
        assert!(e.to_string().contains("is a file"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"notes", "left as it was");
        assert!(!staged.exists());
    }
}
