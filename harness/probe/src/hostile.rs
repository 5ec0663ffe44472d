//! Hostile JSON-RPC: generated lines, each wrong in one way (or valid in an
//! odd way), and what JSON-RPC 2.0 says each must get back. `harness probe`
//! sends them to any server; the kit's own tests (`servers/kit/tests/kit/
//! hostile.rs`) send them to the kit: one generator for both.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a line must get back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// A JSON-RPC error with this code and id.
    Error { code: i64, id: Value },
    /// Nothing: a notification, or a blank line.
    Silence,
    /// The ping's own empty result: the line was a valid (if odd) request.
    Pong { id: Value },
    /// For requests that reuse an id, in flight or already answered: at
    /// least one and at most `most` answers with this id, each a result or
    /// an error, but a well-formed JSON-RPC response either way. (rmcp
    /// answers two requests in flight with one id once: the client broke
    /// the rule that ids are unique, so one answer is acceptable; a
    /// malformed one or a stuck session is not.)
    Answers { id: Value, most: usize },
}

/// One generated line (without its newline) and what it must get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hostile {
    /// The bytes sent, as text (the generator makes only UTF-8).
    pub line: String,
    pub expect: Expect,
}

/// Which lines to generate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lines {
    /// The server's message cap, when it is known: lines up to 20 times
    /// over it must be refused whole (`-32600`, id null).
    pub frame_cap: Option<usize>,
    /// Two requests in one write (stdio and TCP only: over HTTP a body
    /// holds one message).
    pub two_in_one_write: bool,
}

fn hostile(line: impl Into<String>, expect: Expect) -> Hostile {
    Hostile {
        line: line.into(),
        expect,
    }
}

fn error(code: i64, id: Value) -> Expect {
    Expect::Error { code, id }
}

/// How many control ids a generated line may reuse, from one above
/// [`crate::CONTROL_ID_BASE`] up: a session must have had each of them
/// answered before its first generated line, so that reusing one reuses an
/// answered id.
pub const REUSABLE_CONTROL_IDS: i64 = 3;

/// A scalar id a server must echo: an integer or a string, never one of
/// the probe's control ids (from [`crate::CONTROL_ID_BASE`] up).
pub fn scalar_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..1_000_000).prop_map(Value::from),
        "[a-z0-9-]{1,12}".prop_map(Value::from),
    ]
}

/// A ping with `id` and no params.
pub fn ping_with(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

fn ping_with_params(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {}})
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(0), |inner, _| json!([inner]))
}

/// Any characters but the newline that ends a frame, and not JSON.
fn not_json() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        any::<char>().prop_filter("no newline", |c| *c != '\n'),
        1..60,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>())
    .prop_filter("not JSON, not blank, no padding a framer would trim", |t| {
        is_bad_json(t)
    })
}

/// Whether `t` is not JSON, and neither blank nor padded once a framer
/// drops its leading byte-order marks: a lone BOM is a blank line to such a
/// framer (no answer is due), and padding it might trim.
fn is_bad_json(t: &str) -> bool {
    let bare = t.trim_start_matches('\u{feff}');
    serde_json::from_str::<Value>(t).is_err() && !bare.is_empty() && bare.trim() == bare
}

fn parse_errors() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        not_json().prop_map(|t| hostile(t, error(-32700, Value::Null))),
        // A valid request cut short.
        (scalar_id(), 1usize..40).prop_map(|(id, cut)| {
            let full = ping_with(id).to_string();
            let cut = cut.min(full.len() - 1);
            hostile(&full[..cut], error(-32700, Value::Null))
        }),
    ]
}

