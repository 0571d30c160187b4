//! Client hooks: code that runs before and after the API calls that change a job, as the
//! original client's hooked API did.
//!
//! A hook implements [`ClientHook`]. For each hooked method `m` it may override `pre_m`
//! (return `false` to stop the call), `post_m` (sees the result) and `err_m` (sees the error);
//! every method it leaves alone falls back to [`ClientHook::generic_hook`], whose default does
//! nothing and lets the call proceed. [`HookedCall::run`] drives a list of hooks around one
//! call: all pre hooks run, any `false` stops the call, then post or err hooks run and cannot
//! change the outcome.

use std::fmt;

use aurora_core::JobKey;
use serde_json::{Map, Value};

/// The API methods hooks can wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookedMethod {
    /// `create_job(config, lock)`.
    CreateJob,
    /// `kill_job(job_key, instances=, lock=, config=)`.
    KillJob,
    /// `restart(job_key, shards, updater_config, health_check_interval_seconds, config=)`.
    Restart,
    /// `update_job(config, health_check_interval_seconds=, instances=)`.
    UpdateJob,
    /// `cancel_update(job_key, config=)`.
    CancelUpdate,
}

impl HookedMethod {
    /// The method's name as hooks see it, e.g. `create_job`.
    pub fn name(self) -> &'static str {
        match self {
            HookedMethod::CreateJob => "create_job",
            HookedMethod::KillJob => "kill_job",
            HookedMethod::Restart => "restart",
            HookedMethod::UpdateJob => "update_job",
            HookedMethod::CancelUpdate => "cancel_update",
        }
    }
}

/// When a hook runs relative to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    /// Before the call; may stop it.
    Pre,
    /// After a successful call.
    Post,
    /// After a failed call.
    Err,
}

impl HookEvent {
    /// The event's name as the original passes it to `generic_hook`: `pre`, `post` or `err`.
    pub fn name(self) -> &'static str {
        match self {
            HookEvent::Pre => "pre",
            HookEvent::Post => "post",
            HookEvent::Err => "err",
        }
    }
}

/// One call as hooks see it: the method, the job, the config and the call's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct HookCall {
    /// The method called.
    pub method: HookedMethod,
    /// The job it acts on.
    pub job_key: JobKey,
    /// The job config (its `raw_json` form), when the command had one.
    pub config: Option<Value>,
    /// The positional arguments, as the original API received them.
    pub args: Vec<Value>,
    /// The keyword arguments.
    pub kwargs: Map<String, Value>,
}

