//! Writing a compiled plugin artifact to disk, the one step both the
//! in-process path ([`super::cache`]) and the compiler child process
//! ([`super::compiler`]) share: atomically, durably, and without leaving the
//! file's pages in the kernel's cache.

use std::path::Path;

/// Stores an artifact at `path` atomically (temporary file, then rename).
pub(super) fn store(bytes: &[u8], path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = write_uncached(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes an artifact durably, then tells the kernel not to keep its pages
/// cached: a later start maps the artifact and faults in only the pages it
/// uses, instead of having the kernel map the whole freshly written file
/// into the process (which inflates idle memory by the artifact's size).
fn write_uncached(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    // Advisory only: an error here changes nothing about correctness.
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    Ok(())
}
