//! Relationships in SQL (DESIGN.md section 6; docs/guide.md, Relationships): models and
//! tuples in `authz.relation_models` / `authz.relation_tuples` (sql/relationships.sql),
//! evaluated by `core::fga` over direct index reads of the tuples under one latest
//! snapshot (latest.rs), so a query sees every change committed before its statement
//! began, in every isolation level. Writes are checked here against the current model and
//! written and audited by `authz.model_write` / `authz.tuples_change`.

use super::admin::call;
use super::args::Args;
use super::cache::{relation_answer, Answer, Remembered};
use super::clock;
use super::latest::{self, text, text_is, value, IndexKey};
use super::report::{raise, OrRaise};
use super::srf::{self, Rows};
use crate::core::error::Error;
use crate::core::fga::eval::{self, Both, TupleList, TupleSource};
use crate::core::fga::model::Model;
use crate::core::fga::request::{tuples_from_json, Shape, TupleInput};
use crate::core::fga::tuple::{Object, Subject, Tuple};
use crate::core::fga::{dsl, validate};
use crate::core::permission::shorten;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

/// OpenFGA's default limit on a model's size.
const MAX_MODEL_BYTES: usize = 256 * 1024;
/// OpenFGA's limit on the contextual tuples of one query.
const MAX_CONTEXTUAL_TUPLES: usize = 100;

/// OpenFGA's codes, carried in our messages: a malformed request, a tuple the model does
/// not allow.
const VALIDATION_ERROR: u32 = 2000;
const INVALID_TUPLE: u32 = 2027;

fn invalid(message: String, code: u32) -> Error {
    Error::invalid(format!("{message} (OpenFGA error {code})"))
}

// Models ----------------------------------------------------------------------------------

thread_local! {
    /// Parsed models by id and the version of their row, the transaction and command that
    /// inserted it (xmin, cmin): a restore, a re-created extension or a hand-made change may
    /// give an id another text, never in the same row version. A handful: queries name the
    /// current model, rarely an old one.
    static PARSED: RefCell<HashMap<(i64, u32, u32), Rc<Model>>> = RefCell::new(HashMap::new());
}

const MODELS: (&CStr, &CStr) = (c"relation_models", c"relation_models_pkey");

/// The model `model_id` names, else the current one (the latest written), read by `reader`:
/// its id and row version, and its text only when this backend has not parsed it yet.
fn model(reader: &latest::Reader, model_id: Option<&str>) -> Rc<Model> {
    let columns = [c"id", c"xmin", c"cmin"];
    let row = |v: &[Option<pg_sys::Datum>]| (value::<i64>(v[0]), v[1].zip(v[2]).map(|(x, c)| (x.value() as u32, c.value() as u32)));
    let key = |id: i64| IndexKey::equal(pg_sys::F_INT8EQ, id.into_datum().expect("an int8 datum"));
    let found = match model_id {
        None => reader.last(MODELS, &columns, row),
        Some(text) => {
            // Only the id as authz_model_write returned it ('+1' and '01' name nothing).
            let id = text.parse::<i64>().ok().filter(|id| *id > 0 && id.to_string() == text);
            let found = id.and_then(|id| reader.lookup(MODELS, &[key(id)], &columns, Some(1), row).pop());
            if found.is_none() {
                raise(Error::invalid_with_hint(
                    format!("model id \"{}\" does not exist", shorten(text)),
                    "SELECT id FROM authz.relation_models lists the models; NULL means the latest.",
                ));
            }
            found
        }
    };
    let Some((Some(id), Some(version))) = found else {
        raise(Error::invalid_with_hint("no relationship model has been written", "authz_model_write(dsl) stores one."));
    };
    let row_version = (id, version.0, version.1);
    if let Some(model) = PARSED.with_borrow(|p| p.get(&row_version).cloned()) {
        return model;
    }
    let dsl = reader.lookup(MODELS, &[key(id)], &[c"dsl"], Some(1), |v| value::<String>(v[0])).pop().flatten();
    let text = dsl.expect("the model row just read");
    // Written through authz_model_write, so valid, unless the table was changed by hand.
    let model = Rc::new(parsed(&text).map_err(|why| Error::invalid(format!("stored model {id} is invalid: {why}"))).or_raise());
    PARSED.with_borrow_mut(|p| {
        if p.len() >= 8 {
            p.clear();
        }
        p.insert(row_version, model.clone());
    });
    model
}

