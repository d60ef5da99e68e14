//! How the lab's choice enums ([`crate::Model`], [`crate::Proto`], [`crate::Runtime`],
//! [`crate::store::StoreKind`]) are spelled on the command line and in results.
//!
//! Each derives clap's `ValueEnum`, which names every variant in kebab case (`ThreadPool` is
//! `thread-pool`) and lets `server` parse it and list it in `--help`. [`spelled_by_clap!`](crate::spelled_by_clap) adds
//! `Display` and `FromStr` from that same spelling, so a name is written down nowhere else.

use std::fmt;

/// Write the command-line spelling of `value`.
pub fn write_name<T: clap::ValueEnum>(value: &T, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match value.to_possible_value() {
        Some(name) => f.write_str(name.get_name()),
        None => f.write_str("?"), // a variant marked `#[value(skip)]`; the lab has none
    }
}

/// The variant spelled `s`, or an error that lists every spelling.
pub fn parse_name<T: clap::ValueEnum>(s: &str, what: &str) -> Result<T, String> {
    T::from_str(s, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|v| v.get_name().to_owned())
            .collect();
        format!("unknown {what} `{s}` (expected one of: {})", names.join(", "))
    })
}

/// `Display` and `FromStr` for a `ValueEnum`, from its command-line spelling; `$what` names the
/// kind of thing in error messages ("unknown model `x` …").
#[macro_export]
macro_rules! spelled_by_clap {
    ($type:ty, $what:literal) => {
        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::names::write_name(self, f)
            }
        }

        impl ::std::str::FromStr for $type {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::names::parse_name(s, $what)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::store::StoreKind;
    use crate::{Model, Proto, Runtime};

    #[test]
    fn every_name_reads_back_as_its_variant() {
        for model in Model::ALL {
            assert_eq!(model.to_string().parse::<Model>(), Ok(model));
        }
        for proto in Proto::ALL {
            assert_eq!(proto.to_string().parse::<Proto>(), Ok(proto));
        }
        assert_eq!("multi-thread".parse::<Runtime>(), Ok(Runtime::MultiThread));
        assert_eq!("single-lock".parse::<StoreKind>(), Ok(StoreKind::SingleLock));
    }

    #[test]
    fn names_are_the_ones_scripts_and_results_use() {
        let names: Vec<String> = Model::ALL.iter().map(Model::to_string).collect();
        assert_eq!(&names[..5], ["blocking", "thread-per-connection", "thread-pool", "reactor", "async"]);
        assert_eq!(Proto::EchoLine.to_string(), "echo-line");
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = "fastest".parse::<Model>().unwrap_err();
        assert!(err.starts_with("unknown model `fastest` (expected one of: blocking, "), "{err}");
    }
}