fn invalid_requests() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        // JSON that is not a request object: invalid request, id null.
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "\"[a-z]{0,10}\"".prop_map(|s| s),
            Just("true".to_owned()),
            Just("[]".to_owned()),
            scalar_id().prop_map(|id| format!("[{}]", ping_with(id))),
        ]
        .prop_map(|t| hostile(t, error(-32600, Value::Null))),
        // A wrong or missing "jsonrpc": invalid request, with the id.
        (scalar_id(), wrong_version()).prop_map(|(id, version)| {
            let mut message = ping_with(id.clone());
            match version {
                Some(v) => message["jsonrpc"] = v,
                None => drop(message.as_object_mut().map(|m| m.remove("jsonrpc"))),
            }
            hostile(message.to_string(), error(-32600, id))
        }),
        // A null or non-scalar id: invalid request, id null.
        prop_oneof![
            Just(Value::Null),
            Just(json!({"x": 1})),
            Just(json!([1, 2])),
            Just(json!({})),
        ]
        .prop_map(|id| {
            let mut message = ping_with_params(0);
            message["id"] = id;
            hostile(message.to_string(), error(-32600, Value::Null))
        }),
    ]
}

fn wrong_version() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(Some(json!("1.0"))),
        Just(Some(json!("2"))),
        Just(Some(json!(2))),
        Just(Some(json!(2.0))),
        Just(Some(Value::Null)),
        Just(None),
    ]
}

fn wrong_methods() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        // An unknown method: method not found, with the id.
        (scalar_id(), "[a-z]{1,8}/[a-z]{1,8}").prop_map(|(id, method)| {
            let message = json!({"jsonrpc": "2.0", "id": id, "method": format!("zz{method}")});
            hostile(message.to_string(), error(-32601, id))
        }),
        // Parameters of the wrong type: invalid params, with the id.
        (
            scalar_id(),
            prop_oneof![
                Just(json!(5)),
                Just(json!("x")),
                Just(json!([1, 2])),
                Just(json!(true))
            ]
        )
            .prop_map(|(id, params)| {
                let message =
                    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
                hostile(message.to_string(), error(-32602, id))
            }),
        // A notification's method with an id is a request for a method
        // that does not exist.
        (
            scalar_id(),
            prop_oneof![
                Just("notifications/initialized"),
                Just("notifications/cancelled")
            ]
        )
            .prop_map(|(id, method)| {
                let message = json!({"jsonrpc": "2.0", "id": id, "method": method});
                hostile(message.to_string(), error(-32601, id))
            }),
    ]
}

fn silences() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        // Notifications, valid or not, get no answer.
        "[a-z]{1,12}".prop_map(|m| hostile(
            json!({"jsonrpc": "2.0", "method": format!("notifications/{m}")}).to_string(),
            Expect::Silence
        )),
        Just(hostile(
            r#"{"jsonrpc":"1.0","method":"notifications/x"}"#,
            Expect::Silence
        )),
        Just(hostile(r#"{"jsonrpc":"2.0","method":7}"#, Expect::Silence)),
        " {0,8}".prop_map(|s| hostile(s, Expect::Silence)),
    ]
}

/// Huge numbers and strings, deep nesting, inside a ping's `_meta`: still a ping.
fn odd_but_valid() -> impl Strategy<Value = Hostile> {
    (
        scalar_id(),
        prop_oneof![
            Just(json!(1e308)),
            Just(json!(u64::MAX)),
            Just(json!(i64::MIN)),
            "[a-zA-Z0-9 ]{100,600}".prop_map(Value::from),
            (1usize..40).prop_map(nested),
        ],
    )
        .prop_map(|(id, value)| {
            let mut message = ping_with(id.clone());
            message["params"] = json!({"_meta": {"x": value}});
            hostile(message.to_string(), Expect::Pong { id })
        })
}

/// The id of the handshake (0) or of a control ping this session already
/// had answered, used again.
fn reused_ids() -> impl Strategy<Value = Hostile> {
    let base = crate::CONTROL_ID_BASE;
    prop_oneof![Just(0i64), (base + 1)..=(base + REUSABLE_CONTROL_IDS)].prop_map(|id| {
        hostile(
            ping_with(json!(id)).to_string(),
            Expect::Answers {
                id: json!(id),
                most: 1,
            },
        )
    })
}

