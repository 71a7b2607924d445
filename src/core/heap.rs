//! Estimates of the heap memory a value keeps, for budgets in bytes: each allocation's
//! size rounded up to 16 bytes, plus 16 for the allocator's own bookkeeping (glibc's
//! malloc); a hash map's table as hashbrown lays it out. Estimates, not measurements: the
//! tests of pg::cache compare them with what a backend really grows by.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::mem::size_of;

const ALLOCATION_OVERHEAD: usize = 16;

/// One heap allocation of `bytes` (none for zero).
pub fn allocation(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        bytes.next_multiple_of(16) + ALLOCATION_OVERHEAD
    }
}

pub fn string(s: &str) -> usize {
    allocation(s.len())
}

pub fn vec<T>(v: &Vec<T>) -> usize {
    allocation(v.capacity() * size_of::<T>())
}

/// The table of a hash map (entries and control bytes), not what its entries point to.
pub fn map<K, V, S: BuildHasher>(m: &HashMap<K, V, S>) -> usize {
    if m.capacity() == 0 {
        return 0;
    }
    // hashbrown keeps at most 7/8 of its buckets full, and has a power of two of them.
    let buckets = (m.capacity() * 8 / 7).next_power_of_two();
    allocation(buckets * (size_of::<(K, V)>() + 1) + 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_what_is_held() {
        assert_eq!(allocation(0), 0);
        assert_eq!(allocation(1), 32);
        assert_eq!(string("abc"), 32);
        assert_eq!(string(&"x".repeat(100)), 128);
        let mut m: HashMap<u64, u64> = HashMap::new();
        assert_eq!(map(&m), 0);
        m.insert(1, 1);
        let small = map(&m);
        m.extend((0..1000).map(|i| (i, i)));
        assert!(map(&m) > 1000 * 16 && map(&m) > small);
    }
}
