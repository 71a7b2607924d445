//! Relationships in SQL (DESIGN.md section 6; docs/guide.md, Relationships): models and
//! tuples in `authz.relation_models` / `authz.relation_tuples` (sql/relationships.sql),
//! evaluated by `core::fga` over direct index reads of the tuples under one latest
//! snapshot (latest.rs), so a query sees every change committed before its statement
//! began, in every isolation level. Writes are checked here against the current model and
//! written and audited by `authz.model_write` / `authz.tuples_change`.

use super::admin::call;
use super::clock;
use super::latest::{self, value, IndexKey, Statement};
use super::owner::as_owner;
use super::report::{raise, OrRaise};
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
use std::cell::RefCell;
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

static LATEST_MODEL: Statement = Statement {
    sql: c"SELECT id, dsl FROM authz.relation_models ORDER BY id DESC LIMIT 1",
    arg_types: &[],
};

static MODEL_BY_ID: Statement = Statement {
    sql: c"SELECT id, dsl FROM authz.relation_models WHERE id OPERATOR(pg_catalog.=) $1",
    arg_types: &[pg_sys::INT8OID],
};

thread_local! {
    /// Parsed models by id, with their text (a restore or a re-created extension may give
    /// an id another text). A handful: queries name the current model, rarely an old one.
    static PARSED: RefCell<HashMap<i64, (String, Rc<Model>)>> = RefCell::new(HashMap::new());
}

