//! Macros shared by the entity modules.

/// A closed string enum with MDE's spelling: serde, OpenAPI schema, `VARIANTS`, `as_str`, and a
/// case-insensitive `FromStr` whose error lists the valid values.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($variant),)*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant),)* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $(if s.eq_ignore_ascii_case(stringify!($variant)) { return Ok($name::$variant); })*
                Err(format!("'{s}' is not one of {}", Self::VARIANTS.join(", ")))
            }
        }
    };
}
pub(crate) use string_enum;