fn parsed(text: &str) -> Result<Model, String> {
    let model = dsl::parse(text).map_err(|e| e.to_string())?;
    validate::validate(&model).map_err(|e| e.to_string())?;
    Ok(model)
}

#[pg_extern(sql = false)]
fn authz_model_write(dsl: Option<&str>) -> String {
    let dsl = super::admin::required("dsl", dsl);
    if dsl.len() > MAX_MODEL_BYTES {
        raise(Error::invalid(format!("the model has {} bytes; the limit is {MAX_MODEL_BYTES} (OpenFGA's)", dsl.len())));
    }
    parsed(dsl).map_err(|why| Error::invalid_with_hint(format!("invalid model: {why}"), "Models are OpenFGA DSL, schema 1.1.")).or_raise();
    call::<i64>("model_write", vec![dsl.into()], None).expect("model_write returns the id").to_string()
}

// Tuples -------------------------------------------------------------------------------------

/// A subject as the table's columns: subject_type, subject_id ('*': every one of the
/// type), subject_relation ('': none).
fn subject_columns(subject: &Subject) -> (&str, &str, &str) {
    match subject {
        Subject::Object(o) => (&o.type_name, &o.id, ""),
        Subject::Wildcard(t) => (t, "*", ""),
        Subject::Userset(o, r) => (&o.type_name, &o.id, r),
    }
}

