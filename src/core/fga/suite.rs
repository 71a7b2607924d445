//! OpenFGA's conformance suites run against the pure evaluator, tuples in memory (tests
//! only; scripts/openfga-conformance.sh runs them through SQL). As OpenFGA's harness does:
//! a fresh store per test; each stage writes its model, then its tuples (which stay for
//! later stages); check, list-objects and list-users assertions, lists compared as sets;
//! each single-stage test a second time with its tuples sent as contextual tuples (up to
//! 100).

use super::eval::{self, Both, EvalError, TupleList, TupleSource};
use super::model::Model;
use super::tuple::{Object, Subject, Tuple};
use super::{dsl, validate};
use serde::Deserialize;
use std::collections::BTreeSet;

#[derive(Deserialize)]
struct Suite {
    tests: Vec<Test>,
}

#[derive(Deserialize)]
struct Test {
    name: String,
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stage {
    model: String,
    #[serde(default)]
    tuples: Option<Vec<YamlTuple>>,
    #[serde(default)]
    check_assertions: Option<Vec<CheckAssertion>>,
    #[serde(default)]
    list_objects_assertions: Option<Vec<ListAssertion<ListObjectsRequest>>>,
    #[serde(default)]
    list_users_assertions: Option<Vec<ListAssertion<ListUsersRequest>>>,
}

#[derive(Deserialize, Clone)]
struct YamlTuple {
    object: String,
    relation: String,
    user: String,
    #[serde(default)]
    condition: Option<YamlCondition>,
}

#[derive(Deserialize, Clone)]
struct YamlCondition {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckAssertion {
    tuple: YamlTuple,
    #[serde(default)]
    expectation: Option<bool>,
    #[serde(default)]
    error_code: Option<u32>,
    #[serde(default)]
    contextual_tuples: Option<Vec<YamlTuple>>,
}

#[derive(Deserialize)]
struct ListObjectsRequest {
    user: String,
    #[serde(rename = "type")]
    type_name: String,
    relation: String,
}

/// A list-objects or list-users assertion: its request, and the list or error expected.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListAssertion<Request> {
    request: Request,
    #[serde(default)]
    expectation: Option<Vec<String>>,
    #[serde(default)]
    error_code: Option<u32>,
    #[serde(default)]
    contextual_tuples: Option<Vec<YamlTuple>>,
}

#[derive(Deserialize)]
struct ListUsersRequest {
    object: String,
    relation: String,
    filters: Vec<String>,
}

/// An answer: a boolean, a set of strings, or an OpenFGA error code.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Bool(bool),
    Set(BTreeSet<String>),
    Error(u32),
}

/// OpenFGA's 2000 (validation error) for a malformed request.
const VALIDATION_ERROR: u32 = 2000;
/// OpenFGA's 2027: a tuple the model does not allow.
const INVALID_TUPLE: u32 = 2027;

fn tuple(y: &YamlTuple) -> Result<Tuple, u32> {
    Ok(Tuple {
        object: Object::parse(&y.object).map_err(|_| VALIDATION_ERROR)?,
        relation: y.relation.clone(),
        subject: Subject::parse(&y.user).map_err(|_| VALIDATION_ERROR)?,
        condition: y.condition.as_ref().map(|c| c.name.clone()),
    })
}

/// Contextual tuples, checked against the model as a write is.
fn contextual(model: &Model, list: &Option<Vec<YamlTuple>>) -> Result<TupleList, u32> {
    let mut out = Vec::new();
    for y in list.iter().flatten() {
        let t = tuple(y)?;
        eval::tuple_allowed(model, &t).map_err(|_| INVALID_TUPLE)?;
        out.push(t);
    }
    Ok(TupleList(out))
}

/// The answer to one assertion: the stored tuples, its contextual tuples (checked as writes
/// are) and `extra` (a stage's tuples, in the contextual run), asked with `ask`.
fn answer(
    model: &Model,
    stored: &TupleList,
    extra: &[Tuple],
    contextual_tuples: &Option<Vec<YamlTuple>>,
    ask: impl FnOnce(&dyn TupleSource) -> Result<Answer, Answer>,
) -> Answer {
    let mut ctx = match contextual(model, contextual_tuples) {
        Ok(ctx) => ctx,
        Err(code) => return Answer::Error(code),
    };
    ctx.0.extend(extra.iter().cloned());
    ask(&Both(stored, &ctx)).unwrap_or_else(|e| e)
}

fn code(e: EvalError) -> Answer {
    Answer::Error(e.code())
}

#[derive(Default)]
pub struct Tally {
    pub passed: [usize; 3],
    pub failed: [usize; 3],
    pub failures: Vec<String>,
}

