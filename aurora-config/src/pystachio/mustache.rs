//! Mustache tags: splitting text into literals, references and escapes, and the iterative,
//! innermost-first resolution of pystachio (`MustacheParser.resolve`).

use std::sync::Arc;

use super::error::{EvalError, InvalidRef};
use super::refs::Ref;

/// Passes after which resolution gives up (pystachio's `MAX_ITERATIONS`).
pub const MAX_ITERATIONS: usize = 100;

/// Text size (bytes) past which resolution gives up. Pystachio has no such limit, so a
/// template that doubles each pass (`a = '{{a}}{{a}}'`) exhausts its memory; we report it as
/// the same `Uninterpolatable` error a cycle gets.
pub const MAX_EXPANSION: usize = 1 << 20;

/// One piece of a split template. Byte ranges point into the template's text.
#[derive(Clone, Debug)]
pub(crate) enum Piece {
    Lit(usize, usize),
    /// `{{&x}}`: the range of `x`.
    Esc(usize, usize),
    Ref(Ref),
}

/// A template parsed once and shared: its pieces and whether it needs any resolution at all.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    pub(crate) pieces: Arc<[Piece]>,
    pub(crate) has_tags: bool,
    pub(crate) has_refs: bool,
    /// Whether a literal piece contains a brace (and so could join substituted text into a
    /// new tag).
    pub(crate) lit_braces: bool,
}

fn has_brace(s: &str) -> bool {
    s.bytes().any(|b| b == b'{' || b == b'}')
}

/// Appends `{{address}}` without building the address string first.
fn push_tag(out: &mut String, r: &Ref) {
    out.push_str("{{");
    for (i, c) in r.components().iter().enumerate() {
        match c {
            super::refs::Component::Deref(v) => {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(v);
            }
            super::refs::Component::Index(v) => {
                out.push('[');
                out.push_str(v);
                out.push(']');
            }
        }
    }
    out.push_str("}}");
}

/// Finds the tag starting at `p` (where `s[p..]` starts with `{{`). Returns (end, is_escape,
/// content range), following the regex `{{(&)?([^{}]+?)\1?}}`.
fn match_tag(b: &[u8], p: usize) -> Option<(usize, bool, usize, usize)> {
    let q0 = p + 2;
    let brace = q0 + b[q0..].iter().position(|&c| c == b'{' || c == b'}')?;
    let closes = b[brace..].starts_with(b"}}");
    if !closes {
        return None;
    }
    if b.get(q0) == Some(&b'&') {
        let c0 = q0 + 1;
        if brace >= c0 + 2 && b[brace - 1] == b'&' {
            return Some((brace + 2, true, c0, brace - 1));
        }
        if brace > c0 {
            return Some((brace + 2, true, c0, brace));
        }
    }
    (brace > q0).then_some((brace + 2, false, q0, brace))
}

/// Splits text into pieces. Fails on the first tag whose content is not a reference.
pub(crate) fn split(s: &str) -> Result<Template, InvalidRef> {
    split_with(s, &mut |c: &str| Ref::parse(c))
}

type TemplateCache = rustc_hash::FxHashMap<Arc<str>, Result<Template, InvalidRef>>;

/// Entries kept by [`split_cached`] before it starts over.
const TEMPLATE_CACHE_SIZE: usize = 4096;

thread_local! {
    static TEMPLATES: std::cell::RefCell<TemplateCache> = std::cell::RefCell::new(TemplateCache::default());
}

/// [`split`] with a per-thread cache keyed by the text, so configs that build many values from
/// the same template text (or rebuild a config) parse each text once. Texts without `{{` are
/// not cached: splitting them is a scan.
pub(crate) fn split_cached(s: &Arc<str>) -> Result<Template, InvalidRef> {
    if find2(s.as_bytes()).is_none() {
        return split(s);
    }
    TEMPLATES.with(|cache| {
        if let Some(t) = cache.borrow().get(s) {
            return t.clone();
        }
        let t = split(s);
        let mut c = cache.borrow_mut();
        if c.len() >= TEMPLATE_CACHE_SIZE {
            c.clear();
        }
        c.insert(s.clone(), t.clone());
        t
    })
}

/// The template of a value's text. A text without `{{` has no tags, and nothing reads the
/// pieces of a template without tags, so such texts share one template with no pieces instead
/// of each allocating its own.
pub(crate) fn template_of(s: &Arc<str>) -> Result<Template, InvalidRef> {
    if find2(s.as_bytes()).is_some() {
        return split_cached(s);
    }
    static PLAIN: std::sync::OnceLock<Arc<[Piece]>> = std::sync::OnceLock::new();
    let pieces = PLAIN.get_or_init(|| Arc::from(Vec::new())).clone();
    Ok(Template {
        pieces,
        has_tags: false,
        has_refs: false,
        lit_braces: has_brace(s),
    })
}