/// A tuple's row in `authz.relation_tuples`, as `authz.tuples_change` reads it.
fn row(tuple: &Tuple) -> serde_json::Map<String, Value> {
    let (subject_type, subject_id, subject_relation) = subject_columns(&tuple.subject);
    let row = json!({
        "object_type": tuple.object.type_name, "object_id": tuple.object.id, "relation": tuple.relation,
        "subject_type": subject_type, "subject_id": subject_id, "subject_relation": subject_relation,
    });
    match row {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// Writes and deletes, all or nothing: each write allowed by the current model, no tuple
/// twice. `expires_at_us`: the expiry of every write, as PostgreSQL's microseconds (where
/// it is a timestamptz, not text). How many tuples were added or removed.
fn change(writes: &[TupleInput], deletes: &[Tuple], expires_at_us: Option<i64>, what: impl Fn(bool, usize) -> String) -> i64 {
    let mut seen = HashSet::new();
    let all = writes.iter().map(|w| &w.tuple).enumerate().map(|(i, t)| (true, i, t));
    for (write, i, tuple) in all.chain(deletes.iter().enumerate().map(|(i, t)| (false, i, t))) {
        if !seen.insert((&tuple.object, &tuple.relation, &tuple.subject)) {
            raise(invalid(format!("{}: {} appears twice", what(write, i), tuple_text(tuple)), VALIDATION_ERROR));
        }
    }
    let mut rows = Vec::with_capacity(writes.len());
    if !writes.is_empty() {
        let model = model(&latest::Reader::new(), None);
        for (i, w) in writes.iter().enumerate() {
            eval::tuple_allowed(&model, &w.tuple).map_err(|why| invalid(format!("{}: {why}", what(true, i)), INVALID_TUPLE)).or_raise();
            let mut r = row(&w.tuple);
            r.insert("n".into(), json!(i + 1));
            r.insert("condition".into(), json!(w.tuple.condition));
            r.insert("context".into(), w.context.clone().map_or(Value::Null, Value::Object));
            r.insert("expires_at".into(), json!(w.expires_at));
            r.insert("expires_at_us".into(), json!(expires_at_us));
            rows.push(Value::Object(r));
        }
    }
    lock_tuples(writes.iter().map(|w| &w.tuple).chain(deletes));
    let deletes: Vec<Value> = deletes.iter().map(|t| Value::Object(row(t))).collect();
    let args = vec![JsonB(Value::Array(rows)).into(), JsonB(Value::Array(deletes)).into()];
    call::<i64>("tuples_change", args, None).expect("tuples_change returns a count")
}

// Writers' locks ---------------------------------------------------------------------------

/// Tuples a transaction locks one by one; past them it locks the table (below).
const MAX_TUPLE_LOCKS: usize = 64;

thread_local! {
    /// The tuple locks this transaction took (reset at its end: `register`).
    static TUPLE_LOCKS: Cell<usize> = const { Cell::new(0) };
}

/// Registers the transaction callback that resets the count of tuple locks; at library load.
pub fn register() {
    // SAFETY: a plain registration of a function that lives as long as the library.
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_event), std::ptr::null_mut()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_event(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE) {
        TUPLE_LOCKS.set(0);
    }
}

/// Makes the writers of any of `tuples` wait for this transaction, and this call for
/// theirs, before the rows a change replaces are read (so the audit's old values are
/// exact), while writers of other tuples go on. Each tuple is an advisory lock keyed by a
/// hash of its columns, taken in key order, so that two calls never wait for each other in
/// a circle; first comes the table in ROW EXCLUSIVE mode, so that no tuple is held while
/// waiting for a writer that locked the whole table. A call that would take this
/// transaction past MAX_TUPLE_LOCKS (a bulk import, a loop of writes) locks the table in
/// SHARE ROW EXCLUSIVE mode instead, to the end of the transaction: the lock table is
/// shared and bounded. Transactions that each write in one call never deadlock; one that
/// writes in several calls can (40P01), with another writer of the same tuples.
fn lock_tuples<'a>(tuples: impl Iterator<Item = &'a Tuple>) {
    let table = latest::table_oid(c"relation_tuples");
    let whole = pg_sys::ShareRowExclusiveLock as i32;
    // SAFETY: lock-manager calls inside a transaction; the locks are the transaction's.
    unsafe {
        if pg_sys::CheckRelationOidLockedByMe(table, whole, true) {
            return;
        }
        let mut keys: Vec<i64> = tuples.map(tuple_lock_key).collect();
        keys.sort_unstable();
        keys.dedup();
        let held = TUPLE_LOCKS.get();
        if held + keys.len() > MAX_TUPLE_LOCKS {
            pg_sys::LockRelationOid(table, whole);
            return;
        }
        pg_sys::LockRelationOid(table, pg_sys::RowExclusiveLock as i32);
        for key in &keys {
            let tag = pg_sys::LOCKTAG {
                locktag_field1: pg_sys::MyDatabaseId.to_u32(),
                locktag_field2: (*key as u64 >> 32) as u32,
                locktag_field3: *key as u32,
                // pg_advisory_xact_lock uses 1 and 2 here, so ours never collides with an
                // application's (pg_locks shows them as advisory locks with objsubid 29813).
                locktag_field4: 0x7475, // "tu"
                locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
                locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
            };
            pg_sys::LockAcquire(&tag, pg_sys::ExclusiveLock as i32, false, false);
        }
        TUPLE_LOCKS.set(held + keys.len());
    }
}

/// A tuple's lock key: PostgreSQL's 64-bit text hash (the one hash indexes store, so every
/// backend of any build computes the same) of its six key columns.
fn tuple_lock_key(tuple: &Tuple) -> i64 {
    let (subject_type, subject_id, subject_relation) = subject_columns(&tuple.subject);
    // Texts hold no NUL: joined by one, the columns cannot run into each other.
    let text = [tuple.object.type_name.as_str(), &tuple.object.id, &tuple.relation, subject_type, subject_id, subject_relation].join("\0");
    hash_text(&text)
}

fn tuple_text(tuple: &Tuple) -> String {
    shorten(&tuple.to_string())
}

/// The tuple of the three text arguments, or 22023 (OpenFGA 2000).
fn tuple_arg(object: Option<&str>, relation: Option<&str>, subject: Option<&str>) -> Tuple {
    let object = super::admin::required("object", object);
    let relation = super::admin::required("relation", relation);
    let subject = super::admin::required("subject", subject);
    let value = json!({"object": object, "relation": relation, "user": subject});
    tuples_from_json(&Value::Array(vec![value]), "tuple", Shape::Delete)
        .map_err(|why| invalid(why.replacen("tuple element 1: ", "", 1), VALIDATION_ERROR))
        .or_raise()
        .remove(0)
        .tuple
}