/// The model `model_id` names, else the current one (the latest written).
fn model(model_id: Option<&str>) -> Rc<Model> {
    let found = match model_id {
        None => as_owner(|| latest::query(&LATEST_MODEL, &[], |row| (row.get::<i64>(1), row.get::<String>(2)))),
        Some(text) => {
            let id = text.parse::<i64>().ok().filter(|id| *id > 0);
            let rows = id.map_or_else(Vec::new, |id| {
                as_owner(|| latest::query(&MODEL_BY_ID, &[id.into_datum()], |row| (row.get::<i64>(1), row.get::<String>(2))))
            });
            if rows.is_empty() {
                raise(Error::invalid_with_hint(
                    format!("model id \"{}\" does not exist", shorten(text)),
                    "SELECT id FROM authz.relation_models lists the models; NULL means the latest.",
                ));
            }
            rows
        }
    };
    let Some((Some(id), Some(text))) = found.into_iter().next() else {
        raise(Error::invalid_with_hint("no relationship model has been written", "authz_model_write(dsl) stores one."));
    };
    if let Some(model) = PARSED.with_borrow(|p| p.get(&id).filter(|(t, _)| *t == text).map(|(_, m)| m.clone())) {
        return model;
    }
    // Written through authz_model_write, so valid, unless the table was changed by hand.
    let model = Rc::new(parsed(&text).map_err(|why| Error::invalid(format!("stored model {id} is invalid: {why}"))).or_raise());
    PARSED.with_borrow_mut(|p| {
        if p.len() >= 8 {
            p.clear();
        }
        p.insert(id, (text, model.clone()));
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
        let model = model(None);
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
    let deletes: Vec<Value> = deletes.iter().map(|t| Value::Object(row(t))).collect();
    let args = vec![JsonB(Value::Array(rows)).into(), JsonB(Value::Array(deletes)).into()];
    call::<i64>("tuples_change", args, None).expect("tuples_change returns a count")
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
fn authz_tuple_write(
    object: Option<&str>,
    relation: Option<&str>,
    subject: Option<&str>,
    condition: Option<&str>,
    context: Option<JsonB>,
    expires_at: Option<TimestampWithTimeZone>,
) -> bool {
    let mut tuple = tuple_arg(object, relation, subject);
    if let Some(name) = condition {
        if !dsl::is_identifier(name) {
            raise(invalid(format!("invalid condition name \"{}\"", shorten(name)), VALIDATION_ERROR));
        }
        tuple.condition = Some(name.to_string());
    }
    let context = match context.map(|c| c.0) {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => raise(invalid("context must be a JSON object".into(), VALIDATION_ERROR)),
    };
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
fn authz_tuple_write_bulk(writes: Option<JsonB>, deletes: Option<JsonB>) -> i64 {
    let list = |arg: Option<JsonB>, what: &str, shape: Shape| match arg {
        None => Vec::new(),
        Some(JsonB(v)) => tuples_from_json(&v, what, shape).map_err(|why| invalid(why, VALIDATION_ERROR)).or_raise(),
    };
    let writes = list(writes, "writes", Shape::Write);
    let deletes: Vec<Tuple> = list(deletes, "deletes", Shape::Delete).into_iter().map(|d| d.tuple).collect();
    change(&writes, &deletes, None, |write, i| format!("{} element {}", if write { "writes" } else { "deletes" }, i + 1))
}

// Queries ------------------------------------------------------------------------------------

/// The stored tuples, read by index under one latest snapshot; expired ones left out.
/// Each (object, relation) is read once per query.
struct Stored {
    reader: latest::Reader,
    now: i64,
    read: RefCell<HashMap<(Object, String), Vec<Tuple>>>,
}

fn text_key(s: &str) -> IndexKey {
    IndexKey { equality: pg_sys::F_TEXTEQ, value: s.into_datum().expect("a text datum") }
}

impl Stored {
    fn new() -> Self {
        Stored { reader: latest::Reader::new(), now: clock::now(), read: RefCell::default() }
    }

    /// The unexpired tuples on `object` for `relation` whose subject columns begin with
    /// `subject` (type, id, relation: the primary key's order).
    fn read_tuples(&self, object: &Object, relation: &str, subject: &[&str], limit: Option<usize>) -> Vec<Tuple> {
        let mut keys = vec![text_key(&object.type_name), text_key(&object.id), text_key(relation)];
        keys.extend(subject.iter().map(|s| text_key(s)));
        let columns = [c"subject_type", c"subject_id", c"subject_relation", c"condition", c"expires_at"];
        let rows = self.reader.lookup((c"relation_tuples", c"relation_tuples_pkey"), &keys, &columns, limit, |v| {
            let expired = value::<TimestampWithTimeZone>(v[4]).is_some_and(|t| i64::from(t) <= self.now);
            let (subject_type, subject_id, subject_relation) =
                (value::<String>(v[0]).unwrap_or_default(), value::<String>(v[1]).unwrap_or_default(), value::<String>(v[2]).unwrap_or_default());
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

    fn objects(&self, subject: &Subject, type_name: &str, relation: &str) -> Vec<String> {
        let (subject_type, subject_id, subject_relation) = subject_columns(subject);
        let keys = [text_key(subject_type), text_key(subject_id), text_key(subject_relation), text_key(type_name), text_key(relation)];
        let found = self.reader.lookup((c"relation_tuples", c"relation_tuples_subject"), &keys, &[c"object_id"], None, |v| value::<String>(v[0]));
        found.into_iter().flatten().collect()
    }

    fn ids_of_type(&self, type_name: &str) -> BTreeSet<String> {
        let key = [text_key(type_name)];
        let mut ids: BTreeSet<String> = self
            .reader
            .lookup((c"relation_tuples", c"relation_tuples_pkey"), &key, &[c"object_id"], None, |v| value::<String>(v[0]))
            .into_iter()
            .flatten()
            .collect();
        let subjects = self.reader.lookup((c"relation_tuples", c"relation_tuples_subject"), &key, &[c"subject_id"], None, |v| value::<String>(v[0]));
        ids.extend(subjects.into_iter().flatten().filter(|id| id != "*"));
        ids
    }
}

/// What every query takes besides its request: its model and its contextual tuples
/// (checked as writes are). `context` is accepted for conditions, which are not evaluated
/// yet (a tuple with a condition never holds).
fn query_model_and_tuples(contextual_tuples: Option<JsonB>, context: Option<JsonB>, model_id: Option<&str>) -> (Rc<Model>, TupleList) {
    if !matches!(context.as_ref().map(|c| &c.0), None | Some(Value::Null) | Some(Value::Object(_))) {
        raise(invalid("context must be a JSON object".into(), VALIDATION_ERROR));
    }
    let model = model(model_id);
    let inputs = match contextual_tuples {
        None => Vec::new(),
        Some(JsonB(v)) => tuples_from_json(&v, "contextual_tuples", Shape::Contextual).map_err(|why| invalid(why, VALIDATION_ERROR)).or_raise(),
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

#[pg_extern(sql = false)]
fn authz_relation_check(
    subject: Option<&str>,
    relation: Option<&str>,
    object: Option<&str>,
    contextual_tuples: Option<JsonB>,
    context: Option<JsonB>,
    model_id: Option<&str>,
) -> bool {
    // A relation to or of nothing holds for no one (as authz_check's NULL user).
    let (Some(subject), Some(relation), Some(object)) = (subject, relation, object) else {
        return false;
    };
    let subject = parsed_arg("subject", subject, Subject::parse);
    let object = parsed_arg("object", object, Object::parse);
    let (model, contextual) = query_model_and_tuples(contextual_tuples, context, model_id);
    let stored = Stored::new();
    eval::check(&model, &Both(&stored, &contextual), &subject, relation, &object).map_err(Error::from).or_raise()
}

#[pg_extern(sql = false)]
fn authz_list_objects(
    subject: Option<&str>,
    type_name: Option<&str>,
    relation: Option<&str>,
    contextual_tuples: Option<JsonB>,
    context: Option<JsonB>,
    model_id: Option<&str>,
) -> SetOfIterator<'static, String> {
    let (Some(subject), Some(type_name), Some(relation)) = (subject, type_name, relation) else {
        return SetOfIterator::new(Vec::new());
    };
    let subject = parsed_arg("subject", subject, Subject::parse);
    let (model, contextual) = query_model_and_tuples(contextual_tuples, context, model_id);
    let stored = Stored::new();
    let found = eval::list_objects(&model, &Both(&stored, &contextual), &subject, type_name, relation).map_err(Error::from).or_raise();
    SetOfIterator::new(found)
}

#[pg_extern(sql = false)]
fn authz_list_users(
    object: Option<&str>,
    relation: Option<&str>,
    filters: Option<Vec<Option<String>>>,
    contextual_tuples: Option<JsonB>,
    context: Option<JsonB>,
    model_id: Option<&str>,
) -> SetOfIterator<'static, String> {
    let (Some(object), Some(relation)) = (object, relation) else {
        return SetOfIterator::new(Vec::new());
    };
    let filters: Vec<String> = filters.unwrap_or_default().into_iter().flatten().collect();
    if filters.is_empty() {
        raise(invalid("filters must name at least one type (e.g. '{user}') or userset (e.g. '{group#member}')".into(), VALIDATION_ERROR));
    }
    let object = parsed_arg("object", object, Object::parse);
    let (model, contextual) = query_model_and_tuples(contextual_tuples, context, model_id);
    let stored = Stored::new();
    let tuples = Both(&stored, &contextual);
    let mut found = BTreeSet::new();
    for filter in &filters {
        found.extend(eval::list_users(&model, &tuples, &object, relation, filter).map_err(Error::from).or_raise());
    }
    SetOfIterator::new(found)
}
