//! How a config key is declared: once, in `lib.rs`, as `name: Type = default => rule,` inside
//! `config_section!`. The macro writes the struct field, its `Default`, its row of
//! `schema::FIELDS` (in declaration order: the order problems are reported in) and its place in
//! [`Section::visit`], the walk over leaf values in that same order that code outside this crate
//! (the GPU parameter block) uses instead of naming every field again.

use crate::schema::Kind;

/// One leaf value of a config, as [`Section::visit`] hands it out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Num(f64),
    Int(u32),
    Bool(bool),
    /// The variant's index: its position in the key's `Kind::Choice` list (a test holds them
    /// together).
    Choice(usize),
    Text(&'a str),
    List(&'a [String]),
}

/// A struct of config keys declared with `config_section!`.
pub trait Section {
    /// Appends `(prefix + key, kind)` for every leaf key below this struct, in declaration order.
    fn rules(prefix: &str, out: &mut Vec<(String, Kind)>);
    /// Calls `f` with every leaf value below this struct, in the order of [`Section::rules`].
    fn visit<F: FnMut(Value<'_>)>(&self, f: &mut F);
}

/// A field's value: a leaf, or a nested [`Section`].
pub trait Field {
    fn visit<F: FnMut(Value<'_>)>(&self, f: &mut F);
}

impl Field for f64 {
    fn visit<F: FnMut(Value<'_>)>(&self, f: &mut F) {
        f(Value::Num(*self));
    }
}

impl Field for u32 {
    fn visit<F: FnMut(Value<'_>)>(&self, f: &mut F) {
        f(Value::Int(*self));
    }
}

impl Field for bool {
    fn visit<F: FnMut(Value<'_>)>(&self, f: &mut F) {
        f(Value::Bool(*self));
    }
}

impl Field for String {
    fn visit<F: FnMut(Value<'_>)>(&self, f: &mut F) {
        f(Value::Text(self));
    }
}

impl Field for Vec<String> {
    fn visit<F: FnMut(Value<'_>)>(&self, f: &mut F) {
        f(Value::List(self));
    }
}

/// `Field` for fieldless enums: the variant index.
macro_rules! choice_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn visit<F: FnMut(Value<'_>)>(&self, f: &mut F) {
                f(Value::Choice(*self as usize));
            }
        }
    )*};
}

choice_field!(crate::Confidence, crate::MacdMode, crate::StrategyName);

/// The rule written after a field's default: a leaf's [`Kind`], or [`SECTION`] for a field that
/// is itself a struct of keys.
pub trait Rule<T> {
    fn push(self, path: String, out: &mut Vec<(String, Kind)>);
}

impl<T> Rule<T> for Kind {
    fn push(self, path: String, out: &mut Vec<(String, Kind)>) {
        out.push((path, self));
    }
}

/// See [`SECTION`].
#[derive(Debug, Clone, Copy)]
pub struct Nested;

/// The rule of a field whose type is a `config_section!` struct: its keys, under its name.
pub const SECTION: Nested = Nested;

impl<T: Section> Rule<T> for Nested {
    fn push(self, path: String, out: &mut Vec<(String, Kind)>) {
        T::rules(&format!("{path}."), out);
    }
}

/// Declares a struct of config keys, each as `name: Type = default => rule,` (doc comments
/// allowed): the struct (every field `pub`, serde with `default` and `deny_unknown_fields`),
/// its `Default`, and its [`Section`] impl (schema rows and value walk, in declaration order).
macro_rules! config_section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident: $ty:ty = $default:expr => $rule:expr,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl $crate::declare::Section for $name {
            fn rules(prefix: &str, out: &mut Vec<(String, $crate::schema::Kind)>) {
                $(
                    $crate::declare::Rule::<$ty>::push(
                        $rule,
                        format!("{prefix}{}", stringify!($field)),
                        out,
                    );
                )*
            }

            fn visit<F: FnMut($crate::declare::Value<'_>)>(&self, f: &mut F) {
                $($crate::declare::Field::visit(&self.$field, f);)*
            }
        }

        impl $crate::declare::Field for $name {
            fn visit<F: FnMut($crate::declare::Value<'_>)>(&self, f: &mut F) {
                $crate::declare::Section::visit(self, f);
            }
        }
    };
}

pub(crate) use config_section;
