//! A ring of bytes between one writing thread and the log thread: the
//! caller's side of a log call is a copy into memory no other thread
//! writes, and one atomic store. Records are contiguous (one that would
//! cross the end is placed at the start, behind a padding record), so the
//! reader hands each one over as a plain slice.
//!
//! The ring's writer is the [`Producer`], kept by its thread; its reader is
//! whoever holds the queue's turn (the log thread, or a thread flushing or
//! draining at exit), one at a time. Positions count bytes since the ring
//! was made; a slot's index is the position modulo the capacity.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Records start at multiples of this, so a padding record always fits
/// before the end.
pub(crate) const ALIGN: usize = 8;

/// The length-and-kind prefix of every record: a u32 length (the whole
/// record's, padding included), then the kind byte.
const PAD_KIND: u8 = 0xff;

/// A position and the one beside it on another cache line, so that the
/// writer's stores do not pull the reader's position away from it.
#[repr(align(128))]
struct Padded(AtomicU64);

/// The memory and the two positions.
pub(crate) struct Ring {
    memory: NonNull<u8>,
    capacity: usize,
    /// Bytes the producer has published: every record before it is whole.
    written: Padded,
    /// Bytes the reader has handed over: the producer may reuse them.
    read: Padded,
    /// The queue is gone: the producer's thread forgets the ring.
    abandoned: AtomicBool,
    /// Bytes from the start whose pages the reader has made real (see
    /// [`Ring::prefault_ahead`]); only the reader touches it.
    prefaulted: AtomicU64,
}

/// How far ahead of the producer the reader makes the ring's pages real,
/// once it has written [`PREFAULT_AFTER`] (a thread that logs a little
/// keeps a few pages, not a megabyte).
const PREFAULT_AHEAD: u64 = 1 << 20;
const PREFAULT_AFTER: u64 = 256 << 10;

// SAFETY: the ring's memory is shared between exactly one producer, which
// writes only the bytes between `written` and `read + capacity`, and one
// reader at a time (the holder of the queue's turn lock), which reads only
// the bytes between `read` and `written`. Each side publishes its position
// with a release store and reads the other's with an acquire load, so a
// byte is never written and read at the same time and every read sees the
// write that published it.
unsafe impl Send for Ring {}
// SAFETY: as for `Send`.
unsafe impl Sync for Ring {}

impl Ring {
    /// A ring of `capacity` bytes (a power of two, at least 64) and its
    /// producer; `None` if the memory cannot be had.
    pub fn new(capacity: usize) -> Option<(Arc<Ring>, Producer)> {
        assert!(capacity.is_power_of_two() && capacity >= 64);
        let memory = memory::map(capacity)?;
        let ring = Arc::new(Ring {
            memory,
            capacity,
            written: Padded(AtomicU64::new(0)),
            read: Padded(AtomicU64::new(0)),
            abandoned: AtomicBool::new(false),
            prefaulted: AtomicU64::new(0),
        });
        let producer = Producer {
            ring: ring.clone(),
            written: 0,
            read_seen: 0,
        };
        Some((ring, producer))
    }

    /// The largest record a ring of this capacity takes.
    #[inline]
    pub fn max_record(&self) -> usize {
        self.capacity / 4
    }

    #[inline]
    fn index(&self, position: u64) -> usize {
        position as usize & (self.capacity - 1)
    }

    /// Whether every published record has been handed over.
    pub fn is_empty(&self) -> bool {
        self.read.0.load(Ordering::Acquire) >= self.written.0.load(Ordering::Acquire)
    }

    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Makes the pages the producer will write next real, so that its
    /// first writes to them do not stop for a page fault on its thread
    /// (where a fresh ring would cost a call about a tenth more). Called
    /// by the reader; stops once the whole ring has been reached.
    pub fn prefault_ahead(&self) {
        let done = self.prefaulted.load(Ordering::Relaxed);
        let end = self.capacity as u64;
        if done >= end {
            return;
        }
        // Whole pages: the advice takes a page-aligned start.
        let written = self.written.0.load(Ordering::Relaxed);
        if written < PREFAULT_AFTER {
            return;
        }
        let want = (written + PREFAULT_AHEAD).next_multiple_of(4096).min(end);
        if want > done {
            memory::prefault(self.memory, done as usize, (want - done) as usize);
            self.prefaulted.store(want, Ordering::Relaxed);
        }
    }

    /// The reader's side: what is published now, to be read with
    /// [`Reader::next`]. Only the holder of the queue's turn calls it.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            ring: self,
            read: self.read.0.load(Ordering::Relaxed),
            until: self.written.0.load(Ordering::Acquire),
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The last owner is dropping the ring: no slice into it lives.
        memory::unmap(self.memory, self.capacity);
    }
}

