//! Which users' cached facts a commit made stale, in shared memory: a ring of user keys
//! (core::cache::user_key) that committing writers append to and every backend reads, so
//! that a change to one user's grants or role drops that user's entries, not every
//! backend's whole cache (docs/ARCHITECTURE.md, "Which entries a commit drops").
//!
//! A writer appends after its commit is visible and before it releases its locks (at
//! XACT_EVENT_COMMIT): a registered writer whose lock is free has appended (writers.rs). A
//! reader that has checked that every visible commit is announced and finished reads
//! what was appended since its last look. An entry is written in two steps (the key, then
//! its sequence number); one not written yet belongs to a writer still in its window, and
//! the reader does not trust its cache for that check. Fell behind by more than the ring
//! holds: drop everything.

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
