//! Checking the pipeline file's values, for every section wherever it lives
//! (the stage sections in [`crate::config`], each method's own section in its
//! folder under [`crate::cluster`]): the problems found, collected rather than
//! stopping at the first; the small checks sections share; and `section!`,
//! which declares a section as written with the keys it allows derived from
//! its fields. A leaf: it depends on nothing but the error types.

use crate::error::ConfigProblem;

/// The problems found so far in a pipeline file.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<ConfigProblem>);

impl Problems {
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One of `options` by name, or `default` (and a problem) when `value` is
/// not among them.
pub fn choice<T: Copy>(
    problems: &mut Problems,
    key: &str,
    value: Option<&str>,
    default: T,
    options: &[(&str, T)],
) -> T {
    match value {
        None => default,
        Some(v) => match options.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                problems.push(
                    key,
                    format!("`{v}` is not allowed; use one of: {}", names.join(", ")),
                );
                default
            }
        },
    }
}

/// A share in [0, 1], or `default`.
pub fn share(problems: &mut Problems, key: &str, value: Option<f64>, default: f64) -> f64 {
    match value {
        None => default,
        Some(v) if (0.0..=1.0).contains(&v) => v,
        Some(v) => {
            problems.push(
                key,
                format!("{v} must be a share between 0 and 1, e.g. {default}"),
            );
            default
        }
    }
}

/// A whole number of at least 1 into `target`, when given.
pub fn positive(problems: &mut Problems, key: &str, value: Option<usize>, target: &mut usize) {
    if let Some(v) = value {
        if v == 0 {
            problems.push(key, "must be at least 1");
        }
        *target = v;
    }
}

/// The message for an unknown key `last`: the nearest allowed key, if one is
/// close, and the keys allowed where it stands.
pub fn unknown_key(last: &str, allowed: &[&str]) -> String {
    let mut msg = "unknown key".to_string();
    if let Some(best) = allowed
        .iter()
        .map(|k| (strsim::levenshtein(k, last), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
    {
        msg.push_str(&format!("; did you mean `{}`?", best.1));
    }
    if !allowed.is_empty() {
        msg.push_str(&format!(" Allowed here: {}", allowed.join(", ")));
    }
    msg
}

/// Section `[name]` (its table `value`) read as `T`, a `section!` whose
/// keys are `allowed`: each unknown key is a problem under `name.`, with the
/// nearest allowed key; a value of the wrong type is a problem and `None`.
pub fn read_section<T: serde::de::DeserializeOwned>(
    name: &str,
    value: &toml::Value,
    allowed: &[&str],
    problems: &mut Problems,
) -> Option<T> {
    let mut unknown = Vec::new();
    let read = serde_ignored::deserialize(value.clone(), |p| unknown.push(p.to_string()));
    for key in unknown {
        let last = key.rsplit('.').next().unwrap_or("");
        problems.push(format!("{name}.{key}"), unknown_key(last, allowed));
    }
    match read {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(name, format!("not valid: {}", e.to_string().trim_end()));
            None
        }
    }
}

/// A pipeline-file section as written: a serde struct, and `KEYS`, the keys
/// it allows (for "did you mean" and the list of allowed keys in an unknown
/// key's message), taken from its own fields so the two cannot drift apart.
/// Exported, for a library user's method with a section of its own.
#[macro_export]
macro_rules! section {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$field_meta])* pub $field: $ty ),*
        }
        impl $name {
            /// The keys this section allows.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    section! {
        #[derive(serde::Deserialize)]
        struct Example {
            pub first: Option<u32>,
            #[serde(default)]
            pub second_key: Vec<String>,
        }
    }

    #[test]
    fn a_sections_keys_are_its_fields() {
        assert_eq!(Example::KEYS, ["first", "second_key"]);
        let e: Example = toml::from_str("first = 3").unwrap();
        assert_eq!((e.first, e.second_key.len()), (Some(3), 0));
    }

    #[test]
    fn a_sections_unknown_keys_are_named_with_the_nearest_allowed_one() {
        let mut p = Problems::default();
        let v: toml::Value = toml::from_str("frist = 2\nsecond_key = [\"a\"]").unwrap();
        let e: Option<Example> = read_section("example", &v, Example::KEYS, &mut p);
        assert_eq!(e.map(|e| e.second_key), Some(vec!["a".to_string()]));
        assert_eq!(p.0.len(), 1, "{p:?}");
        assert_eq!(p.0[0].key, "example.frist");
        assert!(p.0[0].message.contains("did you mean `first`?"), "{p:?}");
        assert!(
            p.0[0].message.contains("Allowed here: first, second_key"),
            "{p:?}"
        );
        let v: toml::Value = toml::from_str("first = \"x\"").unwrap();
        assert!(read_section::<Example>("example", &v, Example::KEYS, &mut p).is_none());
        assert_eq!(p.0.len(), 2);
    }

    #[test]
    fn a_choice_outside_the_options_is_a_problem_naming_them() {
        let mut p = Problems::default();
        let v = choice(
            &mut p,
            "graph.weighting",
            Some("cosine"),
            1,
            &[("snn", 1), ("binary", 2)],
        );
        assert_eq!(v, 1);
        assert_eq!(p.0.len(), 1);
        assert!(p.0[0].message.contains("snn, binary"), "{:?}", p.0);
        assert_eq!(
            choice(&mut p, "k", Some("binary"), 1, &[("snn", 1), ("binary", 2)]),
            2
        );
        assert_eq!(share(&mut p, "s", Some(1.5), 0.2), 0.2);
        let mut t = 5;
        positive(&mut p, "n", Some(0), &mut t);
        assert_eq!((t, p.0.len()), (0, 3));
    }
}
