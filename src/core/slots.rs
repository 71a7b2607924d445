//! A table in shared memory that every backend reads and fills: small byte values by
//! (database, 32-byte hash), each valid at one generation of its database. The pg layer
//! keeps validated API keys in it (pg::cache::shared_keys) and decides when a generation
//! moves on (any change that may make a value stale bumps it); this is the structure,
//! lock-free for readers.
//!
//! Slots are grouped in buckets of `WAYS`; a key may sit in any slot of its bucket. Each
//! slot is under a sequence lock: a writer makes the count odd, writes, makes it even; a
//! reader copies the slot and keeps the copy only if the count was even and unchanged. A
//! writer that finds the slot locked gives up (a value not stored is read again later).

use std::sync::atomic::{fence, AtomicU64, Ordering::*};

/// Bytes a slot takes; the value may have `MAX_VALUE` of them.
pub const SLOT_BYTES: usize = 192;
const WORDS: usize = SLOT_BYTES / 8;
/// Words before the value: sequence count, stamp, database and length, hash (four), hint.
const HEAD: usize = 8;
/// The word of the hint: a number kept beside the value that only grows (`raise`), such as
/// a time of last use.
const HINT: usize = 7;
pub const MAX_VALUE: usize = (WORDS - HEAD) * 8;
const WAYS: usize = 8;
/// Generations are kept per database in this many counters (databases that share one
/// share its bumps: more misses, never a stale value); with the two words after them, the
/// header is 512 bytes, so slots begin on a cache line.
const GENERATIONS: usize = 62;

#[repr(C)]
pub struct Slots {
    generations: [AtomicU64; GENERATIONS],
    /// Picks which slot of a full bucket a new value replaces.
    turn: AtomicU64,
    buckets: u64,
    /// `buckets * WAYS * WORDS` words.
    words: [AtomicU64; 0],
}

impl Slots {
    /// The bytes a table of at most `bytes` takes, and its buckets (0: none fit).
    pub fn sized(bytes: usize) -> (usize, u64) {
        let buckets = bytes.saturating_sub(std::mem::size_of::<Slots>()) / (WAYS * SLOT_BYTES);
        (std::mem::size_of::<Slots>() + buckets * WAYS * SLOT_BYTES, buckets as u64)
    }