const KINDS: [&str; 3] = ["check", "list-objects", "list-users"];

impl Tally {
    fn record(&mut self, kind: usize, name: String, got: Answer, want: Answer) {
        if got == want {
            self.passed[kind] += 1;
        } else {
            self.failed[kind] += 1;
            self.failures.push(format!("{} {name}: got {got:?}, expected {want:?}", KINDS[kind]));
        }
    }
}

fn expected(expectation: Option<Vec<String>>, error_code: Option<u32>) -> Answer {
    match error_code {
        Some(c) => Answer::Error(c),
        None => Answer::Set(expectation.unwrap_or_default().into_iter().collect()),
    }
}

/// Runs every test of a suite file's text; `contextual_run` sends a single-stage test's
/// tuples as contextual tuples instead of writing them.
pub fn run(yaml: &str, contextual_run: bool) -> Tally {
    let suite: Suite = serde_yaml::from_str(yaml).expect("a suite in OpenFGA's format");
    let mut tally = Tally::default();
    for test in suite.tests {
        let tuples_in_test: usize = test.stages.iter().map(|s| s.tuples.as_ref().map_or(0, Vec::len)).sum();
        if contextual_run && (test.stages.len() != 1 || tuples_in_test > 100) {
            continue;
        }
        let mut stored = TupleList::default();
        for (n, stage) in test.stages.into_iter().enumerate() {
            let model = dsl::parse(&stage.model).expect("suite models parse");
            validate::validate(&model).expect("suite models are valid");
            let written: Vec<Tuple> = stage.tuples.iter().flatten().map(|y| tuple(y).expect("suite tuples parse")).collect();
            for t in &written {
                eval::tuple_allowed(&model, t).unwrap_or_else(|e| panic!("{}: {e}", test.name));
            }
            let mut extra = Vec::new();
            if contextual_run {
                extra = written;
            } else {
                stored.0.extend(written);
            }
            let name = |i: usize| format!("{}/stage {}/{}{}", test.name, n + 1, i + 1, if contextual_run { " (contextual)" } else { "" });
            for (i, a) in stage.check_assertions.into_iter().flatten().enumerate() {
                let want = match a.error_code {
                    Some(c) => Answer::Error(c),
                    None => Answer::Bool(a.expectation.unwrap_or(false)),
                };
                let got = answer(&model, &stored, &extra, &a.contextual_tuples, |tuples| {
                    let t = tuple(&a.tuple).map_err(Answer::Error)?;
                    eval::check(&model, tuples, &t.subject, &t.relation, &t.object).map(Answer::Bool).map_err(code)
                });
                tally.record(0, name(i), got, want);
            }
            for (i, a) in stage.list_objects_assertions.into_iter().flatten().enumerate() {
                let want = expected(a.expectation, a.error_code);
                let got = answer(&model, &stored, &extra, &a.contextual_tuples, |tuples| {
                    let subject = Subject::parse(&a.request.user).map_err(|_| Answer::Error(VALIDATION_ERROR))?;
                    eval::list_objects(&model, tuples, &subject, &a.request.type_name, &a.request.relation)
                        .map(|l| Answer::Set(l.into_iter().collect()))
                        .map_err(code)
                });
                tally.record(1, name(i), got, want);
            }
            for (i, a) in stage.list_users_assertions.into_iter().flatten().enumerate() {
                let want = expected(a.expectation, a.error_code);
                let got = answer(&model, &stored, &extra, &a.contextual_tuples, |tuples| {
                    let object = Object::parse(&a.request.object).map_err(|_| Answer::Error(VALIDATION_ERROR))?;
                    let mut all = BTreeSet::new();
                    for filter in &a.request.filters {
                        all.extend(eval::list_users(&model, tuples, &object, &a.request.relation, filter).map_err(code)?);
                    }
                    Ok(Answer::Set(all))
                });
                tally.record(2, name(i), got, want);
            }
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every check, list-objects and list-users assertion of OpenFGA's consolidated suite,
    /// in both runs (tuples written, and sent as contextual tuples).
    #[test]
    fn consolidated_suite() {
        let yaml = super::super::suite_file("consolidated_1_1_tests.yaml");
        for contextual_run in [false, true] {
            let tally = run(&yaml, contextual_run);
            for (k, kind) in KINDS.iter().enumerate() {
                println!("{kind}{}: {} passed, {} failed", if contextual_run { " (contextual)" } else { "" }, tally.passed[k], tally.failed[k]);
                assert!(tally.passed[k] > 150, "{kind}: only {} assertions ran", tally.passed[k]);
            }
            assert!(tally.failures.is_empty(), "failures:\n{}", tally.failures.join("\n"));
        }
    }
}
