//! The domain's text values as PostgreSQL columns (feature `sqlx`): a state or a queue name
//! is decoded from its `text`/`varchar` column straight into its type, so no reader parses
//! it again, and a stored value that is not one of them is an error of the query.

#[doc(hidden)]
pub use sqlx;

/// Implements sqlx's `Type`, `Encode`, `Decode` and `PgHasArrayType` for PostgreSQL for a
/// type stored as text: `$to: fn(&T) -> &str` writes it, `$from: fn(&str) -> Result<T, E>`
/// (`E: Display`) reads it.
#[macro_export]
macro_rules! pg_text {
    ($t:ty, $to:expr, $from:expr) => {
        const _: () = {
            use $crate::sql::sqlx::postgres::{
                PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef, Postgres,
            };
            use $crate::sql::sqlx::{Decode, Encode, Type, encode::IsNull, error::BoxDynError};

            impl Type<Postgres> for $t {
                fn type_info() -> PgTypeInfo {
                    <&str as Type<Postgres>>::type_info()
                }
                fn compatible(ty: &PgTypeInfo) -> bool {
                    <&str as Type<Postgres>>::compatible(ty)
                }
            }
            impl PgHasArrayType for $t {
                fn array_type_info() -> PgTypeInfo {
                    <&str as PgHasArrayType>::array_type_info()
                }
                fn array_compatible(ty: &PgTypeInfo) -> bool {
                    <&str as PgHasArrayType>::array_compatible(ty)
                }
            }
            impl Encode<'_, Postgres> for $t {
                fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                    let to: fn(&$t) -> &str = $to;
                    <&str as Encode<Postgres>>::encode(to(self), buf)
                }
            }
            impl<'r> Decode<'r, Postgres> for $t {
                fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                    let text = <&str as Decode<Postgres>>::decode(value)?;
                    ($from)(text)
                        .map_err(|e| format!("stored {} {text:?}: {e}", stringify!($t)).into())
                }
            }
        };
    };
}

pg_text!(crate::State, |s| s.as_str(), str::parse::<crate::State>);
pg_text!(crate::QueueName, |q| q.as_str(), crate::QueueName::parse);