/// Empties this thread's template cache (see [`split_cached`]), so that the next resolution
/// parses every text again: what a process loading its first config pays. Benchmarks call it to
/// measure cold work; nothing else needs it.
pub fn clear_template_cache() {
    TEMPLATES.with(|cache| cache.borrow_mut().clear());
}

/// Whether `content` is exactly the normal address of `r` (so parsing it would give `r`).
fn is_address_of(content: &str, r: &Ref) -> bool {
    let mut rest = content;
    for (i, c) in r.components().iter().enumerate() {
        match c {
            super::refs::Component::Deref(v) => {
                if i > 0 {
                    let Some(x) = rest.strip_prefix('.') else {
                        return false;
                    };
                    rest = x;
                }
                let Some(x) = rest.strip_prefix(&**v) else {
                    return false;
                };
                rest = x;
            }
            super::refs::Component::Index(v) => {
                let Some(x) = rest.strip_prefix('[') else {
                    return false;
                };
                let Some(x) = x.strip_prefix(&**v) else {
                    return false;
                };
                let Some(x) = x.strip_prefix(']') else {
                    return false;
                };
                rest = x;
            }
        }
    }
    rest.is_empty() && !r.components().is_empty()
}

fn split_with(
    s: &str,
    parse: &mut dyn FnMut(&str) -> Result<Ref, InvalidRef>,
) -> Result<Template, InvalidRef> {
    let b = s.as_bytes();
    let mut pieces = Vec::new();
    let (mut lit, mut i) = (0usize, 0usize);
    let (mut has_tags, mut has_refs) = (false, false);
    while let Some(off) = find2(&b[i..]) {
        let p = i + off;
        match match_tag(b, p) {
            Some((end, esc, c0, c1)) => {
                if p > lit {
                    pieces.push(Piece::Lit(lit, p));
                }
                has_tags = true;
                if esc {
                    pieces.push(Piece::Esc(c0, c1));
                } else {
                    has_refs = true;
                    pieces.push(Piece::Ref(parse(&s[c0..c1])?));
                }
                lit = end;
                i = end;
            }
            None => i = p + 1,
        }
    }
    if lit < s.len() {
        pieces.push(Piece::Lit(lit, s.len()));
    }
    let lit_braces = pieces
        .iter()
        .any(|p| matches!(p, Piece::Lit(a, b) if has_brace(&s[*a..*b])));
    Ok(Template {
        pieces: pieces.into(),
        has_tags,
        has_refs,
        lit_braces,
    })
}

fn find2(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i + 1..].iter().position(|&c| c == b'{') {
            None => return None,
            Some(k) => {
                let j = i + 1 + k;
                if b[j - 1] == b'{' {
                    return Some(j - 1);
                }
                i = j;
            }
        }
    }
    None
}

/// Finds and renders what a reference names (`None`: not found).
pub(crate) type Lookup<'a> = dyn FnMut(&Ref) -> Result<Option<Arc<str>>, EvalError> + 'a;

/// The outcome of resolving a template: the text and the references left unbound, in textual
/// order with duplicates.
pub(crate) struct Resolved {
    pub(crate) text: String,
    pub(crate) unbound: Vec<Ref>,
}

/// Renders the final pass: escapes become literal `{{x}}`, unbound refs are normalised.
fn render_final(src: &str, pieces: &[Piece]) -> Resolved {
    let mut text = String::with_capacity(src.len());
    let mut unbound = Vec::new();
    for p in pieces {
        match p {
            Piece::Lit(a, b) => text.push_str(&src[*a..*b]),
            Piece::Esc(a, b) => {
                text.push_str("{{");
                text.push_str(&src[*a..*b]);
                text.push_str("}}");
            }
            Piece::Ref(r) => {
                push_tag(&mut text, r);
                unbound.push(r.clone());
            }
        }
    }
    Resolved { text, unbound }
}

/// The final text of a pass whose substitutions cannot form new tags: resolved refs replaced,
/// unresolved refs normalised and reported, escapes turned into literal tags.
fn finish_from(src: &str, pieces: &[Piece], cache: &[(Ref, Option<Arc<str>>)]) -> Resolved {
    let mut text = String::with_capacity(src.len() + 16);
    let mut unbound = Vec::new();
    for p in pieces {
        match p {
            Piece::Lit(a, b) => text.push_str(&src[*a..*b]),
            Piece::Esc(a, b) => {
                text.push_str("{{");
                text.push_str(&src[*a..*b]);
                text.push_str("}}");
            }
            Piece::Ref(r) => match cache
                .iter()
                .find(|(k, _)| k == r)
                .and_then(|(_, v)| v.as_ref())
            {
                Some(v) => text.push_str(v),
                None => {
                    push_tag(&mut text, r);
                    unbound.push(r.clone());
                }
            },
        }
    }
    Resolved { text, unbound }
}

