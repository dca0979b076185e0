//! Writing files so that they are never half-written: write a temporary file in the target
//! folder, flush it to disk, then rename it over the target.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `path` through `write`, atomically. On any error the temporary file is removed
/// and the target is untouched. Refuses to replace an existing file unless `overwrite`.
pub fn write_atomically(
    path: &Path,
    overwrite: bool,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path, overwrite)?;
    write(&mut file)?;
    file.commit()
}

/// A file being written in pieces (a volume streamed slice by slice): its bytes go to a
/// temporary sibling, which [`Self::commit`] flushes to disk and renames over the target.
/// Dropped without a commit (an error, a cancel, a panic), the temporary file is removed
/// and the target is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    out: Option<BufWriter<File>>,
    temp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts writing `path`; refuses to replace an existing file unless `overwrite`.
    pub fn create(path: &Path, overwrite: bool) -> std::io::Result<Self> {
        if !overwrite && path.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists (use --force to replace it)",
            ));
        }
        let temp = temporary_name(path);
        let file = File::create(&temp)?;
        Ok(Self {
            out: Some(BufWriter::new(file)),
            temp,
            path: path.to_path_buf(),
        })
    }

    /// Flushes everything to disk and puts the file in place.
    pub fn commit(mut self) -> std::io::Result<()> {
        let out = self.out.take().ok_or_else(closed)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.path)
    }
}

fn closed() -> std::io::Error {
    std::io::Error::other("the file was already committed")
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.as_mut().ok_or_else(closed)?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.as_mut().ok_or_else(closed)?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // After a commit the temporary name is gone (renamed) and this finds nothing; after
        // an error or without a commit it removes the partial file.
        self.out = None;
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// The files one export has written so far: removed again when dropped, unless
/// [`Self::keep`] is called — so an export that fails, is cancelled or panics half-way
/// leaves nothing behind.
#[derive(Debug, Default)]
pub struct WrittenFiles {
    paths: Vec<PathBuf>,
    kept: bool,
}

impl WrittenFiles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a file that is now complete on disk.
    pub fn push(&mut self, path: PathBuf) {
        self.paths.push(path);
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Takes over the files of another (finished) part of the same export.
    pub fn absorb(&mut self, mut other: WrittenFiles) {
        self.paths.append(&mut other.paths);
        other.kept = true;
    }

    /// The export succeeded: keep the files.
    pub fn keep(mut self) -> Vec<PathBuf> {
        self.kept = true;
        std::mem::take(&mut self.paths)
    }
}

impl Drop for WrittenFiles {
    fn drop(&mut self) {
        if !self.kept {
            for path in &self.paths {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A hidden sibling name unique to this process and moment.
fn temporary_name(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let unique = format!(
        ".{name}.{}.{}.partial",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    path.with_file_name(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_removed_unless_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        {
            let mut files = WrittenFiles::new();
            for path in [&a, &b] {
                std::fs::write(path, b"x").expect("write");
                files.push(path.clone());
            }
        }
        assert!(!a.exists() && !b.exists(), "dropped without keep: removed");
        let mut files = WrittenFiles::new();
        std::fs::write(&a, b"x").expect("write");
        files.push(a.clone());
        assert_eq!(files.keep(), vec![a.clone()]);
        assert!(a.exists());
    }

    #[test]
    fn failed_write_leaves_nothing_and_existing_files_are_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("out.bin");
        let failed = write_atomically(&target, false, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
        write_atomically(&target, false, |w| w.write_all(b"one")).expect("write");
        assert!(write_atomically(&target, false, |w| w.write_all(b"two")).is_err());
        assert_eq!(std::fs::read(&target).expect("read"), b"one");
        write_atomically(&target, true, |w| w.write_all(b"two")).expect("overwrite");
        assert_eq!(std::fs::read(&target).expect("read"), b"two");
    }
}
