//! Evaluating a model over tuples, with OpenFGA's semantics: `check` (is the subject related
//! to the object by the relation?), and, built on it, `list_objects` and `list_users`.
//! Tuples come from a `TupleSource` (the pg layer's tables plus contextual tuples; a list in
//! tests). A resolution deeper than 25 steps is an error, as in OpenFGA; a cycle (the same
//! object and relation again on one path) answers false. Tuples the model does not allow
//! (written under an older model) are ignored. Tuples with a condition are not evaluated
//! yet: they never hold.

use super::model::{Model, RestrictionKind, Rewrite};
use super::tuple::{Object, Subject, Tuple};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeSet, HashSet};
use std::rc::Rc;

/// OpenFGA's limit on the depth of a resolution.
pub const MAX_DEPTH: u32 = 25;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// OpenFGA 2021.
    UnknownType(String),
    /// OpenFGA 2022.
    UnknownRelation { type_name: String, relation: String },
    /// OpenFGA 2002: deeper than MAX_DEPTH.
    TooDeep,
    /// OpenFGA 2000: the subject's type, or a userset subject's relation, is not in the model.
    InvalidSubject(String),
}

impl EvalError {
    /// OpenFGA's error code.
    pub fn code(&self) -> u32 {
        match self {
            EvalError::UnknownType(_) => 2021,
            EvalError::UnknownRelation { .. } => 2022,
            EvalError::TooDeep => 2002,
            EvalError::InvalidSubject(_) => 2000,
        }
    }
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::UnknownType(t) => write!(f, "type {t} is not defined in the model (OpenFGA error 2021)"),
            EvalError::UnknownRelation { type_name, relation } => {
                write!(f, "relation {type_name}#{relation} is not defined in the model (OpenFGA error 2022)")
            }
            EvalError::TooDeep => write!(f, "the resolution is deeper than {MAX_DEPTH} (OpenFGA error 2002)"),
            EvalError::InvalidSubject(why) => write!(f, "invalid subject: {why} (OpenFGA error 2000)"),
        }
    }
}

type Result<T> = std::result::Result<T, EvalError>;

/// Where tuples are read from.
pub trait TupleSource {
    /// The tuples on `object` for `relation`, whatever their subject.
    fn tuples(&self, object: &Object, relation: &str) -> Vec<Tuple>;
    /// The tuple on `object` for `relation` with exactly this subject, if there is one.
    fn tuple_with_subject(&self, object: &Object, relation: &str, subject: &Subject) -> Option<Tuple> {
        self.tuples(object, relation).into_iter().find(|t| &t.subject == subject)
    }
    /// The tuples on `object` for `relation` whose subject is of `subject_type`.
    fn tuples_with_subject_type(&self, object: &Object, relation: &str, subject_type: &str) -> Vec<Tuple> {
        self.tuples(object, relation).into_iter().filter(|t| t.subject.type_name() == subject_type).collect()
    }
    /// The ids of the objects of `type_name` with a tuple for `relation` whose subject is
    /// exactly `subject`, without a condition and unexpired (the subject side: list_objects
    /// walks it).
    fn objects(&self, subject: &Subject, type_name: &str, relation: &str) -> Vec<Rc<str>>;
    /// Called at every step of an evaluation, where a long one may be stopped (the pg
    /// layer honours a cancel or `statement_timeout` there). Nothing by default.
    fn step(&self) {}
}

/// Tuples in memory: contextual tuples, and tests.
#[derive(Debug, Default, Clone)]
pub struct TupleList(pub Vec<Tuple>);

impl TupleSource for TupleList {
    fn tuples(&self, object: &Object, relation: &str) -> Vec<Tuple> {
        self.0.iter().filter(|t| &t.object == object && t.relation == relation).cloned().collect()
    }

    fn objects(&self, subject: &Subject, type_name: &str, relation: &str) -> Vec<Rc<str>> {
        let found = self.0.iter().filter(|t| {
            &t.subject == subject && t.object.type_name == type_name && t.relation == relation && t.condition.is_none()
        });
        found.map(|t| Rc::from(t.object.id.as_str())).collect()
    }
}

/// Two sources read as one (stored tuples and contextual ones).
pub struct Both<'a>(pub &'a dyn TupleSource, pub &'a dyn TupleSource);

impl TupleSource for Both<'_> {
    fn tuples(&self, object: &Object, relation: &str) -> Vec<Tuple> {
        let mut all = self.0.tuples(object, relation);
        all.extend(self.1.tuples(object, relation));
        all
    }

    fn tuple_with_subject(&self, object: &Object, relation: &str, subject: &Subject) -> Option<Tuple> {
        self.0.tuple_with_subject(object, relation, subject).or_else(|| self.1.tuple_with_subject(object, relation, subject))
    }

    fn tuples_with_subject_type(&self, object: &Object, relation: &str, subject_type: &str) -> Vec<Tuple> {
        let mut all = self.0.tuples_with_subject_type(object, relation, subject_type);
        all.extend(self.1.tuples_with_subject_type(object, relation, subject_type));
        all
    }

    fn objects(&self, subject: &Subject, type_name: &str, relation: &str) -> Vec<Rc<str>> {
        let mut all = self.0.objects(subject, type_name, relation);
        all.extend(self.1.objects(subject, type_name, relation));
        all
    }

    fn step(&self) {
        self.0.step();
        self.1.step();
    }
}

/// That the model defines the type, and the relation on it.
pub fn require_relation(model: &Model, type_name: &str, relation: &str) -> Result<()> {
    let t = model.type_def(type_name).ok_or_else(|| EvalError::UnknownType(type_name.to_string()))?;
    match t.relations.iter().any(|r| r.name == relation) {
        true => Ok(()),
        false => Err(EvalError::UnknownRelation { type_name: type_name.to_string(), relation: relation.to_string() }),
    }
}

