//! The request context (docs/reference.md): the principal of the current transaction,
//! with savepoint semantics. A principal set inside a subtransaction is undone when that
//! subtransaction rolls back and kept when it is released; everything ends with the
//! transaction. The pg layer feeds this from PostgreSQL's transaction callbacks; nothing
//! here can be reached through a setting.

/// Who the current transaction acts for (cheap to clone: a check per row takes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: std::rc::Rc<str>,
    /// The API key it authenticated with, if any: its scopes then limit what it may do.
    pub key_id: Option<[u8; 16]>,
}

/// PostgreSQL's SubTransactionId: 1 for the top level, growing with each subtransaction.
pub type SubTransactionId = u32;

#[derive(Debug, Default)]
pub struct Context {
    /// (subtransaction that set it, principal or None for "cleared"), oldest first; the
    /// subtransaction ids increase from bottom to top.
    entries: Vec<(SubTransactionId, Option<Principal>)>,
}

impl Context {
    pub const fn new() -> Self {
        Context { entries: Vec::new() }
    }

    pub fn current(&self) -> Option<&Principal> {
        self.entries.last().and_then(|(_, p)| p.as_ref())
    }

    /// Sets (or with None clears) the principal from subtransaction `at`.
    pub fn set(&mut self, at: SubTransactionId, principal: Option<Principal>) {
        match self.entries.last_mut() {
            Some((level, p)) if *level == at => *p = principal,
            _ => self.entries.push((at, principal)),
        }
    }

    /// A subtransaction was released: what it set now belongs to its parent.
    pub fn commit_sub(&mut self, sub: SubTransactionId, parent: SubTransactionId) {
        if let Some((level, _)) = self.entries.last_mut().filter(|(level, _)| *level == sub) {
            *level = parent;
            let n = self.entries.len();
            if n >= 2 && self.entries[n - 2].0 == parent {
                self.entries.remove(n - 2);
            }
        }
    }

    /// A subtransaction rolled back: what it set is undone.
    pub fn abort_sub(&mut self, sub: SubTransactionId) {
        while self.entries.last().is_some_and(|(level, _)| *level >= sub) {
            self.entries.pop();
        }
    }

    /// COMMIT, ROLLBACK or PREPARE: the next transaction starts with no principal.
    pub fn end_transaction(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(name: &str) -> Option<Principal> {
        Some(Principal { user: name.into(), key_id: None })
    }

    fn current(c: &Context) -> Option<&str> {
        c.current().map(|p| &*p.user)
    }

    #[test]
    fn savepoints() {
        let mut c = Context::default();
        assert_eq!(current(&c), None);
        c.set(1, user("a"));
        c.set(2, user("b")); // SAVEPOINT s1; set b
        assert_eq!(current(&c), Some("b"));
        c.abort_sub(2); // ROLLBACK TO s1
        assert_eq!(current(&c), Some("a"));
        c.set(3, user("c")); // SAVEPOINT s2; set c
        c.commit_sub(3, 1); // RELEASE s2
        assert_eq!(current(&c), Some("c"));
        c.set(4, None); // SAVEPOINT s3; clear
        assert_eq!(current(&c), None);
        c.abort_sub(4);
        assert_eq!(current(&c), Some("c"));
        c.end_transaction();
        assert_eq!(current(&c), None);
    }

    #[test]
    fn nested_release_then_outer_rollback() {
        let mut c = Context::default();
        c.set(1, user("a"));
        c.set(3, user("b")); // inside savepoints 2 and 3
        c.commit_sub(3, 2); // RELEASE the inner one: b now belongs to 2
        assert_eq!(current(&c), Some("b"));
        c.abort_sub(2); // ROLLBACK TO the outer one
        assert_eq!(current(&c), Some("a"));
    }

    /// Reference model: a stack of whole snapshots of the principal, one per open
    /// (sub)transaction level, which is what savepoint semantics mean.
    #[derive(Debug, Clone)]
    enum Op {
        Set(Option<u8>),
        Savepoint,
        Release,
        RollbackTo,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::option::of(0..4u8).prop_map(Op::Set),
            Just(Op::Savepoint),
            Just(Op::Release),
            Just(Op::RollbackTo),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_stack_of_snapshots(ops in proptest::collection::vec(op(), 0..40)) {
            let mut c = Context::default();
            // Model: (subtransaction id, principal as of its start) per open savepoint.
            let mut open: Vec<(SubTransactionId, Option<u8>)> = Vec::new();
            let mut model: Option<u8> = None;
            let mut next_id = 2;
            let mut level = 1;
            for op in ops {
                match op {
                    Op::Set(p) => {
                        c.set(level, p.map(|n| Principal { user: n.to_string().into(), key_id: None }));
                        model = p;
                    }
                    Op::Savepoint => {
                        open.push((next_id, model));
                        level = next_id;
                        next_id += 1;
                    }
                    Op::Release => if let Some((id, _)) = open.pop() {
                        level = open.last().map_or(1, |(p, _)| *p);
                        c.commit_sub(id, level);
                    },
                    Op::RollbackTo => if let Some((id, before)) = open.pop() {
                        // ROLLBACK TO + RELEASE: back to the parent level and its principal.
                        c.abort_sub(id);
                        model = before;
                        level = open.last().map_or(1, |(p, _)| *p);
                    },
                }
                prop_assert_eq!(current(&c).map(str::to_string), model.map(|n| n.to_string()));
            }
        }
    }
}
