//! Which users' cached facts a commit made stale: a ring of user keys
//! (core::cache::user_key) that committing writers append to and every backend reads, so
//! that a change to one user's grants or role drops that user's entries, not every
//! backend's whole cache (docs/ARCHITECTURE.md, "Which entries a commit drops"). The pg
//! layer places it in shared memory (pg::cache::writers) and decides when to append and
//! read (writers.rs, trust.rs); this is the structure, lock-free.
//!
//! An entry is written in two steps (the key, then its sequence number); a reader that
//! finds one not written yet says so (`Read::NotYet`) and keeps its place. A reader that
//! fell behind by more than the ring holds is told to drop everything.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// Entries the ring holds (16 bytes each).
const LEN: u64 = 8192;

/// The key that stands for every user (a TRUNCATE, too many users in one transaction, a
/// prepared transaction's commit).
pub const EVERYONE: u64 = 0;

#[repr(C)]
pub struct Ring {
    /// Sequence number of the next entry to append.
    head: AtomicU64,
    entries: [Entry; LEN as usize],
}

#[repr(C)]
struct Entry {
    /// 1 + the sequence number of the entry written here last (0: never written).
    stamp: AtomicU64,
    user: AtomicU64,
}

/// What a reader found since its last look.
pub enum Read {
    /// The user keys appended (EVERYONE among them, or the ring overrun: drop everything).
    Users(Vec<u64>),
    /// An entry is being written: a writer is in its window.
    NotYet,
}

impl Ring {
    pub const fn size() -> usize {
        std::mem::size_of::<Ring>()
    }

    /// An empty ring on the heap (shared memory is zeroed likewise).
    pub fn new_boxed() -> Box<Ring> {
        // SAFETY: all-zero bytes are a valid Ring: atomics at 0, an empty ring.
        unsafe { Box::<Ring>::new_zeroed().assume_init() }
    }

    /// Appends one entry per key.
    pub fn append(&self, users: impl IntoIterator<Item = u64>) {
        for user in users {
            let seq = self.head.fetch_add(1, SeqCst);
            let entry = &self.entries[(seq % LEN) as usize];
            entry.user.store(user, SeqCst);
            entry.stamp.store(seq + 1, SeqCst);
        }
    }

    /// Where a reader that has seen nothing yet starts.
    pub fn head(&self) -> u64 {
        self.head.load(SeqCst)
    }

    /// The keys appended from `*next` on; advances `*next` past what was read.
    pub fn read(&self, next: &mut u64) -> Read {
        let (first, head) = (*next, self.head.load(SeqCst));
        let mut users = Vec::new();
        for seq in first..head.min(first + LEN) {
            let entry = &self.entries[(seq % LEN) as usize];
            let stamp = entry.stamp.load(SeqCst);
            if stamp < seq + 1 {
                return Read::NotYet;
            }
            users.push(entry.user.load(SeqCst));
        }
        *next = head;
        // An entry read may have been overwritten meanwhile only if the ring went round.
        if head - first > LEN || self.head.load(SeqCst) - first > LEN {
            return Read::Users(vec![EVERYONE]);
        }
        Read::Users(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn users(read: Read) -> Vec<u64> {
        match read {
            Read::Users(users) => users,
            Read::NotYet => panic!("not yet"),
        }
    }

    #[test]
    fn appended_keys_are_read_once() {
        let ring = Ring::new_boxed();
        let mut next = ring.head();
        assert!(users(ring.read(&mut next)).is_empty());
        ring.append([7, 8]);
        ring.append([9]);
        assert_eq!(users(ring.read(&mut next)), vec![7, 8, 9]);
        assert!(users(ring.read(&mut next)).is_empty());
        let mut late = 0;
        assert_eq!(users(ring.read(&mut late)), vec![7, 8, 9], "a reader from the start sees all");
    }

    #[test]
    fn an_entry_being_written_is_not_yet_readable() {
        let ring = Ring::new_boxed();
        let mut next = 0;
        ring.append([1]);
        ring.head.fetch_add(1, SeqCst); // reserved, key not stamped yet
        assert!(matches!(ring.read(&mut next), Read::NotYet));
        assert_eq!(next, 0, "the reader keeps its place");
        let entry = &ring.entries[1];
        entry.user.store(2, SeqCst);
        entry.stamp.store(2, SeqCst);
        assert_eq!(users(ring.read(&mut next)), vec![1, 2]);
    }

    #[test]
    fn a_reader_left_behind_drops_everything() {
        let ring = Ring::new_boxed();
        let mut next = 0;
        ring.append(1..=LEN + 1);
        assert_eq!(users(ring.read(&mut next)), vec![EVERYONE]);
        assert_eq!(next, LEN + 1);
        assert!(users(ring.read(&mut next)).is_empty());
    }

    proptest! {
        /// Against a model: a reader gets exactly the keys appended since its last read,
        /// or EVERYONE when more than the ring holds were appended meanwhile.
        #[test]
        fn readers_see_what_was_appended(ops in proptest::collection::vec((0..3u8, 1..3000u64), 1..40)) {
            let ring = Ring::new_boxed();
            let mut appended: Vec<u64> = Vec::new();
            let mut readers = [(0u64, 0usize), (0, 0)]; // (ring position, model position)
            for (op, n) in ops {
                match op {
                    0 => {
                        let keys: Vec<u64> = (0..n).map(|i| appended.len() as u64 + i + 1).collect();
                        ring.append(keys.iter().copied());
                        appended.extend(keys);
                    }
                    reader => {
                        let (next, seen) = &mut readers[reader as usize - 1];
                        let got = users(ring.read(next));
                        let expected = &appended[*seen..];
                        if expected.len() as u64 > LEN {
                            prop_assert_eq!(got, vec![EVERYONE]);
                        } else {
                            prop_assert_eq!(&got[..], expected);
                        }
                        *seen = appended.len();
                        prop_assert_eq!(*next, appended.len() as u64);
                    }
                }
            }
        }
    }
}
