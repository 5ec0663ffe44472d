//! The LLM planner end to end: the binary, the real reference servers, and
//! a scripted OpenAI-compatible endpoint on loopback that plays a model. The
//! script is a test double for the model only (the real one, a local
//! llama.cpp server, runs in CI: `ci/llm-check.sh`); everything else is what
//! a user runs.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{Json, Router, extract::State, http::HeaderMap, routing::post};
use serde_json::{Value, json};

use super::{SEED_QUESTION, assert_seed_answer, run};

/// What the scripted model does each turn.
#[derive(Clone, Copy)]
enum Script {
    /// The first call the menu offers, else done: a faithful planner.
    FirstOffer,
    /// Always proposes a lookup of an address nobody wrote.
    Ungrounded,
}

/// A request body and its Authorization header.
type Seen = (Value, Option<String>);

#[derive(Clone)]
struct Model {
    script: Script,
    /// Every request body and its Authorization header.
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Serves the scripted model on a loopback port, on a thread of its own.
fn start(script: Script) -> (SocketAddr, Model) {
    let model = Model {
        script,
        seen: Arc::default(),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(model.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (addr, model)
}

async fn complete(
    State(model): State<Model>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Json<Value> {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    model.seen.lock().unwrap().push((request.clone(), auth));
    let (name, arguments) = match model.script {
        Script::FirstOffer => first_offer(&request),
        Script::Ungrounded => (
            "user__getUserIdByEmail".to_owned(),
            json!({"email": "eve@example.com"}),
        ),
    };
    Json(reply(&request, &name, arguments))
}

/// The first call the request's menu offers, each input its first value.
fn first_offer(request: &Value) -> (String, Value) {
    let offers: Vec<(String, Value)> = match request.get("tools") {
        Some(tools) => tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["function"]["name"].as_str().unwrap().to_owned(),
                    t["function"]["parameters"].clone(),
                )
            })
            .collect(),
        None => request["response_format"]["json_schema"]["schema"]["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let name = o["properties"]["tool"]["enum"][0]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (name, o["properties"]["arguments"].clone())
            })
            .collect(),
    };
    let (name, parameters) = offers.into_iter().next().expect("done is always offered");
    let mut arguments = serde_json::Map::new();
    for (input, schema) in parameters["properties"].as_object().into_iter().flatten() {
        let values = schema
            .get("enum")
            .or_else(|| schema.pointer("/anyOf/0/enum"));
        if let Some(first) = values.and_then(|v| v.get(0)) {
            arguments.insert(input.clone(), first.clone());
        }
    }
    (name, Value::Object(arguments))
}

/// A chat completion carrying the step, as the request's mode expects.
fn reply(request: &Value, name: &str, arguments: Value) -> Value {
    let message = if request.get("tools").is_some() {
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": name, "arguments": arguments.to_string()},
        }]})
    } else {
        let step = if name == "done" {
            json!({"tool": "done"})
        } else {
            json!({"tool": name, "arguments": arguments})
        };
        json!({"role": "assistant", "content": step.to_string()})
    };
    json!({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
}

fn llm_args(addr: SocketAddr) -> Vec<String> {
    ["--planner", "llm", "--llm-model", "scripted", "--llm-url"]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("http://{addr}/v1")])
        .collect()
}

fn ask(extra: &[String], question: &str) -> (i32, String, String) {
    let mut args: Vec<&str> = vec!["ask"];
    args.extend(extra.iter().map(String::as_str));
    args.push(question);
    run(&args)
}

#[test]
fn the_llm_planner_answers_the_seed_question_in_both_modes() {
    for mode in ["json_schema", "tools"] {
        let (addr, model) = start(Script::FirstOffer);
        let mut args = llm_args(addr);
        args.extend(["--llm-mode".to_owned(), mode.to_owned()]);
        let (code, stdout, stderr) = ask(&args, SEED_QUESTION);
        assert_eq!(code, 0, "{mode}: {stderr}");
        assert_seed_answer(&stdout);
        let seen = model.seen.lock().unwrap();
        assert_eq!(
            seen.len(),
            2,
            "{mode}: the lookup and the listing; with nothing left, done is not asked"
        );
        let first = &seen[0].0;
        assert_eq!(first["model"], "scripted");
        assert_eq!(first["temperature"], 0.0);
        assert_eq!(first["messages"][1]["content"], SEED_QUESTION);
        let last = seen[1].0["messages"].as_array().unwrap();
        assert!(
            last.iter().any(|m| m
                .to_string()
                .contains("b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f")),
            "{mode}: the model saw the lookup's result"
        );
    }
}

