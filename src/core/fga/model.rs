//! An authorization model as OpenFGA's modelling language (schema 1.1) describes it: types,
//! their relations as rewrites, and conditions. Built by `dsl::parse`, checked by
//! `validate::validate`.

/// A whole model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The schema version of the header ("1.1").
    pub schema: String,
    pub types: Vec<TypeDef>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDef {
    pub name: String,
    pub relations: Vec<Relation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub rewrite: Rewrite,
}

/// How a relation is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Tuples written for the relation, of the subject types allowed (`[user, group#member]`).
    Direct(Vec<Restriction>),
    /// Another relation of the same object (`viewer: editor`).
    Computed(String),
    /// Relation `computed` of the objects related to this one by `tupleset`
    /// (`viewer from parent`).
    TupleToUserset { tupleset: String, computed: String },
    /// `a or b or ...`
    Union(Vec<Rewrite>),
    /// `a and b and ...`
    Intersection(Vec<Rewrite>),
    /// `base but not subtract`
    Exclusion { base: Box<Rewrite>, subtract: Box<Rewrite> },
}

/// One subject type a direct relation allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    pub type_name: String,
    pub kind: RestrictionKind,
    /// `with <condition>`: tuples of this kind must name the condition.
    pub condition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestrictionKind {
    /// `user`: a single subject `user:<id>`.
    Type,
    /// `user:*`: every subject of the type.
    Wildcard,
    /// `group#member`: the subjects related to a group by `member`.
    Userset(String),
}

/// `condition name(param: type, ...) { expression }`. The expression (CEL) is kept as
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub name: String,
    pub parameters: Vec<(String, ParameterType)>,
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterType {
    Bool,
    String,
    Int,
    Uint,
    Double,
    Duration,
    Timestamp,
    IpAddress,
    Map(Box<ParameterType>),
    List(Box<ParameterType>),
}

impl ParameterType {
    /// A parameter type as the language spells it: a base type, or `map<T>` / `list<T>` of one.
    pub fn parse(s: &str) -> Option<ParameterType> {
        let base = |s: &str| {
            Some(match s {
                "bool" => ParameterType::Bool,
                "string" => ParameterType::String,
                "int" => ParameterType::Int,
                "uint" => ParameterType::Uint,
                "double" => ParameterType::Double,
                "duration" => ParameterType::Duration,
                "timestamp" => ParameterType::Timestamp,
                "ipaddress" => ParameterType::IpAddress,
                _ => return None,
            })
        };
        let container = |prefix: &str| s.strip_prefix(prefix).and_then(|r| r.strip_suffix('>')).map(str::trim);
        if let Some(inner) = container("map<") {
            return base(inner).map(|t| ParameterType::Map(Box::new(t)));
        }
        if let Some(inner) = container("list<") {
            return base(inner).map(|t| ParameterType::List(Box::new(t)));
        }
        base(s)
    }
}

impl Model {
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name == name)
    }

    pub fn relation(&self, type_name: &str, relation: &str) -> Option<&Relation> {
        self.type_def(type_name)?.relations.iter().find(|r| r.name == relation)
    }

    pub fn condition(&self, name: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.name == name)
    }
}

impl Rewrite {
    /// The direct restrictions of this rewrite and those it is made of (a relation may be
    /// written directly only where one appears).
    pub fn restrictions(&self) -> Vec<&Restriction> {
        match self {
            Rewrite::Direct(r) => r.iter().collect(),
            Rewrite::Computed(_) | Rewrite::TupleToUserset { .. } => Vec::new(),
            Rewrite::Union(children) | Rewrite::Intersection(children) => children.iter().flat_map(Rewrite::restrictions).collect(),
            Rewrite::Exclusion { base, subtract } => base.restrictions().into_iter().chain(subtract.restrictions()).collect(),
        }
    }
}
