//! "Did you mean ...?" for unknown names.
//!
//! Hunting queries are typed by hand against tables with 40-70 long column names, so
//! the two common slips are a wrong case (`Devicename`) and an abbreviation or
//! truncation (`ProcessCmd`, `DeviceProces`). Plain edit distance handles the first kind
//! of typo but ranks `ProcessId` above `ProcessCommandLine` for `ProcessCmd`, so
//! abbreviations are tried before it.

/// Longest name (in bytes) compared by more than case.
const MAX_COMPARED: usize = 128;

/// A suggested name, and whether it differs from what was typed only by case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub name: String,
    pub case_only: bool,
}

impl Suggestion {
    /// `; did you mean 'X'?`, with a case-sensitivity reminder when only case differs.
    pub fn hint(&self) -> String {
        if self.case_only {
            format!("; did you mean '{}'? (names are case-sensitive)", self.name)
        } else {
            format!("; did you mean '{}'?", self.name)
        }
    }
}

/// The message suffix for `typed` given the names in scope, or `""`.
pub fn hint<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(typed, candidates)
        .map(|s| s.hint())
        .unwrap_or_default()
}

/// The best candidate for `typed`, in this order: the same name in another case; a
/// candidate that `typed` abbreviates (its letters in order, same first letter); the
/// nearest by edit distance (at most a third of the length); a candidate that `typed`
/// extends (`tolowercase` -> `tolower`). Ties go to the earlier candidate.
pub fn suggest<'a>(
    typed: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<Suggestion> {
    let typed_lower = typed.to_lowercase();
    // Edit distance is quadratic; a name this long is not a typo of anything in scope.
    let comparable = typed_lower.len() <= MAX_COMPARED;
    let mut seen: Vec<&str> = Vec::new();
    for candidate in candidates {
        if candidate != typed && !seen.contains(&candidate) {
            seen.push(candidate);
        }
    }
    let lowered: Vec<(&str, String)> = seen.iter().map(|c| (*c, c.to_lowercase())).collect();

    if let Some((name, _)) = lowered.iter().find(|(_, lower)| *lower == typed_lower) {
        return Some(found(name, true));
    }
    let typed_len = typed_lower.chars().count();
    if !comparable {
        return None;
    }
    if typed_len >= 3 {
        let best = lowered
            .iter()
            .filter(|(_, lower)| same_first(lower, &typed_lower))
            .filter_map(|(name, lower)| {
                abbreviation_runs(&typed_lower, lower).map(|runs| (runs, lower.len(), *name))
            })
            .min_by_key(|(runs, len, _)| (*runs, *len));
        if let Some((_, _, name)) = best {
            return Some(found(name, false));
        }
    }
    let limit = (typed_len / 3).max(1);
    let best = lowered
        .iter()
        .map(|(name, lower)| (edit_distance(&typed_lower, lower), *name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance);
    if let Some((_, name)) = best {
        return Some(found(name, false));
    }
    let best = lowered
        .iter()
        .filter(|(_, lower)| lower.chars().count() >= 3 && same_first(lower, &typed_lower))
        .filter(|(_, lower)| abbreviation_runs(lower, &typed_lower).is_some())
        .max_by_key(|(_, lower)| lower.len());
    best.map(|(name, _)| found(name, false))
}

fn found(name: &str, case_only: bool) -> Suggestion {
    Suggestion {
        name: name.to_string(),
        case_only,
    }
}

fn same_first(a: &str, b: &str) -> bool {
    a.chars().next() == b.chars().next()
}

/// If every character of `short` occurs in `long` in order, the number of contiguous
/// runs the match needs (fewer = closer); `None` otherwise.
fn abbreviation_runs(short: &str, long: &str) -> Option<usize> {
    let long: Vec<char> = long.chars().collect();
    let mut position = 0;
    let mut runs = 0;
    let mut previous: Option<usize> = None;
    for ch in short.chars() {
        let offset = long.get(position..)?.iter().position(|c| *c == ch)?;
        let at = position + offset;
        if previous.is_none_or(|p| p + 1 != at) {
            runs += 1;
        }
        previous = Some(at);
        position = at + 1;
    }
    Some(runs)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost 1.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut rows = vec![vec![0usize; width]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn abbreviations_beat_near_misses() {
        let names = ["ProcessId", "ProcessCreationTime", "ProcessCommandLine"];
        assert_eq!(
            suggest("ProcessCmd", names).map(|s| s.name),
            Some("ProcessCommandLine".into())
        );
        assert_eq!(
            suggest("DeviceNmae", ["DeviceId", "DeviceName"]).map(|s| s.name),
            Some("DeviceName".into())
        );
        assert_eq!(
            suggest("tolowercase", ["toupper", "tolower"]).map(|s| s.name),
            Some("tolower".into())
        );
        assert_eq!(suggest("Zebra", ["DeviceName"]), None);
    }

    #[test]
    fn case_only() {
        let s = suggest("devicename", ["DeviceId", "DeviceName"]);
        assert_eq!(
            s.map(|s| s.hint()),
            Some("; did you mean 'DeviceName'? (names are case-sensitive)".into())
        );
    }
}
