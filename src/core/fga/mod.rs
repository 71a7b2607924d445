//! Relationships (DESIGN.md section 6): OpenFGA's modelling language, schema 1.1 — the
//! model (`model`), its parser (`dsl`) and its validation (`validate`), tuples (`tuple`),
//! tuples sent as JSON (`request`) and their evaluation (`eval`). Pure Rust, like the rest
//! of the core; `suite` runs OpenFGA's conformance files against it in memory.

pub mod dsl;
pub mod eval;
pub mod model;
pub mod request;
#[cfg(test)]
mod suite;
pub mod tuple;
pub mod validate;

/// The text of a file of OpenFGA's conformance suites: in the directory
/// `$AUTHZ_OPENFGA_SUITES`, else `../shared/openfga` beside the project (where CI has them).
#[cfg(test)]
pub(crate) fn suite_file(name: &str) -> String {
    let dir = std::env::var("AUTHZ_OPENFGA_SUITES").unwrap_or_else(|_| format!("{}/../shared/openfga", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{dir}/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (set AUTHZ_OPENFGA_SUITES to the directory of OpenFGA's conformance suites)"))
}

#[cfg(test)]
mod tests {
    use super::{dsl, suite_file, validate};

    /// The models of a file in OpenFGA's conformance format: each `- model: |` block scalar,
    /// its indentation removed (enough YAML for this; the conformance runner reads it whole).
    fn models_in(yaml: &str) -> Vec<String> {
        let lines: Vec<&str> = yaml.lines().collect();
        let indent = |l: &str| l.len() - l.trim_start().len();
        let mut models = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("- model: |") {
                continue;
            }
            let key = indent(line) + 2;
            let block: Vec<&str> =
                lines[i + 1..].iter().copied().take_while(|l| l.trim().is_empty() || indent(l) > key).collect();
            let margin = block.iter().filter(|l| !l.trim().is_empty()).map(|l| indent(l)).min().unwrap_or(0);
            models.push(block.iter().map(|l| l.get(margin..).unwrap_or("")).collect::<Vec<_>>().join("\n"));
        }
        models
    }

    /// Every model of OpenFGA's own suites (../shared/openfga) parses and is valid: the
    /// harness writes each of them and expects no error.
    #[test]
    fn every_model_of_the_conformance_suites_is_accepted() {
        for file in ["consolidated_1_1_tests.yaml", "abac_tests.yaml"] {
            let yaml = suite_file(file);
            let models = models_in(&yaml);
            assert!(models.len() > 20, "{file}: only {} models found", models.len());
            for text in &models {
                let model = dsl::parse(text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
                if let Err(e) = validate::validate(&model) {
                    panic!("{file}: {e}\n{text}");
                }
            }
        }
    }
}
