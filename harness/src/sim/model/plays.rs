//! What the model host answers a turn with: the faithful next step (look
//! up each address of the question, list the transactions of the user id
//! the lookup returned unless a user id was asked for, then done), or, for
//! a share of turns drawn from the seed, one adversarial play. A play that
//! cannot be made yet (a repeat before any call) is played faithfully.

use std::{collections::VecDeque, time::Duration};

use rand::{Rng, rngs::SmallRng, seq::IndexedRandom};
use serde_json::{Map, Value, json};

use super::turn::{Kind, Offer, Past, Turn};
use crate::scenario::{ModelSettings, Play};

/// Values remembered from earlier requests (for stale arguments), at most.
const REMEMBERED_MAX: usize = 32;
/// Tools remembered from earlier menus, at most.
const TOOLS_MAX: usize = 16;
/// Tools no server offers.
const UNKNOWN_TOOLS: [&str; 4] = [
    "payment__refundTransaction",
    "user__deleteUser",
    "admin__exportEverything",
    "getUserIdByEmail",
];

/// A step as the model proposes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Call { tool: String, arguments: Value },
    Done,
}

/// What the host answers.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    /// A completion holding this step, in the turn's mode.
    Step(Step),
    /// A completion whose message content is this text.
    Text(String),
    /// A completion with a native tool call whose arguments are this text.
    RawCall { tool: String, arguments: String },
    /// 200 with this body.
    Body(String),
    /// This status, with `Retry-After` (seconds) if given.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// The step, once this long has passed.
    Late(Duration, Step),
    /// The connection closes unanswered.
    Drop,
}

/// What the host remembers across requests, until it restarts.
#[derive(Debug, Default)]
pub(super) struct Memory {
    /// Addresses asked about and user ids returned, newest last.
    values: VecDeque<String>,
    /// The inputs of tools, by name: from menus that list them, and from
    /// calls made (a call offered by name alone lists none).
    tools: Vec<Offer>,
}

impl Memory {
    /// Remembers the turn's addresses, the user ids its results gave, and
    /// the inputs its offers and calls show.
    pub(super) fn remember(&mut self, turn: &Turn) {
        let seen = turn
            .addresses()
            .into_iter()
            .chain(turn.past.iter().filter_map(|p| p.user_id()));
        for value in seen {
            if !self.values.contains(&value) {
                if self.values.len() == REMEMBERED_MAX {
                    self.values.pop_front();
                }
                self.values.push_back(value);
            }
        }
        let listed = turn.offers.iter().filter(|o| !o.inputs.is_empty()).cloned();
        for offer in listed.chain(turn.past.iter().map(Past::shape)) {
            if !self.tools.iter().any(|t| t.name == offer.name) && self.tools.len() < TOOLS_MAX {
                self.tools.push(offer);
            }
        }
    }

    /// The remembered inputs of tool `name`.
    fn shape(&self, name: &str) -> Option<&Offer> {
        self.tools.iter().find(|t| t.name == name)
    }
}

/// One turn's answer, drawn from `rng`.
pub(super) struct Player<'a> {
    pub(super) turn: &'a Turn,
    pub(super) memory: &'a Memory,
    pub(super) rng: &'a mut SmallRng,
    pub(super) settings: &'a ModelSettings,
    /// The orchestrator's wait for one reply: a slow answer comes after it.
    pub(super) timeout: Duration,
}

impl<'a> Player<'a> {
    /// The play drawn for this turn (`None`: faithful) and the answer.
    pub(super) fn reply(&mut self) -> (Option<Play>, Reply) {
        let settings = self.settings;
        if settings.plays.is_empty() || !self.rng.random_bool(settings.adversity) {
            return (None, Reply::Step(self.faithful()));
        }
        let play = *settings.plays.choose(self.rng).expect("plays is not empty");
        match self.play(play) {
            Some(reply) => (Some(play), reply),
            None => (None, Reply::Step(self.faithful())),
        }
    }

    /// How long the answer takes, before any play's own delay.
    pub(super) fn think(&mut self) -> Duration {
        let (min, max) = (self.settings.think_min, self.settings.think_max);
        min + (max - min).mul_f64(self.rng.random::<f64>())
    }

