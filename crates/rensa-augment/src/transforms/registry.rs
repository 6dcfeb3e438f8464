//! The macro that turns the table of transforms in [`super`] into the [`Step`](super::Step)
//! enum and everything derived from it.

/// Builds, from one table of `"name" => Variant(Payload)` entries:
/// - [`Step`](super::Step), the serde form of a pipeline file's step (`{"op": "name", ...}`,
///   the payload's fields beside `op`), which [`Pipeline::parse`](crate::Pipeline::parse)'s
///   command-line form is read through;
/// - [`OPERATIONS`](super::OPERATIONS), the names in table order;
/// - the step's name and its dispatch to the payload's [`Transform`](super::Transform)
///   (validation and the plan of operations it draws);
/// - for a payload that is a transform of its own: `Payload::NAME` and
///   `From<Payload> for Step`.
///
/// An entry `"name" => Variant(Payload) as |x| expr` is a form of another transform: `expr`
/// builds that transform from the payload `x` (the single-part affine steps, the two crops).
macro_rules! steps {
    ($(
        $(#[$doc:meta])*
        $name:literal => $variant:ident($payload:ty) $(as |$x:ident| $convert:expr)?
    ),* $(,)?) => {
        /// Any transform of this crate, as it appears in a pipeline file: `{"op": "<name>", ...}`.
        /// The variants are declared in one table in `transforms/mod.rs`.
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "op")]
        pub enum Step {
            $(
                $(#[$doc])*
                #[serde(rename = $name)]
                $variant($payload),
            )*
        }

        /// The operation names a pipeline file may use.
        pub const OPERATIONS: &[&str] = &[$($name),*];

        impl Step {
            /// The step's name in pipeline files.
            fn registered_name(&self) -> &'static str {
                match self {
                    $(Step::$variant(_) => $name,)*
                }
            }

            /// The parameters as a transform, when they are one (not for a form of another).
            fn own(&self) -> Option<&dyn Transform> {
                match self {
                    $(Step::$variant(t) => $crate::transforms::registry::steps!(@own_ref t $(, $x)?),)*
                }
            }

            /// Calls `f` with the transform this step stands for.
            fn with<T>(&self, f: impl FnOnce(&dyn Transform) -> T) -> T {
                match self {
                    $(Step::$variant(t) => $crate::transforms::registry::steps!(@call f, t $(, |$x| $convert)?),)*
                }
            }
        }

        $($crate::transforms::registry::steps!(@own $name, $variant, $payload $(, $x)?);)*
    };
    (@own_ref $t:ident) => {
        Some($t)
    };
    (@own_ref $t:ident, $x:ident) => {{
        let _ = $t;
        None
    }};
    (@call $f:ident, $t:ident) => {
        $f($t)
    };
    (@call $f:ident, $t:ident, |$x:ident| $convert:expr) => {{
        let $x = $t;
        $f(&$convert)
    }};
    // a transform of its own: its name and its conversion into a step
    (@own $name:literal, $variant:ident, $payload:ty) => {
        impl $payload {
            #[doc = concat!("The operation's name in pipeline files: `", $name, "`.")]
            pub const NAME: &'static str = $name;
        }
        impl From<$payload> for Step {
            fn from(t: $payload) -> Step {
                Step::$variant(t)
            }
        }
    };
    // a form of another transform: nothing of its own
    (@own $name:literal, $variant:ident, $payload:ty, $x:ident) => {};
}

pub(super) use steps;