/// That the subject's type (and a userset's relation) is in the model.
fn require_subject(model: &Model, subject: &Subject) -> Result<()> {
    let known = match subject {
        Subject::Userset(o, r) => model.relation(&o.type_name, r).is_some(),
        other => model.type_def(other.type_name()).is_some(),
    };
    match known {
        true => Ok(()),
        false => Err(EvalError::InvalidSubject(format!("{subject} is not of a type and relation of the model"))),
    }
}

/// Whether the model allows the tuple to be written: the object's relation is assignable
/// directly with the tuple's kind of subject (and its condition). The reason when not.
pub fn tuple_allowed(model: &Model, tuple: &Tuple) -> std::result::Result<(), String> {
    let Some(relation) = model.relation(&tuple.object.type_name, &tuple.relation) else {
        return Err(match model.type_def(&tuple.object.type_name) {
            None => format!("type {} is not defined in the model", tuple.object.type_name),
            Some(_) => format!("relation {}#{} is not defined in the model", tuple.object.type_name, tuple.relation),
        });
    };
    if allowed(&relation.rewrite, tuple) {
        Ok(())
    } else {
        Err(format!("the model does not allow {} as a subject of {}#{}", tuple.subject, tuple.object.type_name, tuple.relation))
    }
}

/// Whether a direct restriction of the rewrite (at its top level, where direct tuples
/// count) admits the tuple's subject and condition.
fn allowed(rewrite: &Rewrite, tuple: &Tuple) -> bool {
    rewrite.restrictions().iter().any(|r| {
        let kind_matches = match (&r.kind, &tuple.subject) {
            (RestrictionKind::Type, Subject::Object(o)) => o.type_name == r.type_name,
            (RestrictionKind::Wildcard, Subject::Wildcard(t)) => *t == r.type_name,
            (RestrictionKind::Userset(rel), Subject::Userset(o, ur)) => o.type_name == r.type_name && ur == rel,
            _ => false,
        };
        kind_matches && r.condition == tuple.condition
    })
}

/// Whether `subject` is related to `object` by `relation`.
pub fn check(model: &Model, tuples: &dyn TupleSource, subject: &Subject, relation: &str, object: &Object) -> Result<bool> {
    require_relation(model, &object.type_name, relation)?;
    require_subject(model, subject)?;
    Ok(Checker::new(model, tuples, subject).relation(object, relation, 0)? != Membership::No)
}

/// How a subject is related: not at all, only because a wildcard tuple (`user:*`) relates
/// every object of its type, or otherwise. list_users lists those related through the
/// wildcard alone as the wildcard; `check` counts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Membership {
    No,
    Wild,
    Explicit,
}

struct Checker<'a> {
    model: &'a Model,
    tuples: &'a dyn TupleSource,
    subject: &'a Subject,
    /// (object, relation) on the current path: seen again, a cycle.
    path: HashSet<(Object, String)>,
    /// Answers already found for (object, relation), so that a model reaching the same
    /// one by many ways (`b: a or a`, `c: b or b`, ...) costs once, not exponentially. A
    /// way found holds whatever the path; a No is kept only if no cycle was cut below it
    /// (then it might depend on the path).
    answers: FxHashMap<(Object, String), Membership>,
    /// Whether a cycle was cut since the current relation began.
    cut: bool,
}

impl<'a> Checker<'a> {
    fn new(model: &'a Model, tuples: &'a dyn TupleSource, subject: &'a Subject) -> Self {
        Checker { model, tuples, subject, path: HashSet::new(), answers: FxHashMap::default(), cut: false }
    }
}

/// The best membership of several ways (or), stopping at Explicit; errors only if no way
/// relates.
fn any(ways: impl IntoIterator<Item = Result<Membership>>) -> Result<Membership> {
    let (mut best, mut error) = (Membership::No, None);
    for way in ways {
        match way {
            Ok(Membership::Explicit) => return Ok(Membership::Explicit),
            Ok(m) => best = best.max(m),
            Err(e) => error = Some(e),
        }
    }
    match (best, error) {
        (Membership::No, Some(e)) => Err(e),
        (best, _) => Ok(best),
    }
}