    fn play(&mut self, play: Play) -> Option<Reply> {
        let step = |step: Option<Step>| step.map(Reply::Step);
        match play {
            Play::RandomCall => step(self.random_call()),
            Play::DoneEarly => Some(self.done_early()),
            Play::StrangerEmail => step(self.stranger_email()),
            Play::StaleValue => step(self.stale_value()),
            Play::InventedId => step(self.invented_id()),
            Play::UnknownTool => Some(Reply::Step(self.unknown_tool())),
            Play::WrongType => step(self.wrong_type()),
            Play::ExtraArgument => step(self.extra_argument()),
            Play::Repeat => step(self.repeat()),
            Play::Malformed => Some(self.malformed()),
            Play::EmptyChoices => Some(Reply::Body(
                r#"{"object":"chat.completion","choices":[]}"#.into(),
            )),
            Play::NotACompletion => Some(self.not_a_completion()),
            Play::Slow => Some(self.slow()),
            Play::Drop => Some(Reply::Drop),
            Play::ServerError => Some(Reply::Status {
                status: *[500, 503].choose(self.rng).expect("two"),
                retry_after: None,
            }),
            Play::RateLimited => Some(Reply::Status {
                status: 429,
                retry_after: self
                    .rng
                    .random_bool(0.5)
                    .then(|| self.rng.random_range(1..=2)),
            }),
        }
    }

    /// The next step of the plan that answers the question asked.
    pub(super) fn faithful(&self) -> Step {
        let turn = self.turn;
        let count = turn.count().map(Value::from);
        for address in turn.addresses() {
            let lookup = turn.past.iter().find(|p| p.took(&address));
            let Some(lookup) = lookup else {
                match self
                    .call_with(&address, None)
                    .or_else(|| self.named_alone(true))
                {
                    Some(step) => return step,
                    None => continue,
                }
            };
            let id = lookup.user_id().filter(|_| !turn.asks_for_id());
            if let Some(id) = id.filter(|id| !turn.past.iter().any(|p| p.took(id)))
                && let Some(step) = self
                    .call_with(&id, count.as_ref())
                    .or_else(|| self.named_alone(false))
            {
                return step;
            }
        }
        Step::Done
    }

    /// An offer named alone (its arguments are determined: the one value
    /// left for each input) that looks an address up (`email`) or not.
    /// The menu does not say what it takes, so the host reads it as a model
    /// would: a tool called before takes what it took then; a tool offered
    /// before any call is grounded by the question alone, so it takes an
    /// address; otherwise its name says so.
    fn named_alone(&self, email: bool) -> Option<Step> {
        let turn = self.turn;
        let takes_email = |offer: &Offer| match turn.past.iter().find(|p| p.tool == offer.name) {
            Some(past) => past.took_an_address(),
            None => turn.past.is_empty() || offer.name.to_ascii_lowercase().contains("email"),
        };
        let offer = turn
            .offers
            .iter()
            .find(|o| o.inputs.is_empty() && takes_email(o) == email)?;
        Some(call(&offer.name, Map::new()))
    }

    /// The offered call that takes `value`, with `count` where the menu
    /// allows it and the first allowed value for any other required input.
    fn call_with(&self, value: &str, count: Option<&Value>) -> Option<Step> {
        let same = |v: &Value| v.as_str().is_some_and(|v| v.eq_ignore_ascii_case(value));
        let offer = self
            .turn
            .offers
            .iter()
            .find(|o| o.inputs.iter().any(|i| i.values.iter().any(same)))?;
        let mut arguments = Map::new();
        for input in &offer.inputs {
            let chosen = match input.values.iter().find(|v| same(v)) {
                Some(v) => Some(v),
                None => count
                    .filter(|c| input.values.contains(c))
                    .or((!input.optional).then(|| input.values.first()).flatten()),
            };
            if let Some(chosen) = chosen {
                arguments.insert(input.name.clone(), chosen.clone());
            }
        }
        Some(call(&offer.name, arguments))
    }

    fn random_call(&mut self) -> Option<Step> {
        let (offer, arguments) = self.random_arguments()?;
        Some(call(&offer.name, arguments))
    }

