//! Reference patterns: which references start with a given shape. Aurora's binding helpers
//! look for references such as `{{docker[<name>][<tag>]}}` this way and bind each one found.
//!
//! A pattern is a sequence of steps, each a component kind (`.name` or `[index]`) and a test
//! of the component's text. The test is opaque here (the Python binding uses Python regular
//! expressions, so patterns keep Python's regex dialect), and callers pass the function that
//! applies it.

use std::sync::Arc;

use super::refs::{Component, Ref};

/// One step of a [`RefPattern`]: the kind of component it accepts and the test its text
/// must pass.
#[derive(Clone, Debug)]
pub struct PatternStep<T> {
    /// `true` for `[index]`, `false` for `.name`.
    pub index: bool,
    /// The test of the component's text.
    pub test: T,
}

/// A pattern over the first components of references.
///
/// ```
/// use aurora_config::pystachio::{Ref, RefPattern};
/// let p = RefPattern::default().then(false, "packer").then(true, "*");
/// let test = |want: &&str, have: &str| Ok::<_, ()>(*want == "*" || *want == have);
/// let r = Ref::parse("packer[web].image").unwrap();
/// let values = p.prefix_of(&r, test).unwrap().unwrap();
/// assert_eq!(values.iter().map(|v| &**v).collect::<Vec<_>>(), ["packer", "web"]);
/// assert_eq!(p.reference(&values).address(), "packer[web]");
/// assert!(p.prefix_of(&Ref::parse("packer.web").unwrap(), test).unwrap().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct RefPattern<T> {
    steps: Arc<[PatternStep<T>]>,
}

impl<T> Default for RefPattern<T> {
    /// The empty pattern, which every reference follows.
    fn default() -> Self {
        RefPattern {
            steps: Arc::from(Vec::new()),
        }
    }
}

impl<T: Clone> RefPattern<T> {
    /// A longer pattern: these steps, then one more. The original is unchanged.
    pub fn then(&self, index: bool, test: T) -> RefPattern<T> {
        let mut steps = self.steps.to_vec();
        steps.push(PatternStep { index, test });
        RefPattern {
            steps: steps.into(),
        }
    }
}

impl<T> RefPattern<T> {
    /// The steps, in order.
    pub fn steps(&self) -> &[PatternStep<T>] {
        &self.steps
    }

    /// The texts of the components of `r` that the pattern covers, when `r` follows it: at
    /// least as many components as steps, each of the step's kind and passing its test.
    pub fn prefix_of<E>(
        &self,
        r: &Ref,
        mut test: impl FnMut(&T, &str) -> Result<bool, E>,
    ) -> Result<Option<Vec<Arc<str>>>, E> {
        let components = r.components();
        if components.len() < self.steps.len() {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(self.steps.len());
        for (step, c) in self.steps.iter().zip(components) {
            let (index, text) = match c {
                Component::Index(v) => (true, v),
                Component::Deref(v) => (false, v),
            };
            if index != step.index || !test(&step.test, text)? {
                return Ok(None);
            }
            values.push(text.clone());
        }
        Ok(Some(values))
    }

    /// The reference a match stands for: the pattern's component kinds with `values`.
    pub fn reference(&self, values: &[Arc<str>]) -> Ref {
        Ref::from_components(
            self.steps
                .iter()
                .zip(values)
                .map(|(step, v)| {
                    if step.index {
                        Component::Index(v.clone())
                    } else {
                        Component::Deref(v.clone())
                    }
                })
                .collect(),
        )
    }
}
