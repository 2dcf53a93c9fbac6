//! Sweeps: a list where an experiment file takes one value expands into one problem or
//! method per value, so one table shows how the results move with it.
//!
//! Three keys sweep: a problem's `sigma` (problems named `<name> sigma=<value>`) and a
//! method's `train.lr` and `train.passes` (methods labelled `<label> lr=<value>`,
//! `<label> passes=<value>`, every combination when both are lists). The expansion is a
//! pure function of the file, so the job order, `--shard` and `sb report` work as for any
//! other file, and the run directory's `config.yaml` holds the expanded experiment.

use serde_yaml::{Mapping, Value};

use sb_methods::MethodConfig;

/// For each expanded problem and method, the index of the entry it came from.
pub type Origins = (Vec<usize>, Vec<usize>);

/// The keys of a method's `train` block that may hold a list.
const METHOD_KEYS: [&str; 2] = ["lr", "passes"];

/// Expands the sweeps of an experiment document in place. Returns `None` when the file has
/// none (the document is unchanged), else where each problem and method came from.
///
/// # Errors
/// An empty or repeated list, a list of non-scalars, or a swept problem with published
/// values, naming the key.
pub fn expand(doc: &mut Value) -> Result<Option<Origins>, String> {
    let Some(root) = doc.as_mapping_mut() else {
        return Ok(None);
    };
    let mut swept = false;
    let mut problem_origin = Vec::new();
    if let Some(Value::Sequence(problems)) = root.get_mut("problems") {
        let mut out = Vec::new();
        for (i, problem) in std::mem::take(problems).into_iter().enumerate() {
            let values = match problem.get("sigma") {
                Some(Value::Sequence(list)) => list_values(list, &format!("problems[{i}].sigma"))?,
                _ => {
                    out.push(problem);
                    problem_origin.push(i);
                    continue;
                }
            };
            swept = true;
            let has_published = problem
                .get("published")
                .and_then(Value::as_mapping)
                .is_some_and(|m| !m.is_empty());
            if has_published {
                return Err(format!(
                    "problems[{i}]: a sigma sweep cannot carry `published` values: they were measured at one σ; give that σ a problem of its own"
                ));
            }
            for (text, v) in values {
                let mut copy = problem.clone();
                let m = copy
                    .as_mapping_mut()
                    .expect("a problem with a key is a mapping");
                m.insert("sigma".into(), v);
                if let Some(Value::String(name)) = m.get_mut("name") {
                    *name = format!("{name} sigma={text}");
                }
                out.push(copy);
                problem_origin.push(i);
            }
        }
        *problems = out;
    }
    let mut method_origin = Vec::new();
    if let Some(Value::Sequence(methods)) = root.get_mut("methods") {
        let mut out = Vec::new();
        for (j, entry) in std::mem::take(methods).into_iter().enumerate() {
            let train = entry.get("train").and_then(Value::as_mapping);
            let mut axes: Vec<(&str, Vec<(String, Value)>)> = Vec::new();
            for key in METHOD_KEYS {
                if let Some(Value::Sequence(list)) = train.and_then(|t| t.get(key)) {
                    axes.push((
                        key,
                        list_values(list, &format!("methods[{j}].train.{key}"))?,
                    ));
                }
            }
            if axes.is_empty() {
                out.push(entry);
                method_origin.push(j);
                continue;
            }
            swept = true;
            for combination in product(&axes) {
                let mut copy = entry.clone();
                let m = copy
                    .as_mapping_mut()
                    .expect("a method with a key is a mapping");
                let mut suffix = String::new();
                for (key, text, v) in &combination {
                    let train = m
                        .get_mut("train")
                        .and_then(Value::as_mapping_mut)
                        .expect("the swept key lives in train");
                    train.insert((*key).into(), v.clone());
                    suffix.push_str(&format!(" {key}={text}"));
                }
                let label = base_label(m);
                if let Some(label) = label {
                    m.insert("label".into(), format!("{label}{suffix}").into());
                }
                out.push(copy);
                method_origin.push(j);
            }
        }
        *methods = out;
    }
    Ok(swept.then_some((problem_origin, method_origin)))
}