/// Two requests with one id in one write, before the first is answered.
fn two_in_flight() -> impl Strategy<Value = Hostile> {
    let method = || proptest::sample::select(vec!["ping", "tools/list"]);
    (scalar_id(), method(), method()).prop_map(|(id, first, second)| {
        let request = |method: &str| json!({"jsonrpc": "2.0", "id": id, "method": method});
        hostile(
            format!("{}\n{}", request(first), request(second)),
            Expect::Answers { id, most: 2 },
        )
    })
}

/// Lines up to 20 times over `cap`: refused whole, id null.
fn oversized(cap: usize) -> impl Strategy<Value = Hostile> {
    (1usize..20 * cap).prop_map(move |extra| {
        let mut message = ping_with_params(0);
        message["params"] = json!({"_meta": {"pad": "x".repeat(cap + extra)}});
        hostile(message.to_string(), error(-32600, Value::Null))
    })
}

/// One hostile line.
pub fn line(lines: Lines) -> BoxedStrategy<Hostile> {
    let mut choices: Vec<(u32, BoxedStrategy<Hostile>)> = vec![
        (2, parse_errors().boxed()),
        (5, invalid_requests().boxed()),
        (3, wrong_methods().boxed()),
        (4, silences().boxed()),
        (1, odd_but_valid().boxed()),
        (1, reused_ids().boxed()),
    ];
    if lines.two_in_one_write {
        choices.push((1, two_in_flight().boxed()));
    }
    if let Some(cap) = lines.frame_cap {
        choices.push((1, oversized(cap).boxed()));
    }
    proptest::strategy::Union::new_weighted(choices).boxed()
}

/// A well-formed request of a method a client may send, other than ping
/// and initialize, with a scalar id: sent before the handshake.
pub fn early_request() -> impl Strategy<Value = (Value, Value)> {
    (
        scalar_id(),
        prop_oneof![
            Just("tools/list"),
            Just("tools/call"),
            Just("resources/list"),
            Just("prompts/list"),
            Just("logging/setLevel"),
        ],
    )
        .prop_map(|(id, method)| {
            let params = match method {
                "tools/call" => json!({"name": "anything", "arguments": {}}),
                "logging/setLevel" => json!({"level": "info"}),
                _ => json!({}),
            };
            let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            (message, id)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::TestRunner;

    #[test]
    fn bad_json_is_never_a_line_a_framer_would_trim_to_blank() {
        for blank in ["\u{feff}", "\u{feff}\u{feff}", " x", "x ", "\u{feff} x"] {
            assert!(!is_bad_json(blank), "{blank:?}");
        }
        for bad in ["x", "\u{feff}x", "{\"a\":", "\u{feff}\u{feff}x"] {
            assert!(is_bad_json(bad), "{bad:?}");
        }
    }

    #[test]
    fn every_kind_of_line_is_generated_and_expectations_name_the_id_sent() {
        let mut runner = TestRunner::deterministic();
        let strategy = line(Lines {
            frame_cap: Some(64),
            two_in_one_write: true,
        });
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..2_000 {
            let hostile = strategy.new_tree(&mut runner).unwrap().current();
            kinds.insert(match &hostile.expect {
                Expect::Error { code, .. } => format!("error {code}"),
                Expect::Silence => "silence".into(),
                Expect::Pong { .. } => "pong".into(),
                Expect::Answers { most, .. } => format!("answers {most}"),
            });
            if let Expect::Error { id, .. } | Expect::Pong { id } = &hostile.expect
                && !id.is_null()
            {
                let sent: Value = serde_json::from_str(&hostile.line).unwrap();
                assert_eq!(&sent["id"], id, "{}", hostile.line);
            }
        }
        let want = [
            "error -32700",
            "error -32600",
            "error -32601",
            "error -32602",
            "silence",
            "pong",
            "answers 1",
            "answers 2",
        ];
        for kind in want {
            assert!(kinds.contains(kind), "{kind} never generated: {kinds:?}");
        }
    }
}
