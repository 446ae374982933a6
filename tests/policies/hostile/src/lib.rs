//! Misbehaves as its settings say, so that tests can check that the host survives it and
//! denies (fail closed). Never use it for anything else.

use serde::Deserialize;
use std::hint::black_box;
use tagpolicy_guest::{Decision, Findings, Policy, Request, export_policy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Behaviour {
    /// Allow every request (the control case).
    Allow,
    /// Loop forever in `evaluate`.
    Loop,
    /// Loop forever in `configure`.
    LoopInConfigure,
    /// Panic in `evaluate`.
    Panic,
    /// Allocate without end in `evaluate`.
    GrowMemory,
    /// Recurse without end in `evaluate` (exhausts the wasm call stack).
    Recurse,
    /// Recurse with large locals (exhausts the stack Rust keeps in linear memory first).
    RecurseWithLocals,
    /// Deny with a reason of several megabytes.
    HugeReason,
    /// Panic on every second evaluation of an instance.
    PanicEverySecondCall,
    /// On the first evaluation, ask for more memory than the limit and cope with the
    /// refusal (allow); panic on the second.
    RefusedGrowThenPanic,
    /// Loop forever when a request touches the tag `boom`; allow otherwise.
    LoopIfTagIsBoom,
    /// Print 100 KiB to stdout and stderr on every evaluation, then allow.
    Chatty,
    /// Print a line in `configure` (keeping a host stream open), then allow.
    PrintInConfigure,
    /// Keep 1 MiB more on every evaluation, then allow: a runtime whose heap only grows.
    LeakPerCall,
    /// Say it cannot decide (`verdict.fail`, as the Python and JavaScript SDKs do for an
    /// exception) with a 2 KiB reason, print through the contract's `output`, and deny.
    Fail,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    behaviour: Behaviour,
}

pub struct Hostile {
    behaviour: Behaviour,
    calls: std::cell::Cell<u64>,
    leaked: std::cell::RefCell<Vec<Vec<u8>>>,
}

impl Policy for Hostile {
    type Settings = Settings;
    const NAME: &'static str = "hostile";
    const DESCRIPTION: &'static str = "Misbehaves on purpose, for failure tests";
    const SETTINGS_EXAMPLE: &'static str = r#"{"behaviour":"loop"}"#;

    fn configure(settings: Settings) -> Result<Self, String> {
        match settings.behaviour {
            Behaviour::LoopInConfigure => spin(),
            Behaviour::PrintInConfigure => eprintln!("configuring"),
            _ => {}
        }
        Ok(Self {
            behaviour: settings.behaviour,
            calls: Default::default(),
            leaked: Default::default(),
        })
    }

    fn evaluate(&self, request: &Request) -> Decision {
        self.calls.set(self.calls.get() + 1);
        let mut findings = Findings::new();
        match self.behaviour {
            Behaviour::Allow | Behaviour::LoopInConfigure | Behaviour::PrintInConfigure => {}
            Behaviour::Loop => spin(),
            Behaviour::Panic => panic!("the hostile policy panics on purpose"),
            Behaviour::GrowMemory => {
                // Reserve without touching: the limit, not page faults, must stop it.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(Vec::with_capacity(16 << 20));
                    black_box(&hoard);
                }
            }
            Behaviour::Recurse => {
                black_box(recurse(black_box(1)));
            }
            Behaviour::RecurseWithLocals => {
                black_box(recurse_with_locals(black_box(1)));
            }
            Behaviour::HugeReason => findings.deny_request("x".repeat(8 << 20)),
            Behaviour::LoopIfTagIsBoom => {
                if request.changes().iter().any(|change| change.tag == "boom") {
                    spin();
                }
            }
            Behaviour::Chatty => {
                let line = "chatter ".repeat(128);
                for _ in 0..100 {
                    println!("{line}");
                    eprintln!("{line}");
                }
            }
            Behaviour::LeakPerCall => self.leaked.borrow_mut().push(vec![1; 1 << 20]),
            Behaviour::Fail => {
                use tagpolicy_guest::bindings::tagpolicy::policy::{output, verdict};
                output::write("giving up\n");
                verdict::fail(&format!("cannot decide: {}", "why ".repeat(512)));
                findings.deny_request("a denial after failing");
            }
            Behaviour::RefusedGrowThenPanic => {
                if self.calls.get() == 1 {
                    let mut hoard: Vec<u8> = Vec::new();
                    assert!(hoard.try_reserve_exact(1 << 30).is_err(), "1 GiB was granted");
                } else {
                    panic!("an unrelated panic");
                }
            }
            Behaviour::PanicEverySecondCall => {
                if self.calls.get().is_multiple_of(2) {
                    panic!("second call");
                }
            }
        }
        findings.into_decision()
    }
}

fn spin() {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

static NEVER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

/// Small frames, no locals in memory; not a tail call, not an accumulator LLVM could fold.
fn recurse(depth: u64) -> u64 {
    if depth == NEVER.load(std::sync::atomic::Ordering::Relaxed) {
        return 0;
    }
    recurse(depth + 1).wrapping_mul(3) ^ depth
}

#[allow(unconditional_recursion)]
fn recurse_with_locals(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    recurse_with_locals(depth + 1) + frame[(depth % 64) as usize]
}

export_policy!(Hostile);
