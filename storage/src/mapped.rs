//! Letting go of the pages of read-only file maps.
//!
//! A page read through a map counts in the process's resident memory until it is
//! unmapped, even though the kernel can drop it at any time: a reader that sweeps a
//! whole file once (a checksum scrub, a head snapshot, a block cut) would otherwise
//! leave the process looking as large as the files it read.

use memmap2::{Mmap, UncheckedAdvice};

/// Unmaps the pages of `map` read so far; later reads fault them in again from the
/// page cache or the file, with the same bytes.
pub(crate) fn release(map: &Mmap) {
    // SAFETY: every map this is called on is a shared, read-only map of a file that is
    // never rewritten in place: dropping its pages loses nothing, and a later read
    // sees the same bytes.
    let _ = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
}

/// Resident kB of this process's maps of `path`, from `/proc/self/smaps`.
#[cfg(test)]
pub(crate) fn resident_kib(path: &std::path::Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let name = path.to_str().expect("utf-8 path");
    let mut in_file = false;
    let mut total = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // A map's header: address range, permissions, offset, device, inode, path.
            in_file = line.ends_with(name);
        } else if in_file && let Some(kib) = line.strip_prefix("Rss:") {
            total += kib.trim().trim_end_matches("kB").trim().parse::<u64>().expect("kB");
        }
    }
    total
}
