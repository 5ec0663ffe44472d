//! Values generated from a JSON Schema: ones it accepts, and ones it
//! refuses for exactly one reason. The generator knows the common keywords;
//! every value is then confirmed by a real validator (`jsonschema`), so a
//! keyword it does not know can cost cases, never a wrong verdict.

use std::sync::Arc;

use jsonschema::Validator;
use proptest::{
    prelude::*,
    sample::{Index, select},
};
use serde_json::{Map, Value, json};

/// How deep generated values nest.
const DEPTH_MAX: u32 = 4;
/// Most items generated for an array, whatever its `maxItems`.
const ITEMS_MAX: usize = 4;
/// Longest string generated where the schema sets no `maxLength`.
const STRING_MAX: usize = 24;

/// A compiled schema: the validator and the schema it came from.
#[derive(Debug, Clone)]
pub struct Schema {
    pub source: Value,
    validator: Arc<Validator>,
}

impl Schema {
    /// Compiles `source`; the error says why it is not a usable schema.
    pub fn compile(source: &Value) -> Result<Schema, String> {
        let validator = jsonschema::validator_for(source).map_err(|e| e.to_string())?;
        Ok(Schema {
            source: source.clone(),
            validator: Arc::new(validator),
        })
    }

    pub fn accepts(&self, value: &Value) -> bool {
        self.validator.is_valid(value)
    }

    /// Why `value` does not validate, or `None` when it does.
    pub fn why_not(&self, value: &Value) -> Option<String> {
        let error = self.validator.validate(value).err()?;
        Some(format!("{error} (at {})", error.instance_path()))
    }

    /// Values the schema accepts.
    pub fn valid(&self) -> BoxedStrategy<Value> {
        let schema = self.clone();
        value(&self.source, 0)
            .prop_filter("the schema accepts it", move |v| schema.accepts(v))
            .boxed()
    }

    /// Objects the schema refuses for one reason: a required property
    /// dropped, one property of the wrong type or out of its bounds, or a
    /// property it does not allow. `None` when the schema constrains
    /// nothing that can be broken.
    pub fn invalid(&self) -> Option<BoxedStrategy<Value>> {
        let breaks = breaks(&self.source);
        if breaks.is_empty() {
            return None;
        }
        let schema = self.clone();
        let strategy = (value(&self.source, 0), any::<Index>())
            .prop_map(move |(valid, pick)| breaks[pick.index(breaks.len())].apply(valid))
            .prop_filter("the schema refuses it", move |v| !schema.accepts(v))
            .boxed();
        Some(strategy)
    }
}

/// One way to break an object's arguments.
#[derive(Debug, Clone)]
enum Break {
    Drop(String),
    WrongType(String, Value),
    Set(String, Value),
    Extra,
}

impl Break {
    fn apply(&self, mut value: Value) -> Value {
        let Some(object) = value.as_object_mut() else {
            return json!("not an object");
        };
        match self {
            Break::Drop(name) => drop(object.remove(name)),
            Break::WrongType(name, wrong) | Break::Set(name, wrong) => {
                object.insert(name.clone(), wrong.clone());
            }
            Break::Extra => drop(object.insert("mcpProbeUnexpected".into(), json!(1))),
        }
        value
    }
}

/// The ways an object schema's arguments can be broken one at a time.
fn breaks(schema: &Value) -> Vec<Break> {
    let mut breaks = Vec::new();
    let properties = schema["properties"].as_object();
    for name in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        breaks.push(Break::Drop(name.to_owned()));
    }
    for (name, property) in properties.into_iter().flatten() {
        breaks.push(Break::WrongType(name.clone(), wrong_type(property)));
        breaks.extend(out_of_bounds(property).map(|v| Break::Set(name.clone(), v)));
    }
    if schema["additionalProperties"] == false {
        breaks.push(Break::Extra);
    }
    breaks
}

/// A value of a type `schema` does not allow.
fn wrong_type(schema: &Value) -> Value {
    match first_type(schema) {
        Some("string") => json!(42),
        Some("integer" | "number") => json!("not a number"),
        Some("boolean") => json!("yes"),
        Some("array") => json!({"not": "an array"}),
        Some("object") => json!(["not", "an", "object"]),
        _ => json!({"mcpProbe": ["a value of no declared type"]}),
    }
}