#[test]
fn a_paraphrase_the_rules_refuse_is_answered_by_the_llm_planner() {
    let question = "Could you pull up bob@example.com's purchase history, please?";
    let (code, _, stderr) = ask(&[], question);
    assert_eq!(code, 2, "the rules planner refuses it: {stderr}");
    let (addr, _model) = start(Script::FirstOffer);
    let (code, stdout, stderr) = ask(&llm_args(addr), question);
    assert_eq!(code, 0, "{stderr}");
    assert_seed_answer(&stdout);
}

#[test]
fn a_guard_refuses_an_address_the_question_did_not_write() {
    let (addr, model) = start(Script::Ungrounded);
    let mut args = llm_args(addr);
    args.push("--json".to_owned());
    let (code, stdout, stderr) = ask(&args, SEED_QUESTION);
    assert_eq!(code, 1, "{stderr}");
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        value["error"],
        "turn 1: the model gave user/getUserIdByEmail the email \"eve@example.com\", which the question does not contain"
    );
    assert_eq!(value["steps"], json!([]), "nothing was called");
    assert_eq!(model.seen.lock().unwrap().len(), 1);
    let (code, _, stderr) = ask(&llm_args(addr), SEED_QUESTION);
    assert_eq!(code, 1);
    assert!(stderr.contains("--planner rules"), "{stderr}");
}

#[test]
fn a_dead_model_endpoint_is_named_and_said_to_be_temporary() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let (code, _, stderr) = ask(&llm_args(addr), SEED_QUESTION);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the model at http://{addr}/v1/chat/completions failed"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("asking again later may work"), "{stderr}");
}

#[cfg(not(feature = "https"))]
#[test]
fn an_https_model_url_is_refused_at_once_naming_the_rebuild() {
    let args: Vec<String> = ["--planner", "llm", "--llm-model", "m", "--llm-url"]
        .map(str::to_owned)
        .into_iter()
        .chain(["https://127.0.0.1:9/v1".to_owned()])
        .collect();
    let (code, _, stderr) = ask(&args, SEED_QUESTION);
    assert_eq!(code, 2, "a usage error: {stderr}");
    assert!(
        stderr.contains("no TLS; rebuild with `--features https`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("asking again later"),
        "not temporary: {stderr}"
    );
}

#[test]
fn the_api_key_is_sent_from_the_config_and_never_shown() {
    let (addr, model) = start(Script::FirstOffer);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("orchestrator.toml");
    let user = env!("CARGO_BIN_EXE_orchestrator");
    std::fs::write(
        &config,
        format!(
            "[[servers]]\nname = \"user\"\nstdio = [\"{user}\", \"serve-embedded\", \"user\"]\n\
             [[servers]]\nname = \"payment\"\nstdio = [\"{user}\", \"serve-embedded\", \"payment\"]\n\
             [planner]\nkind = \"llm\"\nbase_url = \"http://{addr}/v1\"\nmodel = \"scripted\"\n\
             api_key = {{ env = \"E2E_MODEL_KEY\" }}\n"
        ),
    )
    .unwrap();
    let output = super::orchestrator_bin()
        .args([
            "ask",
            "--explain",
            "--config",
            config.to_str().unwrap(),
            SEED_QUESTION,
        ])
        .env("E2E_MODEL_KEY", "sk-e2e-secret")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_seed_answer(&stdout);
    assert!(!stdout.contains("sk-e2e") && !stderr.contains("sk-e2e"));
    let seen = model.seen.lock().unwrap();
    assert_eq!(seen[0].1.as_deref(), Some("Bearer sk-e2e-secret"));
}