    /// An offered call, each required input given a value drawn from the
    /// menu and each optional one, half of the time.
    fn random_arguments(&mut self) -> Option<(&'a Offer, Map<String, Value>)> {
        let turn = self.turn;
        let offer = turn.offers.choose(self.rng)?;
        let mut arguments = Map::new();
        for input in &offer.inputs {
            if input.optional && self.rng.random_bool(0.5) {
                continue;
            }
            if let Some(value) = input.values.choose(self.rng) {
                arguments.insert(input.name.clone(), value.clone());
            }
        }
        Some((offer, arguments))
    }

    fn done_early(&mut self) -> Reply {
        match self.turn.tools_mode && self.rng.random_bool(0.5) {
            true => Reply::Text("Here is what I found.".into()),
            false => Reply::Step(Step::Done),
        }
    }

    /// A lookup of an address nobody asked about.
    fn stranger_email(&mut self) -> Option<Step> {
        let who = ["eve", "mallory", "trent", "bob", "alice"].choose(self.rng)?;
        let domain = ["example.com", "example.org", "evil.test"].choose(self.rng)?;
        let n: u32 = self.rng.random_range(0..100);
        let email = format!("{who}{n}@{domain}");
        self.call_taking(Kind::Email, Value::from(email))
    }

    /// A value remembered from an earlier request that this conversation
    /// has not grounded: an address or a user id from another question.
    fn stale_value(&mut self) -> Option<Step> {
        let (turn, memory) = (self.turn, self.memory);
        let addresses = turn.addresses();
        let grounded = |v: &String| {
            addresses.iter().any(|a| a.eq_ignore_ascii_case(v))
                || turn.past.iter().any(|p| p.result.contains(v.as_str()))
        };
        let stale: Vec<&String> = memory.values.iter().filter(|v| !grounded(v)).collect();
        let value = (*stale.choose(self.rng)?).clone();
        let kind = if value.contains('@') {
            Kind::Email
        } else {
            Kind::Text
        };
        self.call_taking(kind, Value::from(value))
    }

    fn invented_id(&mut self) -> Option<Step> {
        let hex = |rng: &mut SmallRng, n: usize| -> String {
            (0..n)
                .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
                .collect()
        };
        let id = [8, 4, 4, 4, 12].map(|n| hex(self.rng, n)).join("-");
        self.call_taking(Kind::Text, Value::from(id))
    }

    /// A call of a tool whose required input of `kind` gets `value`, other
    /// required inputs their first allowed value: from the menu, else from
    /// a menu seen before.
    fn call_taking(&mut self, kind: Kind, value: Value) -> Option<Step> {
        let takes = |o: &Offer| o.inputs.iter().any(|i| !i.optional && i.kind() == kind);
        let offers: Vec<Offer> = self.offer_shapes().into_iter().filter(takes).collect();
        let offers: Vec<&Offer> = offers.iter().collect();
        let remembered: Vec<&Offer> = self.memory.tools.iter().filter(|o| takes(o)).collect();
        let pool = if offers.is_empty() {
            remembered
        } else {
            offers
        };
        let offer = *pool.choose(self.rng)?;
        let mut arguments = Map::new();
        for input in offer.inputs.iter().filter(|i| !i.optional) {
            let chosen = match input.kind() == kind {
                true => Some(value.clone()),
                false => input.values.first().cloned(),
            };
            arguments.extend(chosen.map(|v| (input.name.clone(), v)));
        }
        Some(call(&offer.name, arguments))
    }

    /// The offers with their inputs: an offer named alone takes the inputs
    /// this conversation's calls of it showed, else those remembered.
    fn offer_shapes(&self) -> Vec<Offer> {
        let turn = self.turn;
        let called = |name: &str| turn.past.iter().find(|p| p.tool == name).map(Past::shape);
        turn.offers
            .iter()
            .map(|offer| match offer.inputs.is_empty() {
                false => offer.clone(),
                true => called(&offer.name)
                    .or_else(|| self.memory.shape(&offer.name).cloned())
                    .unwrap_or_else(|| offer.clone()),
            })
            .collect()
    }