/// A value just outside the bounds `schema` sets, if it sets any.
fn out_of_bounds(schema: &Value) -> Option<Value> {
    let int = |k: &str| schema[k].as_u64().and_then(|n| usize::try_from(n).ok());
    if let Some(max) = int("maxLength") {
        return Some(json!("x".repeat(max + 1)));
    }
    if let Some(min) = int("minLength").filter(|m| *m > 0) {
        return Some(json!("x".repeat(min - 1)));
    }
    if let Some(max) = schema["maximum"].as_f64() {
        return Some(json!(max + 1.0));
    }
    if let Some(min) = schema["minimum"].as_f64() {
        return Some(json!(min - 1.0));
    }
    schema["enum"]
        .as_array()
        .map(|_| json!("mcp-probe: not one of the enum"))
}

fn first_type(schema: &Value) -> Option<&str> {
    match &schema["type"] {
        Value::String(t) => Some(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

/// Values shaped by `schema` (confirmed by the validator afterwards).
fn value(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    if let Some(constant) = schema.get("const") {
        return Just(constant.clone()).boxed();
    }
    if let Some(choices) = schema["enum"].as_array().filter(|c| !c.is_empty()) {
        return select(choices.clone()).boxed();
    }
    let branches = schema["anyOf"].as_array().or(schema["oneOf"].as_array());
    if let Some(branches) = branches.filter(|b| !b.is_empty()) {
        let strategies: Vec<_> = branches.iter().map(|b| value(b, depth + 1)).collect();
        return proptest::strategy::Union::new(strategies).boxed();
    }
    match first_type(schema).or_else(|| schema.get("properties").map(|_| "object")) {
        Some("object") if depth < DEPTH_MAX => object(schema, depth),
        Some("array") if depth < DEPTH_MAX => array(schema, depth),
        Some("string") => string(schema),
        Some("integer") => integer(schema),
        Some("number") => number(schema),
        Some("boolean") => any::<bool>().prop_map(Value::from).boxed(),
        Some("null") => Just(Value::Null).boxed(),
        _ => scalar(),
    }
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-10i64..100).prop_map(Value::from),
        "[a-z0-9]{0,8}".prop_map(Value::from),
    ]
    .boxed()
}

/// Required properties always, optional ones half the time.
fn object(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let properties: Vec<(String, bool, BoxedStrategy<Value>)> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, p)| {
            (
                name.clone(),
                required.contains(&name.as_str()),
                value(p, depth + 1),
            )
        })
        .collect();
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = properties
        .into_iter()
        .map(|(name, required, strategy)| {
            let present = if required {
                Just(true).boxed()
            } else {
                any::<bool>().boxed()
            };
            (present, strategy)
                .prop_map(move |(p, v)| p.then(|| (name.clone(), v)))
                .boxed()
        })
        .collect();
    parts
        .prop_map(|entries| Value::Object(entries.into_iter().flatten().collect::<Map<_, _>>()))
        .boxed()
}

fn array(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let min = schema["minItems"]
        .as_u64()
        .map_or(0, |n| n as usize)
        .min(ITEMS_MAX);
    let max = schema["maxItems"]
        .as_u64()
        .map_or(ITEMS_MAX, |n| n as usize)
        .clamp(min, ITEMS_MAX);
    let items = value(&schema["items"], depth + 1);
    proptest::collection::vec(items, min..=max)
        .prop_map(Value::Array)
        .boxed()
}