#[pg_extern(sql = false)]
fn authz_tuple_write(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    let mut tuple = tuple_arg(args.get(0), args.get(1), args.get(2));
    if let Some(name) = args.get::<&str>(3) {
        if !dsl::is_identifier(name) {
            raise(invalid(format!("invalid condition name \"{}\"", shorten(name)), VALIDATION_ERROR));
        }
        tuple.condition = Some(name.to_string());
    }
    let context = context_arg(&args, 4);
    let expires_at: Option<TimestampWithTimeZone> = args.get(5);
    let name = format!("tuple {}", tuple_text(&tuple));
    let write = TupleInput { tuple, context, expires_at: None };
    change(&[write], &[], expires_at.map(i64::from), |_, _| name.clone()) == 1
}

#[pg_extern(sql = false)]
fn authz_tuple_delete(object: Option<&str>, relation: Option<&str>, subject: Option<&str>) -> bool {
    let tuple = tuple_arg(object, relation, subject);
    change(&[], &[tuple], None, |_, _| String::new()) == 1
}

#[pg_extern(sql = false)]
fn authz_tuple_write_bulk(fcinfo: pg_sys::FunctionCallInfo) -> i64 {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    let list = |n: usize, what: &str, shape: Shape| match json_arg(&args, n, what) {
        None => Vec::new(),
        Some(v) => tuples_from_json(&v, what, shape).map_err(|why| invalid(why, VALIDATION_ERROR)).or_raise(),
    };
    let writes = list(0, "writes", Shape::Write);
    let deletes: Vec<Tuple> = list(1, "deletes", Shape::Delete).into_iter().map(|d| d.tuple).collect();
    change(&writes, &deletes, None, |write, i| format!("{} element {}", if write { "writes" } else { "deletes" }, i + 1))
}

/// Argument `n`, a jsonb, as JSON (None for NULL). Read here, not by pgrx's `JsonB`, which
/// raises an internal error (XX000) for valid jsonb that serde_json refuses: nesting deeper
/// than 128 levels, numbers beyond a double.
fn json_arg(args: &Args, n: usize, what: &str) -> Option<Value> {
    let datum = args.datum(n)?;
    // SAFETY: argument n is declared jsonb; jsonb_out returns a C string in the current
    // memory context.
    let text = unsafe {
        let detoasted = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        pgrx::direct_function_call::<&CStr>(pg_sys::jsonb_out, &[Some(detoasted.into())])
    };
    let text = text.and_then(|t| t.to_str().ok()).unwrap_or_default();
    let value = serde_json::from_str(text)
        .map_err(|e| invalid(format!("{what} cannot be read ({e}): nested deeper than 128 levels, or a number beyond a double"), VALIDATION_ERROR))
        .or_raise();
    Some(value)
}

/// The `context` argument: a JSON object or NULL.
fn context_arg(args: &Args, n: usize) -> Option<serde_json::Map<String, Value>> {
    match json_arg(args, n, "context") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => raise(invalid("context must be a JSON object".into(), VALIDATION_ERROR)),
    }
}

// Queries ------------------------------------------------------------------------------------

/// The stored tuples, read by index under one latest snapshot; expired ones left out.
/// Each (object, relation) is read once per query; index scans stay open for the query.
struct Stored {
    /// (Each holds the reader too, whose snapshot it reads under.)
    scans: RefCell<HashMap<(usize, usize, usize), latest::OpenScan>>,
    reader: Rc<latest::Reader>,
    now: i64,
    /// The earliest `expires_at` after `now` among the tuples read: what was read stops
    /// being the state then.
    next_expiry: Cell<Option<i64>>,
    read: RefCell<HashMap<(Object, String), Vec<Tuple>>>,
}

const TUPLES: (&CStr, &CStr) = (c"relation_tuples", c"relation_tuples_pkey");
const TUPLES_BY_SUBJECT: (&CStr, &CStr) = (c"relation_tuples", c"relation_tuples_subject");

impl Stored {
    fn new() -> Self {
        let reader = Rc::new(latest::Reader::new());
        Stored { scans: RefCell::default(), reader, now: clock::now(), next_expiry: Cell::new(None), read: RefCell::default() }
    }