    fn unknown_tool(&mut self) -> Step {
        let arguments = self.random_arguments().map(|(_, a)| a).unwrap_or_default();
        let tool = match self.turn.offers.choose(self.rng) {
            Some(offer) if self.rng.random_bool(0.3) => format!("{}s", offer.name),
            _ => (*UNKNOWN_TOOLS.choose(self.rng).expect("several")).to_owned(),
        };
        call(&tool, arguments)
    }

    /// An offered call with one input's value of the wrong type or range.
    fn wrong_type(&mut self) -> Option<Step> {
        let (offer, mut arguments) = self.random_arguments()?;
        let shapes = self.offer_shapes();
        let offer = shapes.iter().find(|o| o.name == offer.name)?;
        let input = offer.inputs.choose(self.rng)?;
        let wrong = match input.kind() {
            Kind::Number => [json!("3"), json!(2.5), json!(0), json!(-1), json!(1001)],
            Kind::Email | Kind::Text => [
                json!(7),
                json!(true),
                json!(["x"]),
                json!({"value": "x"}),
                Value::Null,
            ],
        };
        arguments.insert(input.name.clone(), wrong.choose(self.rng)?.clone());
        Some(call(&offer.name, arguments))
    }

    /// An offered call with one more argument than the tool takes, its
    /// value one the menu grounds (or `true`).
    fn extra_argument(&mut self) -> Option<Step> {
        let (offer, mut arguments) = self.random_arguments()?;
        let grounded: Vec<&Value> = self
            .turn
            .offers
            .iter()
            .flat_map(|o| o.inputs.iter().flat_map(|i| i.values.iter()))
            .collect();
        let name = *["admin", "note", "owner", "userIdOverride"].choose(self.rng)?;
        let value = grounded
            .choose(self.rng)
            .map_or(Value::Bool(true), |v| (*v).clone());
        arguments.insert(name.to_owned(), value);
        Some(call(&offer.name, arguments))
    }

    fn repeat(&mut self) -> Option<Step> {
        let past = self.turn.past.choose(self.rng)?;
        Some(call(&past.tool, past.arguments.clone()))
    }

    /// Content that is not a usable step, in the turn's mode.
    fn malformed(&mut self) -> Reply {
        let faithful = match self.faithful() {
            Step::Call { tool, arguments } => {
                json!({"tool": tool, "arguments": arguments})
            }
            Step::Done => json!({"tool": "done"}),
        }
        .to_string();
        let kept = self.rng.random_range(1..faithful.chars().count());
        let cut: String = faithful.chars().take(kept).collect();
        if self.turn.tools_mode {
            let tool = self.turn.offers.first().map_or("done", |o| o.name.as_str());
            let arguments = [cut.as_str(), "email=bob@example.com", "[1, 2]"]
                .choose(self.rng)
                .map_or(String::new(), |a| (*a).to_owned());
            return Reply::RawCall {
                tool: tool.to_owned(),
                arguments,
            };
        }
        let fenced = format!("```json\n{faithful}\n```");
        let choices = [
            cut,
            "I will look that up for you.".to_owned(),
            fenced,
            r#"{"tool": "done"}"#.to_owned(),
            r#"{"tool": ["done"]}"#.to_owned(),
            r#"{"tool": 7}"#.to_owned(),
            r#"{"tool": "user__lookup", "arguments": "all"}"#.to_owned(),
            "[]".to_owned(),
        ];
        Reply::Text(choices.choose(self.rng).cloned().unwrap_or_default())
    }

    fn not_a_completion(&mut self) -> Reply {
        let bodies = [
            r#"{"error": {"message": "the model is overloaded", "type": "server_error"}}"#,
            "<html><body>Bad gateway</body></html>",
            "",
            r#"{"choices": [{"message": null}]}"#,
            r#"{"choices": [{"message": {"content": null, "tool_calls": [{"function": {"arguments": "{}"}}]}}]}"#,
        ];
        Reply::Body((*bodies.choose(self.rng).expect("several")).to_owned())
    }