impl Checker<'_> {
    fn relation(&mut self, object: &Object, relation: &str, depth: u32) -> Result<Membership> {
        if depth >= MAX_DEPTH {
            return Err(EvalError::TooDeep);
        }
        self.tuples.step();
        // A userset is related to its own object by its own relation.
        if let Subject::Userset(o, r) = self.subject {
            if o == object && r == relation {
                return Ok(Membership::Explicit);
            }
        }
        let Some(definition) = self.model.relation(&object.type_name, relation) else {
            return Ok(Membership::No);
        };
        let key = (object.clone(), relation.to_string());
        if let Some(&answer) = self.answers.get(&key) {
            return Ok(answer);
        }
        if !self.path.insert(key.clone()) {
            self.cut = true;
            return Ok(Membership::No);
        }
        let outer_cut = std::mem::replace(&mut self.cut, false);
        let result = self.rewrite(object, relation, &definition.rewrite, depth);
        self.path.remove(&key);
        if let Ok(answer) = result {
            if answer != Membership::No || !self.cut {
                self.answers.insert(key, answer);
            }
        }
        self.cut |= outer_cut;
        result
    }

    fn rewrite(&mut self, object: &Object, relation: &str, rewrite: &Rewrite, depth: u32) -> Result<Membership> {
        match rewrite {
            Rewrite::Direct(restrictions) => {
                // Only tuples that can relate the subject are read: the one naming it and
                // the wildcard of its type, where the restrictions allow them (each a
                // single probe), and the usersets of the types the restrictions allow (each
                // a range); others would answer No. (Tuples with a condition never hold.)
                let usable: Vec<_> = restrictions.iter().filter(|r| r.condition.is_none()).collect();
                let allows = |kind: &RestrictionKind, type_name: &str| usable.iter().any(|r| r.kind == *kind && r.type_name == type_name);
                let probes = match self.subject {
                    Subject::Object(o) => [
                        allows(&RestrictionKind::Type, &o.type_name).then(|| self.subject.clone()),
                        allows(&RestrictionKind::Wildcard, &o.type_name).then(|| Subject::Wildcard(o.type_name.clone())),
                    ],
                    Subject::Wildcard(t) => [allows(&RestrictionKind::Wildcard, t).then(|| self.subject.clone()), None],
                    // (A userset subject is found among the usersets below.)
                    Subject::Userset(..) => [None, None],
                };
                let mut found: Vec<Tuple> =
                    probes.iter().flatten().filter_map(|p| self.tuples.tuple_with_subject(object, relation, p)).collect();
                let userset_types: BTreeSet<&str> = usable
                    .iter()
                    .filter(|r| matches!(r.kind, RestrictionKind::Userset(_)))
                    .map(|r| r.type_name.as_str())
                    .collect();
                for t in userset_types {
                    let usersets = self.tuples.tuples_with_subject_type(object, relation, t);
                    found.extend(usersets.into_iter().filter(|t| matches!(t.subject, Subject::Userset(..))));
                }
                let mut ways = Vec::new();
                for t in found.iter().filter(|t| allowed(rewrite, t) && t.condition.is_none()) {
                    let way = self.tuple(t, depth);
                    let explicit = matches!(way, Ok(Membership::Explicit));
                    ways.push(way);
                    if explicit {
                        break;
                    }
                }
                any(ways)
            }
            Rewrite::Computed(r) => self.relation(object, r, depth + 1),
            Rewrite::TupleToUserset { tupleset, computed } => {
                let Some(ts) = self.model.relation(&object.type_name, tupleset) else {
                    return Ok(Membership::No);
                };
                let parents: Vec<Object> = self
                    .tuples
                    .tuples(object, tupleset)
                    .into_iter()
                    .filter(|t| allowed(&ts.rewrite, t) && t.condition.is_none())
                    .filter_map(|t| match t.subject {
                        Subject::Object(parent) if self.model.relation(&parent.type_name, computed).is_some() => Some(parent),
                        _ => None,
                    })
                    .collect();
                let ways: Vec<_> = parents.iter().map(|parent| self.relation(parent, computed, depth + 1)).collect();
                any(ways)
            }
            Rewrite::Union(children) => {
                let mut ways = Vec::new();
                for child in children {
                    let way = self.rewrite(object, relation, child, depth);
                    let explicit = matches!(way, Ok(Membership::Explicit));
                    ways.push(way);
                    if explicit {
                        break;
                    }
                }
                any(ways)
            }
            Rewrite::Intersection(children) => {
                // No if any is No; Wild if all are Wild; else Explicit. Errors only if
                // nothing said No.
                let (mut all_wild, mut error) = (true, None);
                for child in children {
                    match self.rewrite(object, relation, child, depth) {
                        Ok(Membership::No) => return Ok(Membership::No),
                        Ok(m) => all_wild &= m == Membership::Wild,
                        Err(e) => error = Some(e),
                    }
                }
                match error {
                    Some(e) => Err(e),
                    None if all_wild => Ok(Membership::Wild),
                    None => Ok(Membership::Explicit),
                }
            }
            Rewrite::Exclusion { base, subtract } => {
                let base = self.rewrite(object, relation, base, depth)?;
                if base == Membership::No {
                    return Ok(Membership::No);
                }
                // Taken away however it is related, through a wildcard too.
                match self.rewrite(object, relation, subtract, depth)? {
                    Membership::No => Ok(base),
                    _ => Ok(Membership::No),
                }
            }
        }
    }

    /// How one tuple of a direct relation relates the subject.
    fn tuple(&mut self, t: &Tuple, depth: u32) -> Result<Membership> {
        match (&t.subject, self.subject) {
            (s, wanted) if s == wanted => Ok(Membership::Explicit),
            (Subject::Wildcard(w), Subject::Object(o)) if *w == o.type_name => Ok(Membership::Wild),
            (Subject::Userset(o, r), _) => self.relation(o, r, depth + 1),
            _ => Ok(Membership::No),
        }
    }
}

/// The objects of `type_name` the subject is related to by `relation` (`type:id`).
pub fn list_objects(model: &Model, tuples: &dyn TupleSource, subject: &Subject, type_name: &str, relation: &str) -> Result<Vec<String>> {
    let ids = list_object_ids(model, tuples, subject, type_name, relation)?;
    Ok(ids.iter().map(|id| format!("{type_name}:{id}")).collect())
}

/// The ids of the objects `list_objects` lists: the candidates found from the subject's
/// side, each checked unless the walk is exact.
pub fn list_object_ids(model: &Model, tuples: &dyn TupleSource, subject: &Subject, type_name: &str, relation: &str) -> Result<Vec<Rc<str>>> {
    require_relation(model, type_name, relation)?;
    require_subject(model, subject)?;
    let (candidates, exact) = Candidates::new(model, tuples, subject).of(type_name, relation);
    if exact {
        return Ok(candidates.into_iter().collect());
    }
    let mut found = Vec::new();
    for id in candidates {
        let object = Object { type_name: type_name.to_string(), id: id.to_string() };
        if check(model, tuples, subject, relation, &object)? {
            found.push(id);
        }
    }
    Ok(found)
}