/// Strings biased toward what servers look up: small numbers (ids), words,
/// emails and dates, cut or padded to the schema's length bounds.
fn string(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minLength"].as_u64().map_or(0, |n| n as usize);
    let max = schema["maxLength"]
        .as_u64()
        .map_or(STRING_MAX.max(min), |n| n as usize);
    let shaped = match schema["format"].as_str() {
        Some("email") => "[a-z]{1,8}@example\\.(com|org)".boxed(),
        Some("date") => "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])".boxed(),
        Some("date-time") => "20[0-9]{2}-0[1-9]-1[0-9]T1[0-9]:[0-5][0-9]:[0-5][0-9]Z".boxed(),
        Some("uri") => "https://example\\.com/[a-z]{0,8}".boxed(),
        _ => prop_oneof![
            3 => "[1-9][0-9]{0,1}".boxed(),
            2 => "[a-z]{1,10}".boxed(),
            1 => "[a-z]{1,8}@example\\.com".boxed(),
            1 => "[ -~]{0,20}".boxed(),
            1 => any::<String>().boxed(),
        ]
        .boxed(),
    };
    shaped
        .prop_map(move |s| Value::from(fit(s, min, max)))
        .boxed()
}

/// `text` cut or padded (with `x`) to between `min` and `max` characters.
fn fit(text: String, min: usize, max: usize) -> String {
    let mut fitted: String = text.chars().take(max).collect();
    let count = fitted.chars().count();
    fitted.extend(std::iter::repeat_n('x', min.saturating_sub(count)));
    fitted
}

fn integer(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minimum"].as_i64().unwrap_or(-1000);
    let max = schema["maximum"].as_i64().unwrap_or(1000).max(min);
    let small = min.max(0)..=max.min(min.max(0) + 10);
    prop_oneof![
        3 => small.prop_map(Value::from),
        1 => (min..=max).prop_map(Value::from),
    ]
    .boxed()
}

fn number(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minimum"].as_f64().unwrap_or(-1000.0);
    let max = schema["maximum"].as_f64().unwrap_or(1000.0).max(min);
    (min..=max)
        .prop_map(|n| json!((n * 100.0).round() / 100.0))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::TestRunner;

    fn args_schema() -> Schema {
        Schema::compile(&json!({"type": "object",
            "properties": {"userId": {"type": "string", "minLength": 1, "maxLength": 8},
                           "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                           "kind": {"enum": ["a", "b"]}},
            "required": ["userId"], "additionalProperties": false}))
        .unwrap()
    }

    fn draw(strategy: &BoxedStrategy<Value>, runner: &mut TestRunner) -> Value {
        strategy.new_tree(runner).unwrap().current()
    }

    #[test]
    fn valid_values_validate_and_cover_the_optional_properties() {
        let schema = args_schema();
        let (valid, mut runner) = (schema.valid(), TestRunner::deterministic());
        let values: Vec<Value> = (0..200).map(|_| draw(&valid, &mut runner)).collect();
        assert!(values.iter().all(|v| schema.accepts(v)));
        assert!(values.iter().any(|v| v.get("limit").is_some()));
        assert!(values.iter().any(|v| v.get("limit").is_none()));
    }

    #[test]
    fn invalid_values_are_refused_and_every_kind_of_break_is_drawn() {
        let schema = args_schema();
        let (invalid, mut runner) = (schema.invalid().unwrap(), TestRunner::deterministic());
        let mut reasons = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let value = draw(&invalid, &mut runner);
            let why = schema.why_not(&value).expect("refused");
            reasons.insert(
                why.split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .trim_end_matches(')')
                    .to_owned(),
            );
            reasons.insert(
                if value.get("userId").is_none() {
                    "dropped"
                } else {
                    "kept"
                }
                .to_owned(),
            );
            reasons.insert(
                if value.get("mcpProbeUnexpected").is_some() {
                    "extra"
                } else {
                    "-"
                }
                .to_owned(),
            );
        }
        for want in ["dropped", "extra", "/userId", "/limit", "/kind"] {
            assert!(reasons.contains(want), "{want} not among {reasons:?}");
        }
    }

    #[test]
    fn a_schema_with_nothing_to_break_has_no_invalid_values() {
        assert!(
            Schema::compile(&json!({"type": "object"}))
                .unwrap()
                .invalid()
                .is_none()
        );
        assert!(Schema::compile(&json!({"type": 7})).is_err());
    }

    #[test]
    fn strings_are_fitted_to_their_bounds() {
        assert_eq!(fit("abcdef".into(), 0, 3), "abc");
        assert_eq!(fit("a".into(), 3, 5), "axx");
    }
}
