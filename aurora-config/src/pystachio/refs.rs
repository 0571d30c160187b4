//! References (`a.b[c].d`): the names a mustache tag or a binding points at.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use super::error::InvalidRef;
use super::pyfmt::py_repr_str;

/// One step of a [`Ref`]: `.name` (a dereference) or `[value]` (an index).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    /// `.name`: a field of a struct or a key of an environment.
    Deref(Arc<str>),
    /// `[value]`: an element of a list or a map.
    Index(Arc<str>),
}

impl Component {
    /// The raw text of the component, without its `.` or brackets.
    pub fn value(&self) -> &str {
        match self {
            Component::Deref(v) | Component::Index(v) => v,
        }
    }

    /// Whether this is `.name`.
    pub fn is_deref(&self) -> bool {
        matches!(self, Component::Deref(_))
    }

    pub(crate) fn is_deref_named(&self, name: &str) -> bool {
        matches!(self, Component::Deref(v) if &**v == name)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Deref(v) => write!(f, ".{v}"),
            Component::Index(v) => write!(f, "[{v}]"),
        }
    }
}

/// A parsed reference such as `profile.instances` or `thermos.ports[http]`.
///
/// Equality and hashing use the components, so `a` equals `.a` but `a.b` differs from `a[b]`.
///
/// ```
/// use aurora_config::pystachio::Ref;
/// let r = Ref::parse("thermos.ports[http]").unwrap();
/// assert_eq!(r.address(), "thermos.ports[http]");
/// assert_eq!(r.to_string(), "{{thermos.ports[http]}}");
/// assert!(Ref::parse("1abc").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ref(Arc<[Component]>);

impl Borrow<[Component]> for Ref {
    fn borrow(&self) -> &[Component] {
        &self.0
    }
}

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Ref {
    /// Parses an address with pystachio's grammar: components `.ident` or `[index]`, where a
    /// leading identifier may omit its dot. Errors carry pystachio's messages.
    pub fn parse(address: &str) -> Result<Ref, InvalidRef> {
        if address.is_empty() {
            return Err(InvalidRef(format!(
                "Invalid address: {}",
                py_repr_str(address)
            )));
        }
        // A leading identifier is read as if a `.` preceded it.
        let implicit_dot = !(address.starts_with('[') || address.starts_with('.'));
        if implicit_dot {
            let first = address.chars().next().unwrap_or(' ');
            if !(first.is_ascii_alphabetic() || first == '_') {
                return Err(InvalidRef(address.to_string()));
            }
        }
        let bad = || {
            let dot = if implicit_dot { "." } else { "" };
            InvalidRef(format!("Badly formed address {dot}{address}"))
        };
        let mut comps = Vec::with_capacity(2);
        let mut rest = address;
        let mut first = implicit_dot;
        while !rest.is_empty() {
            let deref = if first {
                Some(rest)
            } else {
                rest.strip_prefix('.')
            };
            first = false;
            if let Some(after) = deref {
                match after.chars().next() {
                    Some(c) if is_word(c) && !c.is_numeric() => {}
                    _ => return Err(bad()),
                }
                let end = after
                    .char_indices()
                    .find(|&(_, c)| !is_word(c))
                    .map_or(after.len(), |(i, _)| i);
                comps.push(Component::Deref(Arc::from(&after[..end])));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after
                    .char_indices()
                    .find(|&(_, c)| !(is_word(c) || c == '-' || c == '.' || c == '/'))
                    .map_or(after.len(), |(i, _)| i);
                if end == 0 || !after[end..].starts_with(']') {
                    return Err(bad());
                }
                comps.push(Component::Index(Arc::from(&after[..end])));
                rest = &after[end + 1..];
            } else {
                return Err(bad());
            }
        }
        Ok(Ref(comps.into()))
    }

    /// Builds a reference from components.
    pub fn from_components(components: Vec<Component>) -> Ref {
        Ref(components.into())
    }

    /// The components, in order.
    pub fn components(&self) -> &[Component] {
        &self.0
    }

    /// The address in normal form: component reprs joined, one leading `.` stripped.
    pub fn address(&self) -> String {
        address_of(&self.0)
    }

    /// The remainder of `other` when `self` is a strict prefix of it.
    pub fn subscope(&self, other: &Ref) -> Option<Ref> {
        let (a, b) = (&self.0, &other.0);
        (b.len() > a.len() && b[..a.len()] == a[..]).then(|| Ref(b[a.len()..].into()))
    }

    /// Concatenates two references.
    pub fn join(&self, other: &Ref) -> Ref {
        Ref(self.0.iter().chain(other.0.iter()).cloned().collect())
    }
}

pub(crate) fn address_of(comps: &[Component]) -> String {
    let mut s = String::new();
    for c in comps {
        match c {
            Component::Deref(v) => {
                s.push('.');
                s.push_str(v);
            }
            Component::Index(v) => {
                s.push('[');
                s.push_str(v);
                s.push(']');
            }
        }
    }
    if s.starts_with('.') {
        s.remove(0);
    }
    s
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{{}}}}}", self.address())
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref({})", self.address())
    }
}

impl PartialOrd for Ref {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ref {
    /// Orders by number of components, then by component values (pystachio's order), with the
    /// component kind as a final tie-break so that the order agrees with equality.
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| {
            for (a, b) in self.0.iter().zip(other.0.iter()) {
                let o = a
                    .value()
                    .cmp(b.value())
                    .then(a.is_deref().cmp(&b.is_deref()));
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(addr: &str, expect: Result<&str, &str>) {
        let got = Ref::parse(addr).map(|r| format!("{r:?}")).map_err(|e| e.0);
        assert_eq!(got.as_deref().map_err(|e| e.as_ref()), expect, "{addr}");
    }

    #[test]
    fn grammar() {
        check("a", Ok("Ref(a)"));
        check(".a", Ok("Ref(a)"));
        check("a.b[c].d", Ok("Ref(a.b[c].d)"));
        check("[0]", Ok("Ref([0])"));
        check("a[2.0.a_c/d-e]", Ok("Ref(a[2.0.a_c/d-e])"));
        check("a[-1]", Ok("Ref(a[-1])"));
        check("_x1", Ok("Ref(_x1)"));
        check("", Err("Invalid address: ''"));
        check("1a", Err("1a"));
        check("#x", Err("#x"));
        check("&a", Err("&a"));
        check("été", Err("été"));
        check(" x ", Err(" x "));
        check("a b", Err("Badly formed address .a b"));
        check("a.1", Err("Badly formed address .a.1"));
        check("a[]", Err("Badly formed address .a[]"));
        check("a[b]c", Err("Badly formed address .a[b]c"));
        check("a..b", Err("Badly formed address .a..b"));
        check("a.é", Ok("Ref(a.é)"));
    }

    #[test]
    fn equality_order_subscope() {
        let p = |s| Ref::parse(s).unwrap();
        assert_eq!(p("a"), p(".a"));
        assert_ne!(p("a.b"), p("a[b]"));
        assert!(p("z") < p("a.b"));
        assert!(p("a.b") < p("a.c"));
        assert_eq!(p("a").subscope(&p("a.b.c")), Some(p("b.c")));
        assert_eq!(p("a.b").subscope(&p("a.b")), None);
        assert_eq!(p("a").join(&p("[0]")).address(), "a[0]");
        assert_eq!(p("[0].x").address(), "[0].x");
    }
}