/// The scalars of a swept list with their text for names.
fn list_values(list: &[Value], key: &str) -> Result<Vec<(String, Value)>, String> {
    if list.is_empty() {
        return Err(format!("{key}: a sweep must list at least one value"));
    }
    let mut out: Vec<(String, Value)> = Vec::new();
    for v in list {
        let text = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => {
                return Err(format!(
                    "{key}: a sweep lists single values, got {}",
                    serde_yaml::to_string(v).unwrap_or_default().trim()
                ))
            }
        };
        if out.iter().any(|(t, _)| *t == text) {
            return Err(format!("{key} lists {text} twice"));
        }
        out.push((text, v.clone()));
    }
    Ok(out)
}

/// Every combination of the axes' values, the first axis varying slowest.
fn product<'a>(axes: &[(&'a str, Vec<(String, Value)>)]) -> Vec<Vec<(&'a str, String, Value)>> {
    let mut out = vec![Vec::new()];
    for (key, values) in axes {
        out = out
            .into_iter()
            .flat_map(|prefix: Vec<(&'a str, String, Value)>| {
                values.iter().map(move |(text, v)| {
                    let mut next = prefix.clone();
                    next.push((*key, text.clone(), v.clone()));
                    next
                })
            })
            .collect();
    }
    out
}

/// The method's label, or the solver's own name; `None` when the method block is invalid
/// (validation then reports it).
fn base_label(entry: &Mapping) -> Option<String> {
    if let Some(Value::String(label)) = entry.get("label") {
        return Some(label.clone());
    }
    let method: MethodConfig = serde_yaml::from_value(entry.get("method")?.clone()).ok()?;
    let passes = entry
        .get("train")
        .and_then(|t| t.get("passes"))
        .and_then(Value::as_u64)
        .map_or(sb_methods::TrainConfig::default().passes, |p| p as usize);
    Some(method.build(1.0).ok()?.name(passes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(text: &str) -> (Value, Option<Origins>) {
        let mut doc: Value = serde_yaml::from_str(text).unwrap();
        let origins = expand(&mut doc).unwrap();
        (doc, origins)
    }

    #[test]
    fn a_file_without_lists_is_untouched() {
        let text = "problems: [{name: p, sigma: 1}]\nmethods: [{method: {kind: dsb}}]\n";
        let (doc, origins) = expanded(text);
        assert_eq!(origins, None);
        assert_eq!(doc, serde_yaml::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn sigma_lr_and_passes_expand_in_a_fixed_order() {
        let (doc, origins) = expanded(
            "problems: [{name: a, sigma: 1}, {name: p, sigma: [0.1, auto]}]
methods:
  - {method: {kind: dsb}, train: {lr: [0.001, 0.01], passes: [2, 4]}}
  - {label: mine, method: {kind: dsbm}}
",
        );
        let (problems, methods) = origins.unwrap();
        assert_eq!(problems, vec![0, 1, 1]);
        assert_eq!(methods, vec![0, 0, 0, 0, 1]);
        let names: Vec<&str> = doc["problems"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "p sigma=0.1", "p sigma=auto"]);
        let labels: Vec<&str> = doc["methods"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| m["label"].as_str().unwrap())
            .collect();
        assert_eq!(
            labels,
            [
                "DSB lr=0.001 passes=2",
                "DSB lr=0.001 passes=4",
                "DSB lr=0.01 passes=2",
                "DSB lr=0.01 passes=4",
                "mine"
            ]
        );
        assert_eq!(doc["methods"][1]["train"]["passes"], Value::from(4));
    }

    #[test]
    fn bad_sweeps_name_the_key() {
        let bad = |text: &str| {
            let mut doc: Value = serde_yaml::from_str(text).unwrap();
            expand(&mut doc).unwrap_err()
        };
        assert_eq!(
            bad("problems: [{name: p, sigma: []}]"),
            "problems[0].sigma: a sweep must list at least one value"
        );
        assert_eq!(
            bad("problems: [{name: p, sigma: [0.1, 0.1]}]"),
            "problems[0].sigma lists 0.1 twice"
        );
        assert!(bad("methods: [{method: {kind: dsb}, train: {lr: [[1]]}}]")
            .starts_with("methods[0].train.lr: a sweep lists single values"));
        assert!(
            bad("problems: [{name: p, sigma: [1, 2], published: {DSB: {w1: 1}}}]")
                .contains("cannot carry `published`")
        );
    }
}
