//! Instance sets such as `0-2,5,7-9`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Why an instance set could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceSetError {
    /// The whole text, or one comma-separated part, is empty.
    #[error("instance set {input:?} has an empty part; write ids like 0-2,5,7-9")]
    EmptyPart {
        /// The text that was parsed.
        input: String,
    },
    /// A part is not a non-negative integer.
    #[error("instance set {input:?}: {part:?} is not an instance id (a number from 0)")]
    NotANumber {
        /// The text that was parsed.
        input: String,
        /// The offending part.
        part: String,
    },
    /// A range runs backwards.
    #[error("instance set {input:?}: range {start}-{end} runs backwards; write {end}-{start}")]
    Reversed {
        /// The text that was parsed.
        input: String,
        /// The first number of the range.
        start: u32,
        /// The last number of the range.
        end: u32,
    },
}

/// A sorted set of unique instance ids.
///
/// ```
/// use aurora_core::InstanceSet;
/// let set: InstanceSet = "7-9,0-2,5,1".parse().unwrap();
/// assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 1, 2, 5, 7, 8, 9]);
/// assert_eq!(set.to_string(), "0-2,5,7-9");
/// assert!("5-3".parse::<InstanceSet>().is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct InstanceSet(BTreeSet<u32>);

impl InstanceSet {
    /// The ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
    /// Whether `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        self.0.contains(&id)
    }
    /// How many ids the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<u32> for InstanceSet {
    fn from_iter<T: IntoIterator<Item = u32>>(iter: T) -> Self {
        InstanceSet(iter.into_iter().collect())
    }
}

fn parse_id(input: &str, part: &str) -> Result<u32, InstanceSetError> {
    let trimmed = part.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InstanceSetError::NotANumber {
            input: input.to_owned(),
            part: part.to_owned(),
        });
    }
    trimmed.parse().map_err(|_| InstanceSetError::NotANumber {
        input: input.to_owned(),
        part: part.to_owned(),
    })
}

impl FromStr for InstanceSet {
    type Err = InstanceSetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = BTreeSet::new();
        for part in s.split(',') {
            if part.trim().is_empty() {
                return Err(InstanceSetError::EmptyPart {
                    input: s.to_owned(),
                });
            }
            match part.split_once('-') {
                None => {
                    set.insert(parse_id(s, part)?);
                }
                Some((a, b)) => {
                    // A leading '-' means a negative number, which is not an id.
                    if a.trim().is_empty() {
                        return Err(InstanceSetError::NotANumber {
                            input: s.to_owned(),
                            part: part.to_owned(),
                        });
                    }
                    let start = parse_id(s, a)?;
                    let end = parse_id(s, b)?;
                    if start > end {
                        return Err(InstanceSetError::Reversed {
                            input: s.to_owned(),
                            start,
                            end,
                        });
                    }
                    set.extend(start..=end);
                }
            }
        }
        Ok(InstanceSet(set))
    }
}

impl fmt::Display for InstanceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &str, expect: Result<&[u32], &str>) {
        let got = input.parse::<InstanceSet>();
        match (got, expect) {
            (Ok(set), Ok(ids)) => assert_eq!(set.iter().collect::<Vec<_>>(), ids, "{input:?}"),
            (Err(e), Err(fragment)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(fragment),
                    "{input:?}: {msg:?} lacks {fragment:?}"
                );
            }
            (got, expect) => panic!("{input:?}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn parses_ranges_and_lists() {
        check("0-2,5,7-9", Ok(&[0, 1, 2, 5, 7, 8, 9]));
        check("3", Ok(&[3]));
        check("5,5,1-2,2", Ok(&[1, 2, 5]));
        check(" 1 - 3 ", Ok(&[1, 2, 3]));
        check("4-4", Ok(&[4]));
    }

    #[test]
    fn rejects_bad_sets() {
        check("5-3", Err("range 5-3 runs backwards"));
        check("", Err("empty part"));
        check("1,,2", Err("empty part"));
        check("-1", Err("\"-1\" is not an instance id"));
        check("a", Err("\"a\" is not an instance id"));
        check("1-b", Err("\"b\" is not an instance id"));
        check("1-2-3", Err("\"2-3\" is not an instance id"));
        check("99999999999", Err("is not an instance id"));
    }

    proptest! {
        #[test]
        fn display_round_trips(ids in proptest::collection::btree_set(0u32..200, 1..40)) {
            let set: InstanceSet = ids.iter().copied().collect();
            let text = set.to_string();
            let back: InstanceSet = text.parse().unwrap();
            prop_assert_eq!(back, set);
        }

        #[test]
        fn never_panics(s in "[0-9, -]{0,20}") {
            let _ = s.parse::<InstanceSet>();
        }
    }
}