/// What a post or err hook sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HookOutcome<'a> {
    /// Nothing yet (pre hooks).
    Pending,
    /// The call's result.
    Result(&'a Value),
    /// The call's error message.
    Error(&'a str),
}

/// A client hook. Every method has a default that defers to [`ClientHook::generic_hook`].
pub trait ClientHook {
    /// A name for messages (e.g. the Python class name).
    fn name(&self) -> String {
        "hook".to_owned()
    }

    /// Called for every event the hook does not handle with a specific method. For `Pre`,
    /// returning `false` stops the call; for `Post` and `Err` the return value is ignored.
    fn generic_hook(&self, call: &HookCall, event: HookEvent, outcome: HookOutcome<'_>) -> bool {
        let _ = (call, event, outcome);
        true
    }

    /// Before `create_job`.
    fn pre_create_job(&self, call: &HookCall) -> bool {
        self.generic_hook(call, HookEvent::Pre, HookOutcome::Pending)
    }
    /// After a successful `create_job`.
    fn post_create_job(&self, call: &HookCall, result: &Value) {
        self.generic_hook(call, HookEvent::Post, HookOutcome::Result(result));
    }
    /// After a failed `create_job`.
    fn err_create_job(&self, call: &HookCall, error: &str) {
        self.generic_hook(call, HookEvent::Err, HookOutcome::Error(error));
    }
    /// Before `kill_job`.
    fn pre_kill_job(&self, call: &HookCall) -> bool {
        self.generic_hook(call, HookEvent::Pre, HookOutcome::Pending)
    }
    /// After a successful `kill_job`.
    fn post_kill_job(&self, call: &HookCall, result: &Value) {
        self.generic_hook(call, HookEvent::Post, HookOutcome::Result(result));
    }
    /// After a failed `kill_job`.
    fn err_kill_job(&self, call: &HookCall, error: &str) {
        self.generic_hook(call, HookEvent::Err, HookOutcome::Error(error));
    }
    /// Before `restart`.
    fn pre_restart(&self, call: &HookCall) -> bool {
        self.generic_hook(call, HookEvent::Pre, HookOutcome::Pending)
    }
    /// After a successful `restart`.
    fn post_restart(&self, call: &HookCall, result: &Value) {
        self.generic_hook(call, HookEvent::Post, HookOutcome::Result(result));
    }
    /// After a failed `restart`.
    fn err_restart(&self, call: &HookCall, error: &str) {
        self.generic_hook(call, HookEvent::Err, HookOutcome::Error(error));
    }
    /// Before `update_job`.
    fn pre_update_job(&self, call: &HookCall) -> bool {
        self.generic_hook(call, HookEvent::Pre, HookOutcome::Pending)
    }
    /// After a successful `update_job`.
    fn post_update_job(&self, call: &HookCall, result: &Value) {
        self.generic_hook(call, HookEvent::Post, HookOutcome::Result(result));
    }
    /// After a failed `update_job`.
    fn err_update_job(&self, call: &HookCall, error: &str) {
        self.generic_hook(call, HookEvent::Err, HookOutcome::Error(error));
    }
    /// Before `cancel_update`.
    fn pre_cancel_update(&self, call: &HookCall) -> bool {
        self.generic_hook(call, HookEvent::Pre, HookOutcome::Pending)
    }
    /// After a successful `cancel_update`.
    fn post_cancel_update(&self, call: &HookCall, result: &Value) {
        self.generic_hook(call, HookEvent::Post, HookOutcome::Result(result));
    }
    /// After a failed `cancel_update`.
    fn err_cancel_update(&self, call: &HookCall, error: &str) {
        self.generic_hook(call, HookEvent::Err, HookOutcome::Error(error));
    }
}

fn pre(hook: &dyn ClientHook, call: &HookCall) -> bool {
    match call.method {
        HookedMethod::CreateJob => hook.pre_create_job(call),
        HookedMethod::KillJob => hook.pre_kill_job(call),
        HookedMethod::Restart => hook.pre_restart(call),
        HookedMethod::UpdateJob => hook.pre_update_job(call),
        HookedMethod::CancelUpdate => hook.pre_cancel_update(call),
    }
}

fn post(hook: &dyn ClientHook, call: &HookCall, result: &Value) {
    match call.method {
        HookedMethod::CreateJob => hook.post_create_job(call, result),
        HookedMethod::KillJob => hook.post_kill_job(call, result),
        HookedMethod::Restart => hook.post_restart(call, result),
        HookedMethod::UpdateJob => hook.post_update_job(call, result),
        HookedMethod::CancelUpdate => hook.post_cancel_update(call, result),
    }
}

fn err(hook: &dyn ClientHook, call: &HookCall, error: &str) {
    match call.method {
        HookedMethod::CreateJob => hook.err_create_job(call, error),
        HookedMethod::KillJob => hook.err_kill_job(call, error),
        HookedMethod::Restart => hook.err_restart(call, error),
        HookedMethod::UpdateJob => hook.err_update_job(call, error),
        HookedMethod::CancelUpdate => hook.err_cancel_update(call, error),
    }
}

/// A call that pre hooks stopped, or that failed.
#[derive(Debug, thiserror::Error)]
pub enum HookedError<E> {
    /// A pre hook returned false.
    #[error("{method} of {job_key} stopped by pre hook(s): {hooks}")]
    Stopped {
        /// The method.
        method: &'static str,
        /// The job.
        job_key: Box<JobKey>,
        /// The hooks that said no.
        hooks: String,
    },
    /// The call itself failed.
    #[error(transparent)]
    Call(E),
}

/// Runs hooks around one API call.
pub struct HookedCall<'a> {
    hooks: &'a [Box<dyn ClientHook + 'a>],
    call: HookCall,
}

impl fmt::Debug for HookedCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookedCall")
            .field("hooks", &self.hooks.len())
            .field("call", &self.call)
            .finish()
    }
}