/// The (type, relation) sets the subject walk of `rewrite` (on `type_name`) reads.
fn inputs<'m>(model: &'m Model, type_name: &'m str, rewrite: &'m Rewrite, read: &mut Vec<(&'m str, &'m str)>) {
    match rewrite {
        Rewrite::Direct(restrictions) => {
            for r in restrictions.iter().filter(|r| r.condition.is_none()) {
                if let RestrictionKind::Userset(rel) = &r.kind {
                    read.push((&r.type_name, rel));
                }
            }
        }
        Rewrite::Computed(other) => read.push((type_name, other)),
        Rewrite::TupleToUserset { tupleset, computed } => {
            if let Some(ts) = model.relation(type_name, tupleset) {
                for r in ts.rewrite.restrictions() {
                    if r.kind == RestrictionKind::Type && r.condition.is_none() {
                        read.push((&r.type_name, computed));
                    }
                }
            }
        }
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            for child in children {
                inputs(model, type_name, child, read);
            }
        }
        Rewrite::Exclusion { base, .. } => inputs(model, type_name, base, read),
    }
}

/// Whether the rewrite has an `and` or a `but not` anywhere.
fn has_set_operation(rewrite: &Rewrite) -> bool {
    match rewrite {
        Rewrite::Intersection(_) | Rewrite::Exclusion { .. } => true,
        Rewrite::Union(children) => children.iter().any(has_set_operation),
        _ => false,
    }
}

/// The objects that may be related to a subject, relation by relation: a superset of the
/// answer (intersections and exclusions are left to the check), found
/// by walking tuples from the subject's side — the tuples naming the subject, then those
/// naming a userset or parent found so far — until no relation's set grows. Each step is a
/// lookup by subject, so the work follows what the subject reaches, not the number of
/// objects.
struct Candidates<'a> {
    model: &'a Model,
    tuples: &'a dyn TupleSource,
    subject: &'a Subject,
    sets: FxHashMap<(String, String), Members>,
    looked_up: FxHashMap<(Subject, String, String), Ids>,
    /// How many members of each set (second) each relation (first) has read in its walks.
    read: FxHashMap<((String, String), (String, String)), usize>,
    /// What the walk under way has read, counted in `read` when it ends (a set read twice
    /// in one walk is read whole both times).
    reading: Vec<(((String, String), (String, String)), usize)>,
}

/// Object ids of one lookup, shared by the walk's sets (an id is allocated once).
type Ids = Rc<[Rc<str>]>;

/// A relation's candidates so far, in the order they were found.
#[derive(Default)]
struct Members {
    order: Vec<Rc<str>>,
    all: FxHashSet<Rc<str>>,
}

/// How a walk reads the sets: only the members its relation has not read yet (a relation
/// walked again follows only what is new: work in proportion to the walk, not to its
/// rounds times its size), or all of them (under `and`, whose intersection needs whole
/// sets); and whether lookups that read no set are still to be made (the first walk).
#[derive(Clone, Copy)]
struct Walk {
    unread_only: bool,
    first: bool,
}

impl<'a> Candidates<'a> {
    fn new(model: &'a Model, tuples: &'a dyn TupleSource, subject: &'a Subject) -> Self {
        Candidates {
            model,
            tuples,
            subject,
            sets: FxHashMap::default(),
            looked_up: FxHashMap::default(),
            read: FxHashMap::default(),
            reading: Vec::new(),
        }
    }

