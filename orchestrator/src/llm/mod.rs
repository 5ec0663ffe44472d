//! The LLM planner: a model behind any OpenAI-compatible
//! `/v1/chat/completions` endpoint chooses the tool calls, over whatever
//! tools the servers offer, and the orchestrator keeps it honest.
//!
//! The model never writes the answer and never invents a value:
//!
//! - **Grounded menus.** Each turn offers only the calls that can be
//!   grounded now ([`menu`]): a tool whose every required input has a value
//!   from the question (an address it names, a number it gives) or from an
//!   earlier tool result (a user id a tool returned; values returned under
//!   the input's own name, `userId` for `userId`, when there are such), each
//!   input an `enum` of exactly those values that its schema accepts, a call
//!   already made left out, plus "done" once a call has been made. A call
//!   whose arguments are all determined is offered by name alone; when
//!   nothing is left to call, the model is not asked.
//!   In `json_schema` mode the menu is the response's JSON schema (llama.cpp
//!   turns it into a grammar, so even a 135M-parameter model can only pick
//!   from it); in `tools` mode it is the `tools` list.
//! - **Guards.** Whatever comes back is checked again: the tool exists,
//!   the arguments validate against its real `inputSchema`, an address
//!   comes from the question, any other string from a tool result, a
//!   number from either, and the call was not made before. A refusal ends
//!   the question with an [`LlmError`]; nothing is called.
//! - **Bounded.** At most `steps_max` model turns, each within the
//!   question's deadline, under the same retry policy, retry budget and a
//!   circuit breaker of its own: the model is one more remote dependency.
//! - **Rendered from results** ([`render`]): the answer is built from what
//!   the tools returned, with each listing tied to the address whose
//!   lookup returned its user id. Every address in the question must be
//!   answered.
//!
//! The conversation lives in [`conversation`]; the endpoint in [`chat`];
//! the loop that runs them is the engine's (`engine/llm.rs`).

pub(crate) mod chat;
pub(crate) mod conversation;
pub(crate) mod menu;
pub(crate) mod render;

use std::time::Duration;

use mcp_http::dial::Dialer;

use crate::{breaker::SharedBreaker, config::Credential, error::CallError, policy::Policy};
use chat::{ChatEndpoint, OpenAiEndpoint};

/// The name the model endpoint goes by in events and messages.
pub const MODEL: &str = "model";

/// How the model is asked for its next step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LlmMode {
    /// `response_format` with a JSON schema that admits only the grounded
    /// calls and "done": what small local models need.
    #[default]
    JsonSchema,
    /// Native tool calling (`tools`, `tool_choice: "required"`), the tools'
    /// inputs narrowed to their grounded values.
    Tools,
}

impl LlmMode {
    /// Every mode with its name in configs and on the command line.
    pub const ALL: [(&'static str, LlmMode); 2] = [
        ("json_schema", LlmMode::JsonSchema),
        ("tools", LlmMode::Tools),
    ];

    /// The mode called `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }
}

/// Where the model is and how to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    /// The API's base URL, before `/chat/completions`: for llama.cpp's
    /// server `http://127.0.0.1:8091/v1`, for OpenAI `https://api.openai.com/v1`.
    pub base_url: String,
    /// The model name the endpoint expects.
    pub model: String,
    /// The API key, by reference (sent as a bearer token), if the endpoint
    /// wants one.
    pub api_key: Option<Credential>,
    pub mode: LlmMode,
    /// Most model turns for one question (each turn is a call or "done").
    pub steps_max: u32,
    /// Longest wait for one model reply; the question's deadline still
    /// bounds every turn.
    pub request_timeout: Duration,
}

impl LlmSettings {
    /// Most model turns allowed by any config.
    pub const STEPS_LIMIT: u32 = 32;

    /// Settings for `model` at `base_url` with the defaults: JSON-schema
    /// mode, 8 turns, 60 s per reply, no API key.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            mode: LlmMode::JsonSchema,
            steps_max: 8,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Which planner answers questions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Planner {
    /// The deterministic planner: reads the question completely or refuses.
    #[default]
    Rules,
    /// A model chooses the calls, under the guards.
    Llm(LlmSettings),
}

/// Why the LLM planner gave no answer. The model either failed or proposed
/// something a guard refused; nothing unsafe was called.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The model endpoint could not be used (after retries, if allowed).
    #[error("the model at {target} failed: {source}")]
    Endpoint {
        target: String,
        #[source]
        source: CallError,
    },
    /// The model's reply is not a chat completion, or not a step.
    #[error("turn {turn}: the model's reply is not a usable step: {detail}")]
    Malformed { turn: u32, detail: String },
    /// The model named a tool no server offers.
    #[error("turn {turn}: the model called {name:?}, which no server offers")]
    UnknownTool { turn: u32, name: String },
    /// The arguments do not validate against the tool's input schema.
    #[error("turn {turn}: the model's arguments for {tool} break its input schema: {detail}")]
    Invalid {
        turn: u32,
        tool: String,
        detail: String,
    },
    /// An argument value the question did not give and no tool returned.
    #[error(
        "turn {turn}: the model gave {tool} the {argument} {value}, which {}",
        if *.from_question { "the question does not contain" } else { "neither the question nor any tool result contains" }
    )]
    Ungrounded {
        turn: u32,
        tool: String,
        argument: String,
        value: String,
        /// The value had to come from the question (an address).
        from_question: bool,
    },
    /// The same call again.
    #[error("turn {turn}: the model repeated a call it had made: {tool}")]
    Repeated { turn: u32, tool: String },
    /// No answer within the turns allowed.
    #[error("the model made no answer within {steps_max} turns")]
    StepsExhausted { steps_max: u32 },
    /// The model stopped with an address of the question not looked up.
    #[error("the model stopped without looking up {}", .emails.join(", "))]
    Unanswered { emails: Vec<String> },
    /// A result the answer would show cannot be tied to the question: a
    /// listing whose user id no lookup of the question's addresses gave.
    #[error("{tool}'s result cannot be tied to an address in the question: {why}")]
    Unfounded { tool: String, why: String },
    /// No call was made: nothing the question gives fits any tool's
    /// inputs, or the model stopped before calling one.
    #[error(
        "no tool was called (none takes what the question gives, or the model stopped first), so there is nothing to answer from"
    )]
    NothingDone,
}

impl LlmError {
    /// True when asking again later may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, LlmError::Endpoint { source, .. } if source.is_transient())
    }
}

/// A model endpoint with its settings and its circuit breaker.
#[derive(Debug)]
pub struct LlmPlanner {
    pub(crate) settings: LlmSettings,
    pub(crate) endpoint: Box<dyn ChatEndpoint>,
    pub(crate) breaker: SharedBreaker,
}

impl LlmPlanner {
    /// A planner that reaches `settings.base_url` through `dialer` (real
    /// TCP, or the harness's simulated TCP), its breaker set by `policy`.
    pub fn new<D: Dialer>(settings: LlmSettings, dialer: D, policy: &Policy) -> Self {
        let endpoint = OpenAiEndpoint::new(dialer, &settings.base_url, settings.api_key.clone());
        Self {
            settings,
            endpoint: Box::new(endpoint),
            breaker: SharedBreaker::new(MODEL, policy),
        }
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }
}
