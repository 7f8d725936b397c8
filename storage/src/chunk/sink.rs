//! Where an encoder puts a chunk's bytes: a plain vector, or fixed-size segments that
//! never move.
//!
//! A million open chunks growing in step through the allocator's size classes leave
//! each class's pages full of holes (every move frees a smaller buffer while its
//! neighbours still live), which cost ~300 bytes of resident memory per series above
//! the live heap at a million series. [`SegmentedBytes`] grows by whole segments of one
//! size class instead: a byte once written never moves, and a chunk cut frees segments
//! that any series' next segment reuses.

/// A byte buffer an encoder appends to.
pub trait ChunkBytes: Default {
    /// Appends a byte.
    fn push(&mut self, b: u8);
    /// The last byte written, if any.
    fn last_mut(&mut self) -> Option<&mut u8>;
    /// Number of bytes written.
    fn len(&self) -> usize;
    /// Whether nothing is written.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes from the start that sit together in memory (at least
    /// [`SEGMENT_DATA`] of them when that many are written).
    fn prefix(&self) -> &[u8];
    /// All bytes when they sit together in memory.
    fn as_contiguous(&self) -> Option<&[u8]>;
    /// Copies all bytes into `out`, which is exactly [`ChunkBytes::len`] long.
    fn copy_to(&self, out: &mut [u8]);
    /// Stores the chunk header; a buffer that cannot rewrite its start cheaply leaves it
    /// to the readers of copies (the encoder knows the header).
    fn set_header(&mut self, _header: [u8; 2]) {}
}

impl ChunkBytes for Vec<u8> {
    fn push(&mut self, b: u8) {
        Vec::push(self, b);
    }

    fn last_mut(&mut self) -> Option<&mut u8> {
        <[u8]>::last_mut(self)
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn prefix(&self) -> &[u8] {
        self
    }

    fn as_contiguous(&self) -> Option<&[u8]> {
        Some(self)
    }

    fn copy_to(&self, out: &mut [u8]) {
        out.copy_from_slice(self);
    }

    fn set_header(&mut self, header: [u8; 2]) {
        if let Some(h) = self.get_mut(..2) {
            h.copy_from_slice(&header);
        }
    }
}

/// Bytes of one segment's allocation: a small allocator size class, so that a typical
/// head chunk (~160–360 bytes) wastes on average half a segment.
const SEGMENT_ALLOC: usize = 128;

/// Payload bytes of a segment: its allocation less the link to the previous segment.
pub const SEGMENT_DATA: usize = SEGMENT_ALLOC - std::mem::size_of::<Option<Box<Segment>>>();

/// One segment; the newest links to the one before it, so appending touches only the
/// newest.
struct Segment {
    prev: Option<Box<Segment>>,
    data: [u8; SEGMENT_DATA],
}

/// Bytes in a chain of fixed-size segments, newest first; written bytes never move.
#[derive(Default)]
pub struct SegmentedBytes {
    newest: Option<Box<Segment>>,
    len: u32,
}

impl SegmentedBytes {
    /// The segments, newest first.
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        std::iter::successors(self.newest.as_deref(), |s| s.prev.as_deref())
    }

    /// Bytes used in the newest segment (0 when it is full or absent).
    fn used_in_newest(&self) -> usize {
        self.len as usize % SEGMENT_DATA
    }
}

impl ChunkBytes for SegmentedBytes {
    fn push(&mut self, b: u8) {
        let at = self.used_in_newest();
        if at == 0 {
            let prev = self.newest.take();
            self.newest = Some(Box::new(Segment { prev, data: [0; SEGMENT_DATA] }));
        }
        if let Some(s) = self.newest.as_mut() {
            s.data[at] = b;
            self.len += 1;
        }
    }

    fn last_mut(&mut self) -> Option<&mut u8> {
        let at = (self.len as usize).checked_sub(1)? % SEGMENT_DATA;
        self.newest.as_mut().map(|s| &mut s.data[at])
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    fn prefix(&self) -> &[u8] {
        match self.segments().last() {
            Some(first) => &first.data[..self.len().min(SEGMENT_DATA)],
            None => &[],
        }
    }

    fn as_contiguous(&self) -> Option<&[u8]> {
        (self.len() <= SEGMENT_DATA).then(|| self.prefix())
    }

    fn copy_to(&self, out: &mut [u8]) {
        let mut end = self.len().min(out.len());
        for s in self.segments() {
            if end == 0 {
                break;
            }
            // Every segment but the newest is full, so each starts at a multiple of
            // SEGMENT_DATA.
            let start = (end - 1) / SEGMENT_DATA * SEGMENT_DATA;
            out[start..end].copy_from_slice(&s.data[..end - start]);
            end = start;
        }
    }
}

impl Drop for SegmentedBytes {
    fn drop(&mut self) {
        // Unlink one segment at a time: dropping the chain recursively could exhaust the
        // stack for a chunk of thousands of segments.
        let mut next = self.newest.take();
        while let Some(mut s) = next {
            next = s.prev.take();
        }
    }
}

impl Clone for SegmentedBytes {
    fn clone(&self) -> Self {
        let mut flat = vec![0; self.len()];
        self.copy_to(&mut flat);
        let mut out = SegmentedBytes::default();
        for b in flat {
            out.push(b);
        }
        out
    }
}

impl std::fmt::Debug for SegmentedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentedBytes").field("len", &self.len).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_segment_fills_its_allocation_class() {
        assert_eq!(std::mem::size_of::<Segment>(), SEGMENT_ALLOC);
    }

    proptest! {
        #[test]
        fn holds_what_a_vector_holds(bytes in prop::collection::vec(any::<u8>(), 0..1000), patch in any::<u8>()) {
            let mut seg = SegmentedBytes::default();
            let mut vec = Vec::new();
            for &b in &bytes {
                ChunkBytes::push(&mut seg, b);
                ChunkBytes::push(&mut vec, b);
                if let (Some(a), Some(b)) = (ChunkBytes::last_mut(&mut seg), ChunkBytes::last_mut(&mut vec)) {
                    *a |= patch;
                    *b |= patch;
                }
            }
            prop_assert_eq!(seg.len(), vec.len());
            let mut flat = vec![0; seg.len()];
            seg.copy_to(&mut flat);
            prop_assert_eq!(&flat, &vec);
            prop_assert_eq!(seg.prefix(), &vec[..vec.len().min(SEGMENT_DATA)]);
            prop_assert_eq!(seg.as_contiguous().is_some(), vec.len() <= SEGMENT_DATA);
            let copy = seg.clone();
            let mut flat2 = vec![0; copy.len()];
            copy.copy_to(&mut flat2);
            prop_assert_eq!(flat2, vec);
        }
    }
}