    /// The candidates, and whether they are the answer itself: when the model has no `and`
    /// and no `but not` the walk only follows ways that relate (the lookups see only tuples
    /// without a condition and unexpired, as the check does), unless the derivations it
    /// found could be deeper than the check's limit (then the check decides, with its error).
    fn of(mut self, type_name: &str, relation: &str) -> (FxHashSet<Rc<str>>, bool) {
        let relations: usize = self.model.types.iter().map(|t| t.relations.len()).sum();
        let unions_only = !self.model.types.iter().flat_map(|t| &t.relations).any(|r| has_set_operation(&r.rewrite));
        // A relation is walked again only when a set it reads grew since its last walk (its
        // own too, during that walk).
        let mut step = 0u64;
        let mut grown_at: FxHashMap<(&str, &str), u64> = FxHashMap::default();
        let mut walked_at: FxHashMap<(&str, &str), u64> = FxHashMap::default();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let mut grew = false;
            for t in &self.model.types {
                for r in &t.relations {
                    let key = (t.name.as_str(), r.name.as_str());
                    let first = match walked_at.get(&key) {
                        None => true,
                        Some(&at) => {
                            let mut read = Vec::new();
                            inputs(self.model, &t.name, &r.rewrite, &mut read);
                            if !read.iter().any(|k| grown_at.get(k).is_some_and(|&g| g >= at)) {
                                continue;
                            }
                            false
                        }
                    };
                    step += 1;
                    walked_at.insert(key, step);
                    let mut found = self.reach(&t.name, &r.name, &r.rewrite, Walk { unread_only: true, first });
                    for (k, n) in self.reading.drain(..) {
                        self.read.insert(k, n);
                    }
                    // A userset is related to its own object by its own relation.
                    if let Subject::Userset(o, own) = self.subject {
                        if o.type_name == t.name && *own == r.name {
                            found.insert(Rc::from(o.id.as_str()));
                        }
                    }
                    let set = self.sets.entry((t.name.clone(), r.name.clone())).or_default();
                    let before = set.all.len();
                    if before == 0 {
                        set.order = found.iter().cloned().collect();
                        set.all = found;
                    } else {
                        for id in found {
                            if set.all.insert(id.clone()) {
                                set.order.push(id);
                            }
                        }
                    }
                    if set.all.len() > before {
                        grew = true;
                        grown_at.insert(key, step);
                    }
                }
            }
            if !grew {
                break;
            }
        }
        // Each round extends a derivation by at most one step per relation.
        let exact = unions_only && rounds * relations < MAX_DEPTH as usize;
        let wanted = self.sets.remove(&(type_name.to_string(), relation.to_string())).unwrap_or_default();
        (wanted.all, exact)
    }

    /// The members of `input`'s set that the walk of `reader` reads.
    fn set(&mut self, reader: (&str, &str), input: (&str, &str), walk: Walk) -> Vec<Rc<str>> {
        let key = (input.0.to_string(), input.1.to_string());
        let Some(members) = self.sets.get(&key) else {
            return Vec::new();
        };
        let total = members.order.len();
        if !walk.unread_only {
            return members.order.clone();
        }
        let reading = ((reader.0.to_string(), reader.1.to_string()), key);
        let from = self.read.get(&reading).copied().unwrap_or(0);
        let unread = members.order[from..].to_vec();
        self.reading.push((reading, total));
        unread
    }

    /// Objects with a `relation` tuple naming `subject`, looked up once.
    fn objects(&mut self, subject: Subject, type_name: &str, relation: &str) -> Ids {
        self.tuples.step();
        let key = (subject, type_name.to_string(), relation.to_string());
        if let Some(ids) = self.looked_up.get(&key) {
            return ids.clone();
        }
        let ids: Ids = self.tuples.objects(&key.0, type_name, relation).into();
        self.looked_up.insert(key, ids.clone());
        ids
    }

    fn reach(&mut self, type_name: &str, relation: &str, rewrite: &Rewrite, walk: Walk) -> FxHashSet<Rc<str>> {
        let mut found = FxHashSet::default();
        let here = (type_name, relation);
        match rewrite {
            Rewrite::Direct(restrictions) => {
                // Tuples with a condition never hold: only restrictions without one.
                for r in restrictions.iter().filter(|r| r.condition.is_none()) {
                    let exact = match (&r.kind, self.subject) {
                        (RestrictionKind::Type, Subject::Object(o)) => o.type_name == r.type_name,
                        (RestrictionKind::Wildcard, Subject::Wildcard(t)) => *t == r.type_name,
                        (RestrictionKind::Userset(rel), Subject::Userset(o, own)) => o.type_name == r.type_name && own == rel,
                        _ => false,
                    };
                    if exact && walk.first {
                        found.extend(self.objects(self.subject.clone(), type_name, relation).iter().cloned());
                    }
                    match (&r.kind, self.subject) {
                        (RestrictionKind::Wildcard, Subject::Object(o)) if o.type_name == r.type_name && walk.first => {
                            found.extend(self.objects(Subject::Wildcard(r.type_name.clone()), type_name, relation).iter().cloned());
                        }
                        (RestrictionKind::Userset(rel), _) => {
                            for id in self.set(here, (&r.type_name, rel), walk) {
                                let userset = Subject::Userset(Object { type_name: r.type_name.clone(), id: id.to_string() }, rel.clone());
                                found.extend(self.objects(userset, type_name, relation).iter().cloned());
                            }
                        }
                        _ => {}
                    }
                }
            }
            Rewrite::Computed(other) => found.extend(self.set(here, (type_name, other), walk)),
            Rewrite::TupleToUserset { tupleset, computed } => {
                let Some(ts) = self.model.relation(type_name, tupleset) else {
                    return found;
                };
                let parent_types: Vec<String> = ts
                    .rewrite
                    .restrictions()
                    .into_iter()
                    .filter(|r| r.kind == RestrictionKind::Type && r.condition.is_none())
                    .map(|r| r.type_name.clone())
                    .collect();
                for parent_type in parent_types {
                    for id in self.set(here, (&parent_type, computed), walk) {
                        let parent = Subject::Object(Object { type_name: parent_type.clone(), id: id.to_string() });
                        found.extend(self.objects(parent, type_name, tupleset).iter().cloned());
                    }
                }
            }
            Rewrite::Union(children) => {
                for child in children {
                    found.extend(self.reach(type_name, relation, child, walk));
                }
            }
            // Related to all of them: a candidate of each, from whole sets.
            Rewrite::Intersection(children) => {
                let whole = Walk { unread_only: false, first: true };
                let mut sets = children.iter().map(|c| self.reach(type_name, relation, c, whole)).collect::<Vec<_>>().into_iter();
                if let Some(first) = sets.next() {
                    found = sets.fold(first, |all, next| all.intersection(&next).cloned().collect());
                }
            }
            Rewrite::Exclusion { base, .. } => found = self.reach(type_name, relation, base, walk),
        }
        found
    }
}

/// The subjects of the filter's kind related to `object` by `relation`: for a type
/// `user`, its objects (`user:anne`) and its wildcard (`user:*`); for `group#member`, the
/// usersets `group:<id>#member`. Candidates are the ids the object's relation reaches
/// (`reached_ids`), each checked.
pub fn list_users(model: &Model, tuples: &dyn TupleSource, object: &Object, relation: &str, filter: &str) -> Result<Vec<String>> {
    require_relation(model, &object.type_name, relation)?;
    let (filter_type, filter_relation) = match filter.split_once('#') {
        Some((t, r)) => (t, Some(r)),
        None => (filter, None),
    };
    match filter_relation {
        Some(r) => require_relation(model, filter_type, r)?,
        None if model.type_def(filter_type).is_none() => return Err(EvalError::UnknownType(filter_type.to_string())),
        None => {}
    }
    let ids = reached_ids(model, tuples, object, relation, filter_type);
    users_among(model, tuples, object, relation, (filter_type, filter_relation), ids)
}

/// list_users' answer among the candidate ids of the filter's type.
fn users_among(
    model: &Model,
    tuples: &dyn TupleSource,
    object: &Object,
    relation: &str,
    (filter_type, filter_relation): (&str, Option<&str>),
    ids: BTreeSet<String>,
) -> Result<Vec<String>> {
    let mut candidates: Vec<Subject> = ids
        .into_iter()
        .map(|id| {
            let o = Object { type_name: filter_type.to_string(), id };
            match filter_relation {
                Some(r) => Subject::Userset(o, r.to_string()),
                None => Subject::Object(o),
            }
        })
        .collect();
    if filter_relation.is_none() {
        candidates.push(Subject::Wildcard(filter_type.to_string()));
    }
    let mut found = Vec::new();
    for subject in candidates {
        // An object related through the wildcard alone is listed as the wildcard.
        let membership = Checker::new(model, tuples, &subject).relation(object, relation, 0)?;
        if membership == Membership::Explicit {
            found.push(subject.to_string());
        }
    }
    Ok(found)
}