    /// Whether a tuple's `expires_at` (None: no expiry) has passed.
    fn expired(&self, expires_at: Option<pg_sys::Datum>) -> bool {
        let Some(at) = value::<TimestampWithTimeZone>(expires_at).map(i64::from) else {
            return false;
        };
        if at > self.now && self.next_expiry.get().is_none_or(|next| at < next) {
            self.next_expiry.set(Some(at));
        }
        at <= self.now
    }

    /// `Reader::lookup` through a scan of this query, opened at its first use.
    fn lookup<R>(
        &self,
        relations: (&'static CStr, &'static CStr),
        keys: &[IndexKey],
        columns: &'static [&'static CStr],
        limit: Option<usize>,
        read: impl FnMut(&[Option<pg_sys::Datum>]) -> R,
    ) -> Vec<R> {
        let id = (relations.1.as_ptr() as usize, keys.len(), columns.as_ptr() as usize);
        let mut scans = self.scans.borrow_mut();
        let scan = scans.entry(id).or_insert_with(|| self.reader.open(relations, keys.len(), columns));
        scan.lookup(keys, limit, read)
    }

    /// The unexpired tuples on `object` for `relation` whose subject columns begin with
    /// `subject` (type, id, relation: the primary key's order). One scan of the primary key
    /// serves every such lookup: the columns not given take any value.
    fn read_tuples(&self, object: &Object, relation: &str, subject: &[&str], limit: Option<usize>) -> Vec<Tuple> {
        let object_keys = [object.type_name.as_str(), &object.id, relation];
        let given = object_keys.iter().chain(subject).map(|s| IndexKey::text(s));
        let keys: Vec<IndexKey> = given.chain(std::iter::repeat_n(IndexKey::any_text(), 3 - subject.len())).collect();
        const COLUMNS: &[&CStr] = &[c"subject_type", c"subject_id", c"subject_relation", c"condition", c"expires_at"];
        let rows = self.lookup(TUPLES, &keys, COLUMNS, limit, |v| {
            let expired = self.expired(v[4]);
            let (subject_type, subject_id, subject_relation) =
                (text(v[0]).unwrap_or_default().to_string(), text(v[1]).unwrap_or_default().to_string(), text(v[2]).unwrap_or_default().to_string());
            let subject = match (subject_id.as_str(), subject_relation.is_empty()) {
                ("*", true) => Subject::Wildcard(subject_type),
                (_, true) => Subject::Object(Object { type_name: subject_type, id: subject_id }),
                (_, false) => Subject::Userset(Object { type_name: subject_type, id: subject_id }, subject_relation),
            };
            (!expired).then(|| Tuple { object: object.clone(), relation: relation.to_string(), subject, condition: value(v[3]) })
        });
        rows.into_iter().flatten().collect()
    }
}

impl TupleSource for Stored {
    fn tuples(&self, object: &Object, relation: &str) -> Vec<Tuple> {
        let key = (object.clone(), relation.to_string());
        if let Some(found) = self.read.borrow().get(&key) {
            return found.clone();
        }
        let found = self.read_tuples(object, relation, &[], None);
        self.read.borrow_mut().insert(key, found.clone());
        found
    }

    fn tuple_with_subject(&self, object: &Object, relation: &str, subject: &Subject) -> Option<Tuple> {
        let (subject_type, subject_id, subject_relation) = subject_columns(subject);
        self.read_tuples(object, relation, &[subject_type, subject_id, subject_relation], Some(1)).pop()
    }

    fn tuples_with_subject_type(&self, object: &Object, relation: &str, subject_type: &str) -> Vec<Tuple> {
        self.read_tuples(object, relation, &[subject_type], None)
    }

    fn objects(&self, subject: &Subject, type_name: &str, relation: &str) -> Vec<Rc<str>> {
        let (subject_type, subject_id, subject_relation) = subject_columns(subject);
        let wanted = [subject_type, subject_id, subject_relation, type_name, relation];
        const COLUMNS: &[&CStr] =
            &[c"subject_type", c"subject_id", c"subject_relation", c"object_type", c"relation", c"object_id", c"condition", c"expires_at"];
        let found = self.lookup(TUPLES_BY_SUBJECT, &[subject_key(&wanted)], COLUMNS, None, |v| {
            // The index finds the hash; an entry of another subject or relation (a
            // collision) is passed over here.
            let same = wanted.iter().zip(v).all(|(w, v)| text_is(*v, w));
            let holds = same && v[6].is_none() && !self.expired(v[7]);
            holds.then(|| text(v[5]).map(Rc::from)).flatten()
        });
        found.into_iter().flatten().collect()
    }

