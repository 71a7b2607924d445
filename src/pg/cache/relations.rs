//! The relationship side of the decision cache: the answers of authz_relation_check,
//! authz_list_objects and authz_list_users, by query, kept while no `relations` table
//! (relation_tuples, relation_models) has changed and the cache may be trusted (memo.rs),
//! and only until the earliest expiry of a tuple the answer read. At most an eighth of
//! authz.cache_memory.

use super::memo::{remembered, Footprint, Memo, Source, WhenFull};
use super::tables::{Epochs, Kind};
use crate::pg::clock;
use std::cell::RefCell;
use std::rc::Rc;

/// An answer: whether a relation holds, or the objects or users listed.
#[derive(Clone)]
pub enum Answer {
    Holds(bool),
    Listed(Rc<[Rc<str>]>),
}

/// An answer and when it stops being one (the earliest `expires_at` after the query's
/// time among the tuples it read; None: never by itself).
#[derive(Clone)]
pub struct Remembered {
    pub answer: Answer,
    pub until: Option<i64>,
}

impl Footprint for Remembered {
    fn bytes(&self) -> usize {
        match &self.answer {
            Answer::Holds(_) => 0,
            Answer::Listed(items) => 16 + items.iter().map(|i| 16 + 16 + i.len()).sum::<usize>(),
        }
    }
}

thread_local! {
    static ANSWERS: RefCell<Memo<String, Remembered>> = RefCell::new(Memo::new());
}

/// The memo is current while no `relations` table has changed.
const RELATIONS: Source = Source { kind: Kind::Relations, epoch: |epochs: Epochs| epochs.relations };

/// The answer to `query` (a text naming the query and all its arguments), as `load` gives
/// it or as it last gave it while nothing it read has changed or expired since.
pub fn relation_answer(query: String, load: impl FnOnce() -> Remembered) -> Answer {
    let current = |r: &Remembered| r.until.is_none_or(|until| clock::now() < until);
    remembered(&ANSWERS, &RELATIONS, query, current, WhenFull::Empty, |_| load()).0.answer
}

/// The bytes the memo holds, for authz_stats' memory figure (estimated).
pub fn bytes() -> usize {
    ANSWERS.with_borrow(|m| m.bytes)
}
