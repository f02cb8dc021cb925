//! How publish.toml's values are read: each kind of setting says what it
//! expects in the words of a TOML file ("an array of strings", "a duration
//! such as \"90s\""), so that a wrong value is reported in those words and
//! never by the name of a Rust type.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

/// A byte count or a string with a unit.
#[derive(Debug, Clone)]
pub(super) enum Size {
    Bytes(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or a size with a unit, such as \"25 MiB\" or \"500KB\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Size, E> {
                Ok(Size::Bytes(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Size, E> {
                u64::try_from(n)
                    .map(Size::Bytes)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                Ok(Size::Text(s.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[[rules]] fingerprint`: true, false or "keep".
#[derive(Debug, Clone)]
pub(super) enum FingerprintSetting {
    Bool(bool),
    Word(String),
}

impl<'de> Deserialize<'de> for FingerprintSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FingerprintSetting, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FingerprintSetting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"keep\"")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<FingerprintSetting, E> {
                Ok(FingerprintSetting::Bool(b))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FingerprintSetting, E> {
                Ok(FingerprintSetting::Word(s.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number of 0 or more (`concurrency`, `keep`, `max_paths`).
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number, 0 or more")
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<usize, E> {
            usize::try_from(n).map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &self))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<usize, E> {
            usize::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
        }
    }
    d.deserialize_any(V).map(Some)
}

/// A duration, as a string: checked and converted when the settings are
/// resolved, where the setting's name is known.
pub(super) fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration in quotes, such as \"90s\", \"15m\", \"12h\" or \"7d\"")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
            Ok(s.to_string())
        }
    }
    d.deserialize_any(V).map(Some)
}

/// What an element of an array is, for the message about a value that is
/// not an array.
pub(super) trait Element {
    const ARRAY: &'static str;
}

impl Element for String {
    const ARRAY: &'static str = "an array of strings";
}

/// An array, with its elements read as they say.
pub(super) struct List<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de> + Element> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<List<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Element> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::ARRAY)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<List<T>, A::Error> {
                Err(de::Error::invalid_type(Unexpected::Other("a table"), &self))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A table of settings, read as one: a derived `Deserialize` would also
/// take an array, its elements as the settings in order.
pub(super) struct Table<T>(pub T);

impl<T: Element> Element for Table<T> {
    const ARRAY: &'static str = T::ARRAY;
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Table<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Table<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Table<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Table)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Table<T>, A::Error> {
                Err(de::Error::invalid_type(
                    Unexpected::Other("an array"),
                    &self,
                ))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A table of settings (`[target]`...).
pub(super) fn settings<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Table::<T>::deserialize(d).map(|t| t.0)
}

/// A table of settings that may be left out (`[cdn]`...).
pub(super) fn some_settings<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    settings(d).map(Some)
}

pub(super) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    List::<String>::deserialize(d).map(|l| l.0)
}

pub(super) fn some_strings<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    strings(d).map(Some)
}

/// A table of named values (`metadata`).
pub(super) fn table<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = BTreeMap<String, T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry()? {
                out.insert(k, v);
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::invalid_type(
                Unexpected::Other("an array"),
                &self,
            ))
        }
    }
    d.deserialize_map(V(PhantomData))
}