/// The ring's memory: fresh zeroed pages, made real only as they are first
/// written (an 8 MB ring costs nothing until used, and a thread that logs
/// a little touches a few pages).
#[cfg(unix)]
mod memory {
    use std::ptr::NonNull;

    pub fn map(len: usize) -> Option<NonNull<u8>> {
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing touches no existing memory; failure is
        // MAP_FAILED, checked below.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(at.cast())
    }

    pub fn unmap(at: NonNull<u8>, len: usize) {
        // SAFETY: `at..at + len` is a mapping `map` made, unmapped once, by
        // the ring's drop, when nothing refers into it any more.
        unsafe { libc::munmap(at.as_ptr().cast(), len) };
    }

    /// Makes the pages of `from..from + len` of a mapping real without
    /// touching their bytes (a kernel without `MADV_POPULATE_WRITE`, before
    /// 5.14, refuses it: the producer then faults them in as it writes).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn prefault(at: NonNull<u8>, from: usize, len: usize) {
        // SAFETY: the range lies within the mapping (the ring's capacity,
        // a multiple of the page size, bounds it) and the advice only
        // allocates pages: it changes no byte the producer has written.
        unsafe { libc::madvise(at.as_ptr().add(from).cast(), len, libc::MADV_POPULATE_WRITE) };
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn prefault(_: NonNull<u8>, _: usize, _: usize) {}
}

/// Elsewhere, zeroed memory from the allocator.
#[cfg(not(unix))]
mod memory {
    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::ptr::NonNull;

    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len, 4096).expect("a ring's capacity is a small power of two")
    }

    pub fn map(len: usize) -> Option<NonNull<u8>> {
        // SAFETY: the layout's size is non-zero (a ring is at least 64 bytes).
        NonNull::new(unsafe { alloc_zeroed(layout(len)) })
    }

    pub fn unmap(at: NonNull<u8>, len: usize) {
        // SAFETY: `at` came from `alloc_zeroed` with this layout, and is
        // freed once, by the ring's drop.
        unsafe { dealloc(at.as_ptr(), layout(len)) }
    }

    pub fn prefault(_: NonNull<u8>, _: usize, _: usize) {}
}

/// The writing side of a ring, kept by the thread that writes it.
pub(crate) struct Producer {
    ring: Arc<Ring>,
    /// Bytes written so far (all published once a record is committed).
    written: u64,
    /// The reader's position when last read: room is checked against it
    /// first, so the reader's cache line is read only when the ring looks
    /// full.
    read_seen: u64,
}

impl Producer {
    #[inline]
    pub fn ring(&self) -> &Arc<Ring> {
        &self.ring
    }

    /// Whether everything this thread wrote has been handed over.
    pub fn all_handed(&self) -> bool {
        self.ring.read.0.load(Ordering::Acquire) >= self.written
    }

    /// Whether more than three quarters of the ring wait for the reader
    /// (a flood the reader does not keep up with). Reads the reader's
    /// position only when the last one read says so.
    #[inline]
    pub fn is_backed_up(&mut self) -> bool {
        let limit = self.ring.capacity as u64 / 4 * 3;
        if self.written - self.read_seen <= limit {
            return false;
        }
        self.read_seen = self.ring.read.0.load(Ordering::Acquire);
        self.written - self.read_seen > limit
    }

    /// Writes one record of `len` bytes (a multiple of [`ALIGN`], at most
    /// [`Ring::max_record`]) with `fill` and publishes it; `false`, writing
    /// nothing, while the ring has no room for it.
    #[inline]
    pub fn try_write(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        debug_assert!(len.is_multiple_of(ALIGN) && len <= self.ring.max_record() && len >= ALIGN);
        let capacity = self.ring.capacity as u64;
        let at = self.ring.index(self.written);
        let to_end = self.ring.capacity - at;
        let pad = if len <= to_end { 0 } else { to_end };
        let needed = (pad + len) as u64;
        if self.written + needed - self.read_seen > capacity {
            self.read_seen = self.ring.read.0.load(Ordering::Acquire);
            if self.written + needed - self.read_seen > capacity {
                return false;
            }
        }
        if pad > 0 {
            // SAFETY: `at..capacity` lies between `written` and
            // `read + capacity` (checked just above), which only this
            // producer writes; the reader reads it only after the release
            // store below publishes it.
            let slot = unsafe { std::slice::from_raw_parts_mut(self.ring.memory.as_ptr().add(at), pad) };
            slot[..4].copy_from_slice(&(pad as u32).to_le_bytes());
            slot[4] = PAD_KIND;
            self.written += pad as u64;
        }
        let at = self.ring.index(self.written);
        // SAFETY: as for the padding: `at..at + len` is within the memory
        // (a record never crosses the end) and between `written` and
        // `read + capacity`, so no reader looks at it until it is published.
        let slot = unsafe { std::slice::from_raw_parts_mut(self.ring.memory.as_ptr().add(at), len) };
        fill(slot);
        slot[..4].copy_from_slice(&(len as u32).to_le_bytes());
        self.written += len as u64;
        self.ring.written.0.store(self.written, Ordering::Release);
        true
    }
}