/// What a pass found for `r` (`None`: not found or not looked up).
fn cached<'a>(cache: &'a [(Ref, Option<Arc<str>>)], r: &Ref) -> Option<&'a Arc<str>> {
    cache
        .iter()
        .find(|(k, _)| k == r)
        .and_then(|(_, v)| v.as_ref())
}

/// The length of `push_tag`'s rendering of `r`.
fn tag_len(r: &Ref) -> usize {
    let inner: usize = r
        .components()
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            super::refs::Component::Deref(v) => v.len() + usize::from(i > 0),
            super::refs::Component::Index(v) => v.len() + 2,
        })
        .sum();
    inner + 4
}

/// The pieces of the text a pass wrote over `pieces` (with `cache` holding what each ref
/// became), derived without splitting that text again; `None` when a substituted value has
/// braces outside complete tags, so only splitting the text can tell its pieces.
fn next_pieces(pieces: &[Piece], cache: &[(Ref, Option<Arc<str>>)]) -> Option<Vec<Piece>> {
    let mut next = Vec::with_capacity(pieces.len() + 4);
    let mut base = 0;
    for p in pieces {
        match p {
            Piece::Lit(a, b) => {
                next.push(Piece::Lit(base, base + (b - a)));
                base += b - a;
            }
            Piece::Esc(a, b) => {
                let start = base + 3;
                next.push(Piece::Esc(start, start + (b - a)));
                base = start + (b - a) + 2;
            }
            Piece::Ref(r) => match cached(cache, r) {
                Some(t) => {
                    if !has_brace(t) {
                        next.push(Piece::Lit(base, base + t.len()));
                    } else {
                        let sub = split_cached(t).ok().filter(|sub| !sub.lit_braces)?;
                        next.extend(sub.pieces.iter().map(|q| match q {
                            Piece::Lit(a, b) => Piece::Lit(base + a, base + b),
                            Piece::Esc(a, b) => Piece::Esc(base + a, base + b),
                            Piece::Ref(r) => Piece::Ref(r.clone()),
                        }));
                    }
                    base += t.len();
                }
                None => {
                    next.push(Piece::Ref(r.clone()));
                    base += tag_len(r);
                }
            },
        }
    }
    Some(next)
}