impl<'a> HookedCall<'a> {
    /// Prepares `call` to run under `hooks`.
    pub fn new(hooks: &'a [Box<dyn ClientHook + 'a>], call: HookCall) -> HookedCall<'a> {
        HookedCall { hooks, call }
    }

    /// Runs every pre hook, then `f` unless one said no, then the post or err hooks.
    pub fn run<E: fmt::Display>(
        self,
        f: impl FnOnce() -> Result<Value, E>,
    ) -> Result<Value, HookedError<E>> {
        // Every pre hook runs, even after one has said no, as in the original.
        let refused: Vec<String> = self
            .hooks
            .iter()
            .filter(|h| !pre(h.as_ref(), &self.call))
            .map(|h| h.name())
            .collect();
        if !refused.is_empty() {
            return Err(HookedError::Stopped {
                method: self.call.method.name(),
                job_key: Box::new(self.call.job_key.clone()),
                hooks: refused.join(", "),
            });
        }
        match f() {
            Ok(result) => {
                for hook in self.hooks {
                    post(hook.as_ref(), &self.call, &result);
                }
                Ok(result)
            }
            Err(e) => {
                let message = e.to_string();
                for hook in self.hooks {
                    err(hook.as_ref(), &self.call, &message);
                }
                Err(HookedError::Call(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Recorder {
        log: RefCell<Vec<String>>,
        refuse_kill: bool,
    }

    impl ClientHook for Recorder {
        fn name(&self) -> String {
            "Recorder".into()
        }
        fn generic_hook(
            &self,
            call: &HookCall,
            event: HookEvent,
            outcome: HookOutcome<'_>,
        ) -> bool {
            self.log.borrow_mut().push(format!(
                "generic {} {} {outcome:?}",
                event.name(),
                call.method.name()
            ));
            true
        }
        fn pre_kill_job(&self, _call: &HookCall) -> bool {
            self.log.borrow_mut().push("pre_kill_job".into());
            !self.refuse_kill
        }
    }

    fn call(method: HookedMethod) -> HookCall {
        HookCall {
            method,
            job_key: "c/r/prod/j".parse().unwrap(),
            config: None,
            args: vec![],
            kwargs: Map::new(),
        }
    }

    #[test]
    fn specific_methods_win_and_the_rest_go_generic() {
        let hook = Recorder::default();
        let hooks: Vec<Box<dyn ClientHook + '_>> = vec![Box::new(&hook)];
        let result = HookedCall::new(&hooks, call(HookedMethod::KillJob))
            .run(|| Ok::<_, String>(Value::from(1)));
        assert_eq!(result.unwrap(), Value::from(1));
        assert_eq!(
            *hook.log.borrow(),
            ["pre_kill_job", "generic post kill_job Result(Number(1))"]
        );
    }

    #[test]
    fn a_refusing_pre_hook_stops_the_call_after_all_pre_hooks_ran() {
        let first = Recorder {
            refuse_kill: true,
            ..Default::default()
        };
        let second = Recorder::default();
        let hooks: Vec<Box<dyn ClientHook + '_>> = vec![Box::new(&first), Box::new(&second)];
        let mut ran = false;
        let result = HookedCall::new(&hooks, call(HookedMethod::KillJob)).run(|| {
            ran = true;
            Ok::<_, String>(Value::Null)
        });
        assert!(!ran, "the call must not run");
        let message = result.unwrap_err().to_string();
        assert_eq!(
            message,
            "kill_job of c/r/prod/j stopped by pre hook(s): Recorder"
        );
        assert_eq!(*second.log.borrow(), ["pre_kill_job"]);
    }

    #[test]
    fn post_and_err_see_the_outcome() {
        let hook = Recorder::default();
        let hooks: Vec<Box<dyn ClientHook + '_>> = vec![Box::new(&hook)];
        let _ = HookedCall::new(&hooks, call(HookedMethod::CreateJob))
            .run(|| Ok::<_, String>(Value::from("ok")));
        let _ =
            HookedCall::new(&hooks, call(HookedMethod::Restart)).run(|| Err::<Value, _>("down"));
        assert_eq!(
            *hook.log.borrow(),
            [
                "generic pre create_job Pending",
                "generic post create_job Result(String(\"ok\"))",
                "generic pre restart Pending",
                "generic err restart Error(\"down\")",
            ]
        );
    }

    impl<T: ClientHook + ?Sized> ClientHook for &T {
        fn name(&self) -> String {
            (**self).name()
        }
        fn generic_hook(
            &self,
            call: &HookCall,
            event: HookEvent,
            outcome: HookOutcome<'_>,
        ) -> bool {
            (**self).generic_hook(call, event, outcome)
        }
        fn pre_kill_job(&self, call: &HookCall) -> bool {
            (**self).pre_kill_job(call)
        }
    }
}