    /// Sets up the table in `memory`, zeroed and as long as `sized` said for `buckets`.
    ///
    /// # Safety
    /// `memory` is zeroed, aligned to 8 and as long as `sized` said; it outlives the table.
    pub unsafe fn init<'a>(memory: *mut u8, buckets: u64) -> &'a Slots {
        let slots = memory.cast::<Slots>();
        // SAFETY: the caller's promise; all-zero atomics are valid, `buckets` is written
        // before anyone else sees the table.
        unsafe {
            (*slots).buckets = buckets;
            &*slots
        }
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the memory `init` was given holds this many words after the header.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr(), self.buckets as usize * WAYS * WORDS) }
    }

    fn slot(&self, i: usize) -> &[AtomicU64] {
        &self.words()[i * WORDS..(i + 1) * WORDS]
    }

    /// The current generation of `database`: values stamped with another are stale.
    pub fn generation(&self, database: u32) -> u64 {
        self.generations[database as usize % GENERATIONS].load(SeqCst)
    }

    /// Makes every value of `database` (None: of every database) stale.
    pub fn bump(&self, database: Option<u32>) {
        match database {
            Some(database) => {
                self.generations[database as usize % GENERATIONS].fetch_add(1, SeqCst);
            }
            None => self.generations.iter().for_each(|g| {
                g.fetch_add(1, SeqCst);
            }),
        }
    }

    fn bucket(&self, hash: &[u8; 32]) -> std::ops::Range<usize> {
        let first = (u64::from_le_bytes(hash[..8].try_into().expect("8 bytes")) % self.buckets.max(1)) as usize * WAYS;
        first..first + WAYS
    }

    /// The value of (`database`, `hash`) at its current generation, copied into `out`: its
    /// length and hint, or None.
    pub fn get(&self, database: u32, hash: &[u8; 32], out: &mut [u8; MAX_VALUE]) -> Option<(usize, u64)> {
        if self.buckets == 0 || database == 0 {
            return None;
        }
        let generation = self.generation(database);
        let tag = tag(database, hash);
        for i in self.bucket(hash) {
            let slot = self.slot(i);
            let seq = slot[0].load(Acquire);
            if seq & 1 == 1 || slot[1].load(Relaxed) != generation || !same_tag(slot, &tag) {
                continue;
            }
            let len = (slot[2].load(Relaxed) >> 32) as usize;
            let hint = slot[HINT].load(Relaxed);
            let mut words = [0u64; WORDS - HEAD];
            for (w, word) in words.iter_mut().zip(&slot[HEAD..]) {
                *w = word.load(Relaxed);
            }
            fence(Acquire);
            if slot[0].load(Relaxed) != seq || len > MAX_VALUE {
                return None; // written meanwhile: read again from the tables
            }
            for (chunk, w) in out.chunks_mut(8).zip(words) {
                chunk.copy_from_slice(&w.to_le_bytes());
            }
            return Some((len, hint));
        }
        None
    }

    /// Stores `value` and `hint` for (`database`, `hash`), read when the generation was
    /// `stamp`; nothing if that generation has passed, the value is too long or the slot is
    /// busy.
    pub fn put(&self, database: u32, hash: &[u8; 32], stamp: u64, value: &[u8], hint: u64) {
        if self.buckets == 0 || database == 0 || value.len() > MAX_VALUE || self.generation(database) != stamp {
            return;
        }
        let tag = tag(database, hash);
        let bucket = self.bucket(hash);
        let same = bucket.clone().find(|&i| same_tag(self.slot(i), &tag));
        let stale = || bucket.clone().find(|&i| {
            let (stamp, database) = (self.slot(i)[1].load(Relaxed), self.slot(i)[2].load(Relaxed) as u32);
            database == 0 || stamp != self.generation(database)
        });
        let turn = || bucket.start + (self.turn.fetch_add(1, Relaxed) % WAYS as u64) as usize;
        let i = same.or_else(stale).unwrap_or_else(turn);
        self.write(i, |slot| {
            slot[1].store(stamp, Relaxed);
            slot[2].store(u64::from(database) | (value.len() as u64) << 32, Relaxed);
            for (word, t) in slot[3..HINT].iter().zip(&tag[1..]) {
                word.store(*t, Relaxed);
            }
            slot[HINT].store(hint, Relaxed);
            for (word, chunk) in slot[HEAD..].iter().zip(value.chunks(8)) {
                let mut bytes = [0u8; 8];
                bytes[..chunk.len()].copy_from_slice(chunk);
                word.store(u64::from_le_bytes(bytes), Relaxed);
            }
        });
    }

    /// Raises the hint of (`database`, `hash`) to `hint`, where a slot holds it.
    pub fn raise(&self, database: u32, hash: &[u8; 32], hint: u64) {
        if self.buckets == 0 || database == 0 {
            return;
        }
        let tag = tag(database, hash);
        // Only the slot that holds it is locked (a lock makes its readers miss); checked
        // again under the lock, as it may have been replaced meanwhile.
        if let Some(i) = self.bucket(hash).find(|&i| same_tag(self.slot(i), &tag)) {
            self.write(i, |slot| {
                if same_tag(slot, &tag) {
                    slot[HINT].fetch_max(hint, Relaxed);
                }
            });
        }
    }

    /// Runs `write` on slot `i` under its lock, unless another writer holds it.
    fn write(&self, i: usize, write: impl FnOnce(&[AtomicU64])) {
        let slot = self.slot(i);
        let seq = slot[0].load(Relaxed);
        if seq & 1 == 1 || slot[0].compare_exchange(seq, seq + 1, Acquire, Relaxed).is_err() {
            return;
        }
        fence(Release);
        write(slot);
        slot[0].store(seq + 2, Release);
    }
}