    fn step(&self) {
        check_for_interrupts!();
    }
}

/// The key of `relation_tuples_subject` for (subject type, id, relation, object type,
/// relation): the index's expression, computed by the same function.
fn subject_key(parts: &[&str; 5]) -> IndexKey {
    IndexKey::equal(pg_sys::F_INT8EQ, hash_text(&parts.join(" ")).into())
}

/// PostgreSQL's `hashtextextended(text, 0)` of `text`, with the C collation (as the subject
/// index's expression computes it).
fn hash_text(text: &str) -> i64 {
    unsafe extern "C-unwind" {
        // PostgreSQL's own, called through fmgr (pg_sys's binding is a Rust wrapper).
        #[link_name = "hashtextextended"]
        fn hashtextextended(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    }
    // SAFETY: hashtextextended(text, int8) with the columns' collation, as the index calls it.
    let hash = unsafe {
        pg_sys::DirectFunctionCall2Coll(Some(hashtextextended), pg_sys::C_COLLATION_OID, text.into_datum().expect("a text datum"), 0i64.into())
    };
    hash.value() as i64
}

/// What every query takes besides its request (arguments `n`, `n + 1`, `n + 2`): its
/// contextual tuples (checked as writes are), `context`, accepted for conditions, which are
/// not evaluated yet (a tuple with a condition never holds), and its model.
fn query_model_and_tuples(reader: &latest::Reader, args: &Args, n: usize) -> (Rc<Model>, TupleList) {
    context_arg(args, n + 1);
    let model = model(reader, args.get(n + 2));
    let inputs = match json_arg(args, n, "contextual_tuples") {
        None => Vec::new(),
        Some(v) => tuples_from_json(&v, "contextual_tuples", Shape::Contextual).map_err(|why| invalid(why, VALIDATION_ERROR)).or_raise(),
    };
    if inputs.len() > MAX_CONTEXTUAL_TUPLES {
        raise(invalid(format!("{} contextual tuples; the limit is {MAX_CONTEXTUAL_TUPLES}", inputs.len()), VALIDATION_ERROR));
    }
    let mut tuples = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        eval::tuple_allowed(&model, &input.tuple)
            .map_err(|why| invalid(format!("contextual_tuples element {}: {why}", i + 1), INVALID_TUPLE))
            .or_raise();
        tuples.push(input.tuple);
    }
    (model, TupleList(tuples))
}

fn parsed_arg<T>(what: &str, text: &str, parse: impl Fn(&str) -> Result<T, String>) -> T {
    parse(text).map_err(|why| invalid(format!("{what}: {why}"), VALIDATION_ERROR)).or_raise()
}

/// The answer of a query (`kind` and its arguments `parts`; the query options from argument
/// `n` on, as query_model_and_tuples reads them), as `evaluate` gives it (with the stored
/// tuples it reads), or as the cache remembers it (cache/relations.rs). Queries with
/// contextual tuples or a context are not remembered.
fn answer(kind: &str, parts: &[&str], args: &Args, n: usize, evaluate: impl FnOnce(&Stored) -> Answer) -> Answer {
    let load = || {
        let stored = Stored::new();
        let answer = evaluate(&stored);
        Remembered { answer, until: stored.next_expiry.get() }
    };
    if args.datum(n).is_some() || args.datum(n + 1).is_some() {
        return load().answer;
    }
    // Texts hold no NUL, so the parts joined by one name the query.
    let model = args.get::<&str>(n + 2).map_or(String::new(), |id| format!("model {id}"));
    let query = [kind].iter().chain(parts).chain([&model.as_str()]).copied().collect::<Vec<_>>().join("\0");
    relation_answer(query, load)
}