/// Resolves a template iteratively: each pass substitutes every reference the lookup finds,
/// and the substituted text is split again, until a pass finds nothing. The lookup returns the
/// rendered text of what a reference names; its results are cached for the whole call.
pub(crate) fn resolve(
    src: &str,
    tpl: &Template,
    lookup: &mut Lookup<'_>,
) -> Result<Resolved, EvalError> {
    if !tpl.has_refs {
        return Ok(render_final(src, &tpl.pieces));
    }
    let mut cache: Vec<(Ref, Option<Arc<str>>)> = Vec::with_capacity(tpl.pieces.len());
    let mut cur: std::borrow::Cow<'_, str> = std::borrow::Cow::Borrowed(src);
    let mut pieces: Arc<[Piece]> = tpl.pieces.clone();
    let mut lit_braces = tpl.lit_braces;
    for pass in 0..MAX_ITERATIONS {
        let mut out = String::with_capacity(cur.len() + 64);
        let mut progress = false;
        let mut value_braces = false;
        let mut unresolved = false;
        for p in pieces.iter() {
            match p {
                Piece::Lit(a, b) => out.push_str(&cur[*a..*b]),
                Piece::Esc(a, b) => {
                    out.push_str("{{&");
                    out.push_str(&cur[*a..*b]);
                    out.push_str("}}");
                }
                Piece::Ref(r) => {
                    let at = match cache.iter().position(|(k, _)| k == r) {
                        Some(at) => at,
                        None => {
                            let v = lookup(r)?;
                            cache.push((r.clone(), v));
                            cache.len() - 1
                        }
                    };
                    match &cache[at].1 {
                        Some(t) => {
                            progress = true;
                            value_braces |= has_brace(t);
                            out.push_str(t);
                        }
                        None => {
                            unresolved = true;
                            push_tag(&mut out, r);
                        }
                    }
                }
            }
        }
        if !progress {
            return Ok(render_final(&cur, &pieces));
        }
        if pass + 1 == MAX_ITERATIONS {
            return Err(EvalError::Uninterpolatable(out));
        }
        if out.len() > MAX_EXPANSION {
            let mut end = MAX_EXPANSION;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            return Err(EvalError::Uninterpolatable(out));
        }
        if !lit_braces && !value_braces {
            // No brace anywhere but in this pass's own tags: the next pass would see exactly
            // the unresolved refs again (cached misses) and stop, so finish now.
            let escapes = pieces.iter().any(|p| matches!(p, Piece::Esc(..)));
            if escapes {
                return Ok(finish_from(&cur, &pieces, &cache));
            }
            // Without escapes, this pass's text is the final text: only the refs left are
            // to report, in textual order.
            let unbound = if unresolved {
                pieces
                    .iter()
                    .filter_map(|p| match p {
                        Piece::Ref(r) if cached(&cache, r).is_none() => Some(r.clone()),
                        _ => None,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            return Ok(Resolved { text: out, unbound });
        }
        // When every brace sits inside a complete tag of its own piece, splitting the joined
        // text gives the pieces' splits joined, so the text need not be scanned and parsed
        // again.
        if !lit_braces && let Some(next) = next_pieces(&pieces, &cache) {
            let has_refs = next.iter().any(|p| matches!(p, Piece::Ref(_)));
            if !has_refs {
                return Ok(render_final(&out, &next));
            }
            pieces = next.into();
            lit_braces = false;
            cur = std::borrow::Cow::Owned(out);
            continue;
        }
        // Tags seen before need no parsing again.
        let t = split_with(&out, &mut |c: &str| match cache
            .iter()
            .find(|(r, _)| is_address_of(c, r))
        {
            Some((r, _)) => Ok(r.clone()),
            None => Ref::parse(c),
        })?;
        if !t.has_refs {
            return Ok(render_final(&out, &t.pieces));
        }
        lit_braces = t.lit_braces;
        pieces = t.pieces;
        cur = std::borrow::Cow::Owned(out);
    }
    Err(EvalError::Uninterpolatable(cur.into_owned()))
}

/// One piece of a template as [`segments`] returns it: literal text, or a reference to
/// substitute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Literal text. An escape `{{&x}}` is its own segment: `{{x}}`, or `{{&x}}` when escapes
    /// are kept for a later pass.
    Text(String),
    /// A `{{reference}}`.
    Ref(Ref),
}

/// Splits a template into literal text and references, dropping empty text. With
/// `keep_escapes`, an escape stays `{{&x}}` (so substituting and splitting again still sees an
/// escape); otherwise it becomes the literal `{{x}}`. Fails on the first tag whose content is
/// not a reference.
///
/// ```
/// use aurora_config::pystachio::{Ref, Segment, segments};
/// let got = segments("x {{a.b}} {{&c}}", false).unwrap();
/// assert_eq!(got, vec![
///     Segment::Text("x ".into()),
///     Segment::Ref(Ref::parse("a.b").unwrap()),
///     Segment::Text(" ".into()),
///     Segment::Text("{{c}}".into()),
/// ]);
/// ```
pub fn segments(text: &str, keep_escapes: bool) -> Result<Vec<Segment>, InvalidRef> {
    let tpl = split(text)?;
    let escape_open = if keep_escapes { "{{&" } else { "{{" };
    Ok(tpl
        .pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(a, b) => Segment::Text(text[*a..*b].to_string()),
            Piece::Esc(a, b) => Segment::Text(format!("{escape_open}{}}}}}", &text[*a..*b])),
            Piece::Ref(r) => Segment::Ref(r.clone()),
        })
        .collect())
}

/// Renders segments in one pass: each reference is replaced by what `lookup` returns for it,
/// or kept as its tag when `lookup` finds nothing. `lookup` gets the segment's position too, so
/// a caller can map it back to its own reference object. Returns the text and the positions of
/// the references left unresolved, in order.
pub fn join_segments<E>(
    segments: &[Segment],
    mut lookup: impl FnMut(usize, &Ref) -> Result<Option<String>, E>,
) -> Result<(String, Vec<usize>), E> {
    let mut text = String::new();
    let mut unresolved = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        match s {
            Segment::Text(t) => text.push_str(t),
            Segment::Ref(r) => match lookup(i, r)? {
                Some(found) => text.push_str(&found),
                None => {
                    push_tag(&mut text, r);
                    unresolved.push(i);
                }
            },
        }
    }
    Ok((text, unresolved))
}