/// The reading side of a ring for one pass: the records published when it
/// was made.
pub(crate) struct Reader<'r> {
    ring: &'r Ring,
    read: u64,
    until: u64,
}

impl Reader<'_> {
    /// The next record, if any was published before the pass began;
    /// call [`consume`](Self::consume) once it has been handed over.
    pub fn peek(&mut self) -> Option<&[u8]> {
        loop {
            if self.read >= self.until {
                return None;
            }
            let at = self.ring.index(self.read);
            // SAFETY: `read..until` was published by the producer (acquire
            // load of `written` in `Ring::reader`) and is not reused by it
            // until `read` moves past it, which only this reader does. A
            // record's length and kind are its first five bytes.
            let head = unsafe { std::slice::from_raw_parts(self.ring.memory.as_ptr().add(at), ALIGN) };
            let len = u32::from_le_bytes(head[..4].try_into().expect("four bytes")) as usize;
            if head[4] == PAD_KIND {
                self.read += len as u64;
                continue;
            }
            // SAFETY: as above; the producer wrote `len` contiguous bytes.
            return Some(unsafe { std::slice::from_raw_parts(self.ring.memory.as_ptr().add(at), len) });
        }
    }

    /// Gives the record [`peek`](Self::peek) returned back to the producer.
    pub fn consume(&mut self, record_len: usize) {
        self.read += record_len as u64;
        self.ring.read.0.store(self.read, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(byte: u8, len: usize) -> impl FnOnce(&mut [u8]) {
        move |slot: &mut [u8]| {
            slot[4] = 0;
            slot[8..len].fill(byte)
        }
    }

    #[test]
    fn records_come_out_whole_in_order_across_the_end() {
        let (ring, mut producer) = Ring::new(256).unwrap();
        let mut seen = Vec::new();
        for round in 0..40u8 {
            let len = 16 + 8 * (round as usize % 6);
            assert!(producer.try_write(len, record(round, len)));
            let mut reader = ring.reader();
            while let Some(rec) = reader.peek() {
                assert!(rec[8..].iter().all(|&b| b == round), "{round}: {rec:?}");
                seen.push((rec.len(), rec[8]));
                let len = rec.len();
                reader.consume(len);
            }
            assert!(ring.is_empty() && producer.all_handed());
        }
        assert_eq!(seen.len(), 40);
    }

    #[test]
    fn a_full_ring_refuses_until_the_reader_catches_up() {
        let (ring, mut producer) = Ring::new(64).unwrap();
        assert!(producer.try_write(16, record(1, 16)));
        assert!(producer.try_write(16, record(2, 16)));
        assert!(producer.try_write(16, record(3, 16)));
        assert!(producer.try_write(16, record(4, 16)));
        assert!(!producer.try_write(16, record(5, 16)));
        let mut reader = ring.reader();
        let first = reader.peek().unwrap()[8];
        reader.consume(16);
        assert_eq!(first, 1);
        assert!(producer.try_write(16, record(5, 16)));
        assert!(!producer.all_handed());
    }

    #[test]
    fn a_ring_is_backed_up_past_three_quarters_unread() {
        let (ring, mut producer) = Ring::new(256).unwrap();
        for i in 0..12 {
            assert!(!producer.is_backed_up(), "{i} records");
            assert!(producer.try_write(16, record(1, 16)));
        }
        assert!(producer.try_write(16, record(1, 16)));
        assert!(producer.is_backed_up());
        let mut reader = ring.reader();
        reader.peek().unwrap();
        reader.consume(16);
        assert!(!producer.is_backed_up());
    }

    #[test]
    fn a_reader_on_another_thread_sees_every_record() {
        let (ring, mut producer) = Ring::new(4096).unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..100_000u32 {
                let len = if i % 3 == 0 { 24 } else { 16 };
                while !producer.try_write(len, |slot| {
                    slot[4] = 0;
                    slot[8..12].copy_from_slice(&i.to_le_bytes())
                }) {
                    std::hint::spin_loop();
                }
            }
        });
        let mut next = 0u32;
        while next < 100_000 {
            let mut reader = ring.reader();
            while let Some(rec) = reader.peek() {
                assert_eq!(u32::from_le_bytes(rec[8..12].try_into().unwrap()), next);
                next += 1;
                let len = rec.len();
                reader.consume(len);
            }
        }
        writer.join().unwrap();
    }
}