/// The words that name a value: database (with the length bits left 0) and hash.
fn tag(database: u32, hash: &[u8; 32]) -> [u64; 5] {
    let mut tag = [u64::from(database), 0, 0, 0, 0];
    for (t, chunk) in tag[1..].iter_mut().zip(hash.chunks(8)) {
        *t = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    tag
}

fn same_tag(slot: &[AtomicU64], tag: &[u64; 5]) -> bool {
    slot[2].load(Relaxed) as u32 as u64 == tag[0] && slot[3..HINT].iter().zip(&tag[1..]).all(|(w, t)| w.load(Relaxed) == *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `buckets` on the heap (leaked: tests only).
    fn table(buckets: u64) -> &'static Slots {
        let words = Slots::sized(std::mem::size_of::<Slots>() + buckets as usize * WAYS * SLOT_BYTES).0 / 8;
        let memory: &'static mut [u64] = Box::leak(vec![0u64; words].into_boxed_slice());
        // SAFETY: zeroed, aligned, as long as sized says, never freed.
        unsafe { Slots::init(memory.as_mut_ptr().cast(), buckets) }
    }

    fn hash(n: u64) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&n.to_le_bytes());
        h[8..16].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        h
    }

    fn get(t: &Slots, db: u32, h: &[u8; 32]) -> Option<Vec<u8>> {
        let mut out = [0u8; MAX_VALUE];
        t.get(db, h, &mut out).map(|(len, _)| out[..len].to_vec())
    }

    #[test]
    fn sized_fits_whole_buckets() {
        assert_eq!(Slots::sized(0).1, 0);
        let (bytes, buckets) = Slots::sized(1 << 20);
        assert_eq!(std::mem::size_of::<Slots>(), 512);
        assert!(bytes <= 1 << 20 && buckets == ((1 << 20) - 512) / (WAYS * SLOT_BYTES) as u64);
    }

    #[test]
    fn a_value_is_found_by_database_and_hash_at_its_generation() {
        let t = table(8);
        let stamp = t.generation(5);
        t.put(5, &hash(1), stamp, b"one", 0);
        t.put(5, &hash(2), stamp, &[7u8; MAX_VALUE], 0);
        assert_eq!(get(t, 5, &hash(1)), Some(b"one".to_vec()));
        assert_eq!(get(t, 5, &hash(2)), Some(vec![7u8; MAX_VALUE]));
        assert_eq!(get(t, 6, &hash(1)), None, "another database");
        assert_eq!(get(t, 5, &hash(3)), None);
        t.put(5, &hash(1), stamp, b"ONE!", 7);
        assert_eq!(get(t, 5, &hash(1)), Some(b"ONE!".to_vec()), "replaced in place");
        let hint = |h| t.get(5, &hash(h), &mut [0u8; MAX_VALUE]).map(|(_, hint)| hint);
        t.raise(5, &hash(1), 9);
        t.raise(5, &hash(1), 8);
        t.raise(5, &hash(3), 9);
        assert_eq!((hint(1), hint(3)), (Some(9), None), "a hint only grows, where the value is");
        t.put(5, &hash(4), stamp, &[0u8; MAX_VALUE + 1], 0);
        assert_eq!(get(t, 5, &hash(4)), None, "too long to keep");
    }

    #[test]
    fn a_bump_makes_values_stale_and_a_stamp_read_before_it_stores_nothing() {
        let t = table(8);
        let stamp = t.generation(5);
        t.put(5, &hash(1), stamp, b"a", 0);
        t.put(70, &hash(1), t.generation(70), b"b", 0);
        t.bump(Some(5));
        assert_eq!(get(t, 5, &hash(1)), None);
        assert_eq!(get(t, 70, &hash(1)), Some(b"b".to_vec()), "another database's generation");
        t.put(5, &hash(1), stamp, b"read before the bump", 0);
        assert_eq!(get(t, 5, &hash(1)), None);
        t.bump(None);
        assert_eq!(get(t, 70, &hash(1)), None);
    }

    #[test]
    fn a_full_bucket_takes_a_new_value_in_place_of_an_old_one() {
        let t = table(1);
        let stamp = t.generation(1);
        for n in 0..10 {
            t.put(1, &hash(n), stamp, &n.to_le_bytes(), 0);
        }
        let kept: Vec<u64> = (0..10).filter(|n| get(t, 1, &hash(*n)) == Some(n.to_le_bytes().to_vec())).collect();
        assert_eq!(kept.len(), WAYS, "{kept:?}");
        assert!(kept.contains(&9), "the last stored is kept");
    }

    #[test]
    fn an_empty_table_keeps_nothing() {
        let t = table(0);
        t.put(1, &hash(1), t.generation(1), b"x", 0);
        assert_eq!(get(t, 1, &hash(1)), None);
    }

    #[test]
    fn readers_never_see_a_torn_value() {
        // Writers store values whose bytes all equal one number; readers must only ever
        // see such values, at full length.
        let t = table(1);
        std::thread::scope(|s| {
            for w in 0..2u8 {
                s.spawn(move || {
                    for n in 0..20_000u32 {
                        let byte = (n % 200) as u8 + w;
                        let len = 1 + (n as usize * 7) % MAX_VALUE;
                        t.put(1, &hash(u64::from(n % 3)), t.generation(1), &vec![byte; len], 0);
                    }
                });
            }
            s.spawn(move || {
                let mut seen = 0;
                for n in 0..200_000u64 {
                    if let Some(v) = get(t, 1, &hash(n % 3)) {
                        assert!(!v.is_empty() && v.iter().all(|b| *b == v[0]), "torn: {v:?}");
                        seen += 1;
                    }
                }
                assert!(seen > 0);
            });
        });
    }
}