/// Why [`resolve_text`] failed: the template itself, or the caller's lookup.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError<E> {
    /// A bad tag, or substitution that never settles.
    #[error(transparent)]
    Eval(EvalError),
    /// The lookup failed.
    #[error("looking a reference up failed: {0}")]
    Lookup(E),
}

/// Resolves a template the way values interpolate their strings (innermost tags first,
/// substituted text read again, escapes turned into literal tags at the end), looking
/// references up with `lookup`, which returns the text to substitute. Each reference is looked
/// up once per call. Returns the text and the references left unbound, in textual order.
///
/// ```
/// use aurora_config::pystachio::{Ref, resolve_text};
/// let (text, unbound) = resolve_text::<()>("{{a}} {{b}}", |r| {
///     Ok((r.address() == "a").then(|| "{{c}}!".to_string()))
/// }).unwrap();
/// assert_eq!(text, "{{c}}! {{b}}");
/// assert_eq!(unbound, vec![Ref::parse("c").unwrap(), Ref::parse("b").unwrap()]);
/// ```
pub fn resolve_text<E>(
    text: &str,
    mut lookup: impl FnMut(&Ref) -> Result<Option<String>, E>,
) -> Result<(String, Vec<Ref>), ResolveError<E>> {
    let tpl = split(text).map_err(|e| ResolveError::Eval(e.into()))?;
    // The engine's lookup speaks EvalError; a failed caller lookup is kept aside and stops
    // resolution through a placeholder error that is never shown.
    let mut failed = None;
    let res = resolve(text, &tpl, &mut |r: &Ref| match lookup(r) {
        Ok(found) => Ok(found.map(Arc::from)),
        Err(e) => {
            failed = Some(e);
            Err(EvalError::Coercion(String::new()))
        }
    });
    match (res, failed) {
        (_, Some(e)) => Err(ResolveError::Lookup(e)),
        (Ok(r), None) => Ok((r.text, r.unbound)),
        (Err(e), None) => Err(ResolveError::Eval(e)),
    }
}

#[cfg(test)]
mod next_pass_tests {
    use super::*;

    /// Renders one pass the way `resolve` does, for comparing with `next_pieces`.
    fn pass(src: &str, pieces: &[Piece], cache: &[(Ref, Option<Arc<str>>)]) -> String {
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Lit(a, b) => out.push_str(&src[*a..*b]),
                Piece::Esc(a, b) => {
                    out.push_str("{{&");
                    out.push_str(&src[*a..*b]);
                    out.push_str("}}");
                }
                Piece::Ref(r) => match cached(cache, r) {
                    Some(t) => out.push_str(t),
                    None => push_tag(&mut out, r),
                },
            }
        }
        out
    }

    #[test]
    fn derived_pieces_are_the_split_of_the_written_text() {
        let src = "a {{x}} b {{&esc}} {{y.z[1]}} {{w}}-{{x}}";
        let tpl = split(src).unwrap();
        let bound = |name: &str, v: Option<&str>| (Ref::parse(name).unwrap(), v.map(Arc::from));
        let cache = vec![
            bound("x", Some("{{p.q}}!")),
            bound("y.z[1]", None),
            bound("w", Some("plain")),
        ];
        let out = pass(src, &tpl.pieces, &cache);
        assert_eq!(out, "a {{p.q}}! b {{&esc}} {{y.z[1]}} plain-{{p.q}}!");
        let derived = next_pieces(&tpl.pieces, &cache).unwrap();
        let split_again = split(&out).unwrap();
        // The derived pieces may cut literal text where the split does not; what each piece
        // covers must agree.
        let text = |ps: &[Piece]| -> Vec<String> {
            ps.iter()
                .map(|p| match p {
                    Piece::Lit(a, b) => format!("lit {}", &out[*a..*b]),
                    Piece::Esc(a, b) => format!("esc {}", &out[*a..*b]),
                    Piece::Ref(r) => format!("ref {}", r.address()),
                })
                .collect()
        };
        let joined = |v: Vec<String>| {
            let mut merged: Vec<String> = Vec::new();
            for s in v {
                match (merged.last_mut(), s.strip_prefix("lit ")) {
                    (Some(last), Some(rest)) if last.starts_with("lit ") => last.push_str(rest),
                    _ => merged.push(s),
                }
            }
            merged
        };
        assert_eq!(joined(text(&derived)), joined(text(&split_again.pieces)));
        // A value with a brace outside a tag can only be split.
        let odd = vec![
            bound("x", Some("{ {{q}")),
            bound("y.z[1]", None),
            bound("w", None),
        ];
        assert!(next_pieces(&tpl.pieces, &odd).is_none());
    }
}