/// The ids of `filter_type` list_users must consider: every object of the type that
/// `relation`'s definition reaches from `object` (the object too), walking its tuples
/// downward every way — set operations included, so a superset —, and every subject of the
/// type that a tuple read on the way names. Each (object, relation) is expanded once.
fn reached_ids(model: &Model, tuples: &dyn TupleSource, object: &Object, relation: &str, filter_type: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut expanded = HashSet::new();
    let mut pending = vec![(object.clone(), relation.to_string())];
    while let Some((object, relation)) = pending.pop() {
        tuples.step();
        if object.type_name == filter_type {
            ids.insert(object.id.clone());
        }
        if let Some(definition) = model.relation(&object.type_name, &relation) {
            if expanded.insert((object.clone(), relation.clone())) {
                expand(&definition.rewrite, &object, &relation, tuples, filter_type, &mut ids, &mut pending);
            }
        }
    }
    ids
}

fn expand(
    rewrite: &Rewrite,
    object: &Object,
    relation: &str,
    tuples: &dyn TupleSource,
    filter_type: &str,
    ids: &mut BTreeSet<String>,
    pending: &mut Vec<(Object, String)>,
) {
    match rewrite {
        Rewrite::Direct(_) => {
            for t in tuples.tuples(object, relation) {
                match t.subject {
                    Subject::Object(s) if s.type_name == filter_type => {
                        ids.insert(s.id);
                    }
                    Subject::Userset(s, r) => pending.push((s, r)),
                    _ => {}
                }
            }
        }
        Rewrite::Computed(other) => pending.push((object.clone(), other.clone())),
        Rewrite::TupleToUserset { tupleset, computed } => {
            for t in tuples.tuples(object, tupleset) {
                if let Subject::Object(parent) = t.subject {
                    pending.push((parent, computed.clone()));
                }
            }
        }
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            for child in children {
                expand(child, object, relation, tuples, filter_type, ids, pending);
            }
        }
        Rewrite::Exclusion { base, subtract } => {
            expand(base, object, relation, tuples, filter_type, ids, pending);
            expand(subtract, object, relation, tuples, filter_type, ids, pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fga::model::{Relation, Restriction, TypeDef};
    use crate::core::fga::validate::validate;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const USERS: [&str; 3] = ["a", "b", "c"];

    fn obj(s: &str) -> Object {
        Object::parse(s).unwrap()
    }

    fn restriction(type_name: &str, kind: RestrictionKind) -> Restriction {
        Restriction { type_name: type_name.into(), kind, condition: None }
    }

    /// A rewrite of relation `index` of its type, referring only to relations before it (of
    /// its type, and of group for doc's tuple-to-usersets): models without cycles, whose
    /// meaning a forward computation gives.
    fn arb_rewrite(type_name: &'static str, index: usize) -> impl Strategy<Value = Rewrite> {
        let prefix = if type_name == "group" { "g" } else { "d" };
        let mut leaves: Vec<BoxedStrategy<Rewrite>> = vec![
            prop::sample::subsequence(vec![0u8, 1, 2], 1..=3)
                .prop_map(move |kinds| {
                    Rewrite::Direct(kinds.into_iter().map(|k| match k {
                        0 => restriction("user", RestrictionKind::Type),
                        1 => restriction("user", RestrictionKind::Wildcard),
                        _ => restriction("group", RestrictionKind::Userset("g0".into())),
                    }).collect())
                })
                .boxed(),
        ];
        if index > 0 {
            leaves.push((0..index).prop_map(move |i| Rewrite::Computed(format!("{prefix}{i}"))).boxed());
        }
        if type_name == "doc" {
            leaves.push((0..3usize).prop_map(|i| Rewrite::TupleToUserset { tupleset: "parent".into(), computed: format!("g{i}") }).boxed());
        }
        let leaf = prop::strategy::Union::new(leaves);
        leaf.prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..=3).prop_map(Rewrite::Union),
                prop::collection::vec(inner.clone(), 2..=3).prop_map(Rewrite::Intersection),
                (inner.clone(), inner).prop_map(|(b, s)| Rewrite::Exclusion { base: Box::new(b), subtract: Box::new(s) }),
            ]
        })
    }

    fn arb_model() -> impl Strategy<Value = Model> {
        let group = (arb_rewrite("group", 1), arb_rewrite("group", 2));
        let doc = (arb_rewrite("doc", 0), arb_rewrite("doc", 1), arb_rewrite("doc", 2));
        (group, doc).prop_map(|((g1, g2), (d0, d1, d2))| {
            let relation = |name: &str, rewrite| Relation { name: name.into(), rewrite };
            let g0 = Rewrite::Direct(vec![restriction("user", RestrictionKind::Type), restriction("user", RestrictionKind::Wildcard)]);
            Model {
                schema: "1.1".into(),
                types: vec![
                    TypeDef { name: "user".into(), relations: vec![] },
                    TypeDef { name: "group".into(), relations: vec![relation("g0", g0), relation("g1", g1), relation("g2", g2)] },
                    TypeDef {
                        name: "doc".into(),
                        relations: vec![
                            relation("parent", Rewrite::Direct(vec![restriction("group", RestrictionKind::Type)])),
                            relation("d0", d0),
                            relation("d1", d1),
                            relation("d2", d2),
                        ],
                    },
                ],
                conditions: vec![],
            }
        })
    }

    /// Every tuple of the small universe that `pick` selects (the model's rules applied later).
    fn arb_tuples() -> impl Strategy<Value = Vec<Tuple>> {
        let mut universe = Vec::new();
        let subjects: Vec<Subject> = USERS.iter().map(|u| Subject::Object(obj(&format!("user:{u}"))))
            .chain([Subject::Wildcard("user".into())])
            .chain(["group:0", "group:1"].iter().map(|g| Subject::Userset(obj(g), "g0".into())))
            .collect();
        for object in ["group:0", "group:1", "doc:0", "doc:1"] {
            let relations: &[&str] = if object.starts_with("group") { &["g0", "g1", "g2"] } else { &["d0", "d1", "d2"] };
            for relation in relations {
                for subject in &subjects {
                    universe.push(Tuple { object: obj(object), relation: relation.to_string(), subject: subject.clone(), condition: None });
                }
            }
        }
        for doc in ["doc:0", "doc:1"] {
            for group in ["group:0", "group:1"] {
                universe.push(Tuple { object: obj(doc), relation: "parent".into(), subject: Subject::Object(obj(group)), condition: None });
            }
        }
        prop::sample::subsequence(universe.clone(), 0..=24)
    }

    /// The users (of USERS) related to (object, relation), computed forwards: a definition
    /// independent of `check`.
    fn forward(model: &Model, tuples: &TupleList, memo: &mut BTreeMap<(Object, String), BTreeSet<String>>, object: &Object, relation: &str) -> BTreeSet<String> {
        if let Some(users) = memo.get(&(object.clone(), relation.to_string())) {
            return users.clone();
        }
        let rewrite = model.relation(&object.type_name, relation).unwrap().rewrite.clone();
        let users = forward_rewrite(model, tuples, memo, object, relation, &rewrite);
        memo.insert((object.clone(), relation.to_string()), users.clone());
        users
    }

    fn forward_rewrite(model: &Model, tuples: &TupleList, memo: &mut BTreeMap<(Object, String), BTreeSet<String>>, object: &Object, relation: &str, rewrite: &Rewrite) -> BTreeSet<String> {
        let all: BTreeSet<String> = USERS.iter().map(|u| u.to_string()).collect();
        match rewrite {
            Rewrite::Direct(_) => {
                let mut users = BTreeSet::new();
                for t in tuples.tuples(object, relation).iter().filter(|t| allowed(rewrite, t)) {
                    match &t.subject {
                        Subject::Object(o) => { users.insert(o.id.clone()); }
                        Subject::Wildcard(_) => users.extend(all.iter().cloned()),
                        Subject::Userset(o, r) => users.extend(forward(model, tuples, memo, o, r)),
                    }
                }
                users
            }
            Rewrite::Computed(r) => forward(model, tuples, memo, object, r),
            Rewrite::TupleToUserset { tupleset, computed } => {
                let ts = model.relation(&object.type_name, tupleset).unwrap().rewrite.clone();
                let mut users = BTreeSet::new();
                for t in tuples.tuples(object, tupleset).iter().filter(|t| allowed(&ts, t)) {
                    if let Subject::Object(p) = &t.subject {
                        users.extend(forward(model, tuples, memo, p, computed));
                    }
                }
                users
            }
            Rewrite::Union(c) => c.iter().flat_map(|c| forward_rewrite(model, tuples, memo, object, relation, c)).collect(),
            Rewrite::Intersection(c) => c.iter().map(|c| forward_rewrite(model, tuples, memo, object, relation, c))
                .reduce(|a, b| a.intersection(&b).cloned().collect()).unwrap_or_default(),
            Rewrite::Exclusion { base, subtract } => {
                let s = forward_rewrite(model, tuples, memo, object, relation, subtract);
                forward_rewrite(model, tuples, memo, object, relation, base).difference(&s).cloned().collect()
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// check, list_objects and list_users agree with the forward computation on random
        /// acyclic models and tuple sets.
        #[test]
        fn check_and_lists_match_a_forward_computation(model in arb_model(), candidates in arb_tuples()) {
            prop_assume!(validate(&model).is_ok());
            let tuples = TupleList(candidates.into_iter().filter(|t| tuple_allowed(&model, t).is_ok()).collect());
            let mut memo = BTreeMap::new();
            for (type_name, relations) in [("group", ["g0", "g1", "g2"]), ("doc", ["d0", "d1", "d2"])] {
                for relation in relations {
                    for user in USERS {
                        let subject = Subject::Object(obj(&format!("user:{user}")));
                        let mut expected = Vec::new();
                        for id in ["0", "1"] {
                            let object = obj(&format!("{type_name}:{id}"));
                            let related = forward(&model, &tuples, &mut memo, &object, relation).contains(user);
                            prop_assert_eq!(check(&model, &tuples, &subject, relation, &object), Ok(related), "{} {} {}", user, relation, object);
                            if related {
                                expected.push(object.to_string());
                            }
                        }
                        let listed = list_objects(&model, &tuples, &subject, type_name, relation).map(|mut l| {
                            l.sort();
                            l
                        });
                        prop_assert_eq!(listed, Ok(expected));
                    }
                    // list_users considers the ids its walk reaches: the same answer as
                    // with every id of the filter's type as a candidate.
                    for (id, filter) in [("0", "user"), ("1", "user"), ("0", "group#g0"), ("1", "group#g1")] {
                        let object = obj(&format!("{type_name}:{id}"));
                        let (filter_type, filter_relation) = filter.split_once('#').map_or((filter, None), |(t, r)| (t, Some(r)));
                        let every_id: BTreeSet<String> = tuples.0.iter()
                            .flat_map(|t| [Some(&t.object), match &t.subject { Subject::Object(o) | Subject::Userset(o, _) => Some(o), _ => None }])
                            .flatten()
                            .filter(|o| o.type_name == filter_type)
                            .map(|o| o.id.clone())
                            .chain((object.type_name == filter_type).then(|| object.id.clone()))
                            .collect();
                        prop_assert_eq!(
                            list_users(&model, &tuples, &object, relation, filter),
                            users_among(&model, &tuples, &object, relation, (filter_type, filter_relation), every_id),
                            "{}#{} {}", object, relation, filter
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn depth_cycles_and_errors() {
        let model = crate::core::fga::dsl::parse(
            "model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user, group#member]\ntype doc\n  relations\n    define viewer: [group#member]",
        ).unwrap();
        // A cycle of groups answers false for a subject outside it, true inside.
        let mut tuples = TupleList(vec![
            Tuple { object: obj("group:a"), relation: "member".into(), subject: Subject::parse("group:b#member").unwrap(), condition: None },
            Tuple { object: obj("group:b"), relation: "member".into(), subject: Subject::parse("group:a#member").unwrap(), condition: None },
            Tuple { object: obj("doc:1"), relation: "viewer".into(), subject: Subject::parse("group:a#member").unwrap(), condition: None },
        ]);
        let anne = Subject::parse("user:anne").unwrap();
        assert_eq!(check(&model, &tuples, &anne, "viewer", &obj("doc:1")), Ok(false));
        tuples.0.push(Tuple { object: obj("group:b"), relation: "member".into(), subject: anne.clone(), condition: None });
        assert_eq!(check(&model, &tuples, &anne, "viewer", &obj("doc:1")), Ok(true));
        assert_eq!(check(&model, &tuples, &Subject::parse("group:b#member").unwrap(), "viewer", &obj("doc:1")), Ok(true));
        // A chain of 30 nested groups is deeper than 25.
        let mut chain = TupleList(vec![Tuple { object: obj("group:0"), relation: "member".into(), subject: anne.clone(), condition: None }]);
        for i in 1..30 {
            chain.0.push(Tuple { object: obj(&format!("group:{i}")), relation: "member".into(), subject: Subject::parse(&format!("group:{}#member", i - 1)).unwrap(), condition: None });
        }
        assert_eq!(check(&model, &chain, &anne, "member", &obj("group:10")), Ok(true));
        assert_eq!(check(&model, &chain, &anne, "member", &obj("group:29")), Err(EvalError::TooDeep));
        assert_eq!(check(&model, &chain, &anne, "member", &obj("team:1")), Err(EvalError::UnknownType("team".into())));
        assert_eq!(check(&model, &chain, &anne, "owner", &obj("group:1")).unwrap_err().code(), 2022);
        assert_eq!(check(&model, &chain, &Subject::parse("team:x").unwrap(), "member", &obj("group:1")).unwrap_err().code(), 2000);
        // A tuple with a condition never holds (conditions are not evaluated yet).
        let conditional = TupleList(vec![Tuple { object: obj("group:0"), relation: "member".into(), subject: anne.clone(), condition: Some("c".into()) }]);
        assert_eq!(check(&model, &conditional, &anne, "member", &obj("group:0")), Ok(false));
    }

    /// Tuples read, and steps taken, counted.
    struct Counting<'a>(&'a TupleList, std::cell::Cell<usize>, std::cell::Cell<usize>);

    impl TupleSource for Counting<'_> {
        fn tuples(&self, object: &Object, relation: &str) -> Vec<Tuple> {
            self.1.set(self.1.get() + 1);
            self.0.tuples(object, relation)
        }

        fn objects(&self, subject: &Subject, type_name: &str, relation: &str) -> Vec<Rc<str>> {
            self.0.objects(subject, type_name, relation)
        }

        fn step(&self) {
            self.2.set(self.2.get() + 1);
        }
    }

    #[test]
    fn a_walk_through_a_deep_chain_reads_each_member_once() {
        // group:k has group:(k + 1)#member as a member; anne is in group:300. Walking up the
        // chain takes 300 rounds; each round once read the whole set found so far (45,000
        // steps), now only its new members.
        let model = crate::core::fga::dsl::parse("model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user, group#member]").unwrap();
        let anne = Subject::parse("user:anne").unwrap();
        let mut chain: Vec<Tuple> = (0..300)
            .map(|k| Tuple { object: obj(&format!("group:{k}")), relation: "member".into(), subject: Subject::parse(&format!("group:{}#member", k + 1)).unwrap(), condition: None })
            .collect();
        chain.push(Tuple { object: obj("group:300"), relation: "member".into(), subject: anne.clone(), condition: None });
        let tuples = TupleList(chain);
        let counting = Counting(&tuples, std::cell::Cell::new(0), std::cell::Cell::new(0));
        let (found, _) = Candidates::new(&model, &counting, &anne).of("group", "member");
        assert_eq!(found.len(), 301);
        assert!(counting.2.get() < 2_000, "{} steps", counting.2.get());
    }

    #[test]
    fn a_relation_reached_by_many_ways_is_evaluated_once() {
        // r40 reaches r0 by 2^40 ways.
        let mut dsl = String::from("model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define r0: [user]\n");
        for k in 1..=40 {
            dsl.push_str(&format!("    define r{k}: r{} or r{}\n", k - 1, k - 1));
        }
        let model = crate::core::fga::dsl::parse(&dsl).unwrap();
        let tuples = TupleList(vec![Tuple { object: obj("doc:1"), relation: "r0".into(), subject: Subject::parse("user:b").unwrap(), condition: None }]);
        let counting = Counting(&tuples, std::cell::Cell::new(0), std::cell::Cell::new(0));
        assert_eq!(check(&model, &counting, &Subject::parse("user:a").unwrap(), "r20", &obj("doc:1")), Ok(false));
        assert!(counting.1.get() <= 2, "{} reads", counting.1.get());
        assert_eq!(check(&model, &counting, &Subject::parse("user:b").unwrap(), "r20", &obj("doc:1")), Ok(true));
    }
}