#[pg_extern(sql = false)]
fn authz_relation_check(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    // A relation to or of nothing holds for no one (as authz_check's NULL user).
    let (Some(subject), Some(relation), Some(object)) = (args.get::<&str>(0), args.get::<&str>(1), args.get::<&str>(2)) else {
        return false;
    };
    let answer = answer("check", &[subject, relation, object], &args, 3, |stored| {
        let subject = parsed_arg("subject", subject, Subject::parse);
        let object = parsed_arg("object", object, Object::parse);
        let (model, contextual) = query_model_and_tuples(&stored.reader, &args, 3);
        let holds = eval::check(&model, &Both(stored, &contextual), &subject, relation, &object).map_err(Error::from).or_raise();
        Answer::Holds(holds)
    });
    matches!(answer, Answer::Holds(true))
}

/// Hands `rows` to the executor as the call's whole result (`SETOF text`, see srf.rs);
/// each row's text is the concatenation of its parts.
fn return_rows<'a>(fcinfo: pg_sys::FunctionCallInfo, rows: impl IntoIterator<Item = [&'a str; 2]>) {
    let mut result = Rows::begin(fcinfo, |_| srf::one_text_column());
    // Each row's text is built in one buffer (u32s: a varlena's header is aligned), which
    // the tuplestore copies.
    let mut text: Vec<u32> = Vec::new();
    for parts in rows {
        let len = pg_sys::VARHDRSZ + parts.iter().map(|p| p.len()).sum::<usize>();
        text.resize(len.div_ceil(4), 0);
        let bytes = text.as_mut_ptr().cast::<u8>();
        // SAFETY: the buffer holds len bytes (resized above).
        unsafe {
            let mut at = pg_sys::VARHDRSZ;
            for part in parts {
                std::ptr::copy_nonoverlapping(part.as_ptr(), bytes.add(at), part.len());
                at += part.len();
            }
            pgrx::set_varsize_4b(bytes.cast(), len as i32);
        }
        result.put(&mut [pg_sys::Datum::from(bytes)], &mut [false]);
    }
}

/// The rows of a list answer.
fn listed(answer: &Answer) -> &[Rc<str>] {
    match answer {
        Answer::Listed(items) => items,
        Answer::Holds(_) => unreachable!("a list query's answer is a list"),
    }
}

#[pg_extern(sql = false)]
fn authz_list_objects(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    let (Some(subject), Some(type_name), Some(relation)) = (args.get::<&str>(0), args.get::<&str>(1), args.get::<&str>(2)) else {
        return return_rows(fcinfo, []);
    };
    let answer = answer("objects", &[subject, type_name, relation], &args, 3, |stored| {
        let subject = parsed_arg("subject", subject, Subject::parse);
        let (model, contextual) = query_model_and_tuples(&stored.reader, &args, 3);
        let ids = eval::list_object_ids(&model, &Both(stored, &contextual), &subject, type_name, relation).map_err(Error::from).or_raise();
        Answer::Listed(ids.into_iter().collect())
    });
    let prefix = format!("{type_name}:");
    return_rows(fcinfo, listed(&answer).iter().map(|id| [prefix.as_str(), &**id]));
}

#[pg_extern(sql = false)]
fn authz_list_users(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: pgrx passes the call's own fcinfo.
    let args = unsafe { Args::new(fcinfo) };
    let (Some(object), Some(relation)) = (args.get::<&str>(0), args.get::<&str>(1)) else {
        return return_rows(fcinfo, []);
    };
    let filters: Vec<String> = args.get::<Vec<Option<String>>>(2).unwrap_or_default().into_iter().flatten().collect();
    if filters.is_empty() {
        raise(invalid("filters must name at least one type (e.g. '{user}') or userset (e.g. '{group#member}')".into(), VALIDATION_ERROR));
    }
    let parts: Vec<&str> = [object, relation].into_iter().chain(filters.iter().map(String::as_str)).collect();
    let answer = answer("users", &parts, &args, 3, |stored| {
        let object = parsed_arg("object", object, Object::parse);
        let (model, contextual) = query_model_and_tuples(&stored.reader, &args, 3);
        let tuples = Both(stored, &contextual);
        let mut found = BTreeSet::new();
        for filter in &filters {
            found.extend(eval::list_users(&model, &tuples, &object, relation, filter).map_err(Error::from).or_raise());
        }
        Answer::Listed(found.into_iter().map(Rc::from).collect())
    });
    return_rows(fcinfo, listed(&answer).iter().map(|user| ["", &**user]));
}