    /// The faithful step, after the orchestrator has stopped waiting.
    fn slow(&mut self) -> Reply {
        let late = self.timeout + Duration::from_millis(self.rng.random_range(100..2000));
        Reply::Late(late, self.faithful())
    }
}

fn call(tool: &str, arguments: Map<String, Value>) -> Step {
    Step::Call {
        tool: tool.to_owned(),
        arguments: Value::Object(arguments),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::sim::model::turn::{Input, Past};

    fn input(name: &str, values: Vec<Value>, optional: bool) -> Input {
        Input {
            name: name.into(),
            values,
            optional,
        }
    }

    fn lookup(email: &str) -> Offer {
        Offer {
            name: "user__lookup".into(),
            inputs: vec![input("email", vec![json!(email)], false)],
        }
    }

    fn listing(id: &str, count: Option<u64>) -> Offer {
        let mut inputs = vec![input("userId", vec![json!(id), json!("Bob")], false)];
        inputs.extend(count.map(|n| input("count", vec![json!(n)], true)));
        Offer {
            name: "payment__list".into(),
            inputs,
        }
    }

    fn past(tool: &str, arguments: Value, result: &str) -> Past {
        Past {
            tool: tool.into(),
            arguments: arguments.as_object().unwrap().clone(),
            result: result.into(),
        }
    }

    fn turn(question: &str, offers: Vec<Offer>, past: Vec<Past>) -> Turn {
        Turn {
            tools_mode: false,
            question: question.into(),
            offers,
            past,
        }
    }

    fn settings(adversity: f64, plays: Vec<Play>) -> ModelSettings {
        ModelSettings {
            adversity,
            think_min: Duration::ZERO,
            think_max: Duration::from_millis(10),
            plays,
        }
    }

    fn answer(
        turn: &Turn,
        memory: &Memory,
        settings: &ModelSettings,
        seed: u64,
    ) -> (Option<Play>, Reply) {
        let mut rng = SmallRng::seed_from_u64(seed);
        Player {
            turn,
            memory,
            rng: &mut rng,
            settings,
            timeout: Duration::from_secs(1),
        }
        .reply()
    }

    fn faithful(turn: &Turn) -> Reply {
        answer(
            turn,
            &Memory::default(),
            &settings(0.0, Play::ALL.to_vec()),
            1,
        )
        .1
    }

    fn called(tool: &str, arguments: Value) -> Reply {
        Reply::Step(Step::Call {
            tool: tool.into(),
            arguments,
        })
    }

    const LAST_TWO: &str = "last 2 purchases of BOB@example.com";

    #[test]
    fn the_faithful_player_looks_up_lists_and_stops() {
        let first = turn(LAST_TWO, vec![lookup("BOB@example.com")], vec![]);
        assert_eq!(
            faithful(&first),
            called("user__lookup", json!({"email": "BOB@example.com"}))
        );
        let looked_up = past(
            "user__lookup",
            json!({"email": "BOB@example.com"}),
            r#"{"userId":"u-1"}"#,
        );
        let second = turn(
            LAST_TWO,
            vec![listing("u-1", Some(2))],
            vec![looked_up.clone()],
        );
        assert_eq!(
            faithful(&second),
            called("payment__list", json!({"userId": "u-1", "count": 2}))
        );
        let listed = past("payment__list", json!({"userId": "u-1", "count": 2}), "{}");
        let third = turn(LAST_TWO, vec![], vec![looked_up.clone(), listed]);
        assert_eq!(faithful(&third), Reply::Step(Step::Done));
        let id = turn(
            "What is the user id of bob@example.com",
            vec![listing("u-1", None)],
            vec![looked_up],
        );
        assert_eq!(faithful(&id), Reply::Step(Step::Done));
        let nobody = past(
            "user__lookup",
            json!({"email": "BOB@example.com"}),
            "error: not found",
        );
        let unknown = turn(LAST_TWO, vec![], vec![nobody]);
        assert_eq!(faithful(&unknown), Reply::Step(Step::Done));
    }

    /// The planner offers a call whose arguments are determined by name
    /// alone: the host still plays the chain, telling a lookup from a
    /// listing by what the tool took before (or, before any call, that only
    /// the question grounds it).
    #[test]
    fn the_faithful_player_chains_calls_offered_by_name_alone() {
        let alone = |name: &str| Offer {
            name: name.into(),
            inputs: vec![],
        };
        let question = "transactions of bob@example.com and amy@example.com";
        let both_emails = Offer {
            name: "user__lookup".into(),
            inputs: vec![input(
                "email",
                vec![json!("bob@example.com"), json!("amy@example.com")],
                false,
            )],
        };
        let first = turn(question, vec![both_emails], vec![]);
        assert_eq!(
            faithful(&first),
            called("user__lookup", json!({"email": "bob@example.com"}))
        );
        let only = turn(
            "transactions of bob@example.com",
            vec![alone("user__lookup")],
            vec![],
        );
        assert_eq!(faithful(&only), called("user__lookup", json!({})));
        let bob = past("user__lookup", json!({"email": "bob@example.com"}), "u-1");
        // Both offers named alone: the lookup of Amy, the listing of u-1.
        let both = vec![alone("user__lookup"), alone("payment__list")];
        let second = turn(question, both.clone(), vec![bob.clone()]);
        assert_eq!(faithful(&second), called("payment__list", json!({})));
        let listed = past("payment__list", json!({"userId": "u-1"}), "Coffee");
        let third = turn(question, both, vec![bob.clone(), listed]);
        assert_eq!(faithful(&third), called("user__lookup", json!({})));
        let asked = turn(
            "user id of bob@example.com",
            vec![alone("payment__list")],
            vec![bob],
        );
        assert_eq!(faithful(&asked), Reply::Step(Step::Done));
    }

    /// Against a menu that names its calls alone, the plays that need an
    /// input's name take it from a call made earlier: a stranger's address
    /// and a stale or invented id still reach the guards (before, with no
    /// input listed, they fell back to the faithful step).
    #[test]
    fn plays_on_calls_named_alone_use_the_inputs_calls_showed() {
        let alone = |name: &str| Offer {
            name: name.into(),
            inputs: vec![],
        };
        let mut memory = Memory::default();
        let earlier = past(
            "user__lookup",
            json!({"email": "zoe@example.com"}),
            "u-stale",
        );
        memory.remember(&turn(
            "transactions of zoe@example.com",
            vec![],
            vec![earlier],
        ));
        let first = turn(LAST_TWO, vec![alone("user__lookup")], vec![]);
        let stranger = settings(1.0, vec![Play::StrangerEmail]);
        let (drawn, reply) = answer(&first, &memory, &stranger, 1);
        assert_eq!(drawn, Some(Play::StrangerEmail), "{reply:?}");
        assert_eq!(argument_names(&reply), ["email"], "{reply:?}");
        assert_ne!(argument_values(&reply), [json!("BOB@example.com")]);
        let looked_up = past("user__lookup", json!({"email": "BOB@example.com"}), "u-1");
        let listed = past("payment__list", json!({"userId": "u-1"}), "Coffee");
        memory.remember(&turn(LAST_TWO, vec![], vec![listed]));
        let second = turn(LAST_TWO, vec![alone("payment__list")], vec![looked_up]);
        for (seed, play) in [Play::InventedId, Play::WrongType].into_iter().enumerate() {
            let (drawn, reply) = answer(&second, &memory, &settings(1.0, vec![play]), seed as u64);
            assert_eq!(drawn, Some(play), "{reply:?}");
            assert_eq!(argument_names(&reply), ["userId"], "{play:?}: {reply:?}");
            assert_ne!(argument_values(&reply)[0], json!("u-1"), "{play:?}");
        }
        for seed in 0..8 {
            let stale = settings(1.0, vec![Play::StaleValue]);
            let (drawn, reply) = answer(&second, &memory, &stale, seed);
            assert_eq!(drawn, Some(Play::StaleValue), "{reply:?}");
            let value = argument_values(&reply)[0].clone();
            assert!(
                [json!("zoe@example.com"), json!("u-stale")].contains(&value),
                "{reply:?}"
            );
        }
    }

    /// A turn where every play can be made, and a memory of an earlier
    /// question about someone else.
    fn rich() -> (Turn, Memory) {
        let mut memory = Memory::default();
        let earlier = past(
            "user__lookup",
            json!({"email": "zoe@example.com"}),
            r#"{"userId":"u-stale"}"#,
        );
        memory.remember(&turn(
            "transactions of zoe@example.com",
            vec![lookup("zoe@example.com"), listing("u-stale", None)],
            vec![earlier],
        ));
        let looked_up = past(
            "user__lookup",
            json!({"email": "BOB@example.com"}),
            r#"{"userId":"u-1"}"#,
        );
        let now = turn(LAST_TWO, vec![listing("u-1", Some(2))], vec![looked_up]);
        (now, memory)
    }

    fn argument_values(reply: &Reply) -> Vec<Value> {
        match reply {
            Reply::Step(Step::Call { arguments, .. }) => {
                arguments.as_object().unwrap().values().cloned().collect()
            }
            other => panic!("not a call: {other:?}"),
        }
    }

    fn argument_names(reply: &Reply) -> Vec<String> {
        match reply {
            Reply::Step(Step::Call { arguments, .. }) => {
                arguments.as_object().unwrap().keys().cloned().collect()
            }
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn every_play_is_made_as_drawn() {
        let (now, memory) = rich();
        let offered: Vec<Value> = now.offers[0]
            .inputs
            .iter()
            .flat_map(|i| i.values.clone())
            .collect();
        for (seed, play) in Play::ALL.into_iter().enumerate() {
            let (drawn, reply) = answer(&now, &memory, &settings(1.0, vec![play]), seed as u64);
            assert_eq!(drawn, Some(play), "{reply:?}");
            let tool = match &reply {
                Reply::Step(Step::Call { tool, .. }) => tool.as_str(),
                _ => "",
            };
            let made = match play {
                Play::RandomCall => tool == "payment__list",
                Play::DoneEarly => reply == Reply::Step(Step::Done),
                Play::StrangerEmail => {
                    tool == "user__lookup"
                        && !argument_values(&reply).contains(&json!("BOB@example.com"))
                }
                Play::StaleValue => [[json!("u-stale")], [json!("zoe@example.com")]]
                    .contains(&argument_values(&reply).try_into().unwrap_or([Value::Null])),
                Play::InventedId => argument_values(&reply).iter().all(|v| !offered.contains(v)),
                Play::UnknownTool => !tool.is_empty() && tool != "payment__list",
                Play::WrongType => argument_values(&reply).iter().any(|v| !offered.contains(v)),
                Play::ExtraArgument => argument_names(&reply)
                    .iter()
                    .any(|n| !now.offers[0].inputs.iter().any(|i| i.name == *n)),
                Play::Repeat => {
                    reply == called("user__lookup", json!({"email": "BOB@example.com"}))
                }
                Play::Malformed => matches!(reply, Reply::Text(_)),
                Play::EmptyChoices => {
                    reply == Reply::Body(r#"{"object":"chat.completion","choices":[]}"#.into())
                }
                Play::NotACompletion => matches!(reply, Reply::Body(_)),
                Play::Slow => {
                    matches!(reply, Reply::Late(after, _) if after > Duration::from_secs(1))
                }
                Play::Drop => reply == Reply::Drop,
                Play::ServerError => matches!(
                    reply,
                    Reply::Status {
                        status: 500 | 503,
                        ..
                    }
                ),
                Play::RateLimited => matches!(reply, Reply::Status { status: 429, .. }),
            };
            assert!(made, "{play:?} gave {reply:?}");
        }
    }

    #[test]
    fn a_play_that_cannot_be_made_is_played_faithfully_and_draws_replay() {
        let first = turn(LAST_TWO, vec![lookup("BOB@example.com")], vec![]);
        let repeat = settings(1.0, vec![Play::Repeat]);
        let (drawn, reply) = answer(&first, &Memory::default(), &repeat, 3);
        assert_eq!((drawn, reply), (None, faithful(&first)));
        let (now, memory) = rich();
        let all = settings(0.5, Play::ALL.to_vec());
        let draws = |seed: u64| {
            (0..20)
                .map(|i| answer(&now, &memory, &all, seed + i))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }
}
